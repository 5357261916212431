from django.urls import path

from portal.accounts import views

app_name = "invitations"
urlpatterns = [path("<str:token>/", views.accept_invitation, name="accept")]
