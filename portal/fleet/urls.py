from django.urls import path

from portal.fleet import views

app_name = "fleet"
urlpatterns = [
    path("", views.fleet_page, name="fleet"),
    path("rollouts.json", views.rollout_progress, name="rollouts"),
    path("mine/", views.my_fleet_page, name="mine"),
]
