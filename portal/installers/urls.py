from django.urls import path

from portal.installers import views

app_name = "installers"
urlpatterns = [
    path("", views.installer_list, name="list"),
    path("<str:installer_id>/", views.installer_detail, name="detail"),
]
