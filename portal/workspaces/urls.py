from django.urls import path

from portal.workspaces import views

app_name = "workspaces"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("state/", views.state, name="state"),
    path("<int:pk>/card/", views.card_fragment, name="card"),
]
