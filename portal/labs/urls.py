from django.urls import path

from portal.labs import views

app_name = "labs"
urlpatterns = [
    path("", views.my_labs, name="mine"),
    path("<int:pk>/start/", views.start_lab, name="start"),
]
