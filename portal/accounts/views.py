"""Customer web UI: the page an invitation email links to."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from portal.accounts import actions
from portal.core.errors import PortalError

# The session keeps whichever backend authenticated the user; a new account has none.
SIGNUP_BACKEND = "django.contrib.auth.backends.ModelBackend"


@never_cache
@sensitive_post_parameters("password", "password2")
@require_http_methods(["GET", "POST"])
def accept_invitation(request, token):
    """GET: the invitation and how to accept it; POST: accept (signed in) or sign up."""
    try:
        invitation = actions.find_invitation(token)
    except PortalError as error:
        return render(request, "accounts/invitation_accept.html",
                      {"invitation": None, "invalid_message": error.message}, status=404)
    context = {"invitation": invitation, "errors": [], "username": ""}
    if request.method == "POST":
        signed_in = request.user.is_authenticated
        username = request.POST.get("username", "").strip()
        password = request.POST.get("password", "")
        context["username"] = username
        if not signed_in and password != request.POST.get("password2", ""):
            context["errors"].append("The two passwords differ.")
            return render(request, "accounts/invitation_accept.html", context, status=400)
        try:
            membership = actions.do_accept_invitation(
                token, request.user if signed_in else None, username=username,
                password=password)
        except PortalError as error:
            context["errors"].append(error.message)
            return render(request, "accounts/invitation_accept.html", context,
                          status=error.status_code)
        if not signed_in:
            login(request, membership.user, backend=SIGNUP_BACKEND)
        return redirect("workspaces:dashboard")  # now showing the customer's workspaces
    return render(request, "accounts/invitation_accept.html", context)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by email; the link starts with PORTAL_URL when set (as invitations'
    do). The answer is the same whether or not the address has an account, and a failed
    send is logged by Django, not shown."""

    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):
        base = settings.PORTAL_URL or self.request.build_absolute_uri("/").rstrip("/")
        seconds = settings.PASSWORD_RESET_TIMEOUT
        valid_for = (f"{seconds // 86400} day{'s' if seconds // 86400 != 1 else ''}"
                     if seconds >= 86400 else f"{max(1, seconds // 3600)} hour(s)")
        self.extra_email_context = {"portal_url": base, "valid_for": valid_for}
        return super().form_valid(form)
