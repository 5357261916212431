from django.urls import path

from portal.monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("", views.node_list, name="nodes"),
    path("alerts/", views.alert_list, name="alerts"),
    path("nodes/<int:pk>/", views.node_detail, name="node"),
]
