from django.urls import path

from portal.accounts import views

app_name = "members"
urlpatterns = [
    path("", views.members, name="list"),
    path("invitations/<int:pk>/revoke/", views.revoke_invitation, name="revoke"),
]
