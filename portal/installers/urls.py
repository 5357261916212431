from django.urls import path

from portal.installers import views

app_name = "installers"
urlpatterns = [
    path("", views.installer_list, name="list"),
    # Before the installers' ids: "installations" is no installer of the catalogue here.
    path("installations/", views.installation_list, name="installations"),
    path("installations/<int:pk>/", views.installation_detail, name="installation"),
    path(
        "installations/<int:pk>/<str:action>/",
        views.installation_action,
        name="installation-action",
    ),
    path("<str:installer_id>/", views.installer_detail, name="detail"),
]
