from django.urls import path

from portal.clusters import views

app_name = "clusters"
urlpatterns = [
    path("runs/<int:pk>/", views.run_page, name="run"),
    path("runs/<int:pk>/events", views.run_events, name="run-events"),
]
