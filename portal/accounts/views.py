"""Customer web UI: the page an invitation email links to, and the members page."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from portal.accounts import actions, selectors
from portal.accounts.models import Invitation
from portal.core.errors import PortalError
from portal.core.tenancy import MembershipRole

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
        return render(
            request,
            "accounts/invitation_accept.html",
            {"invitation": None, "invalid_message": error.message},
            status=404,
        )
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
                token, request.user if signed_in else None, username=username, password=password
            )
        except PortalError as error:
            context["errors"].append(error.message)
            return render(
                request, "accounts/invitation_accept.html", context, status=error.status_code
            )
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
        valid_for = (
            f"{seconds // 86400} day{'s' if seconds // 86400 != 1 else ''}"
            if seconds >= 86400
            else f"{max(1, seconds // 3600)} hour(s)"
        )
        self.extra_email_context = {"portal_url": base, "valid_for": valid_for}
        return super().form_valid(form)


# --- members: who belongs to the user's customers; owners invite and revoke ---------------


class InviteForm(forms.Form):
    """The owner's invite form; the action (do_invite) still decides."""

    customer = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    email = forms.EmailField(max_length=254, label="Email address")
    role = forms.ChoiceField(choices=MembershipRole.choices, initial=MembershipRole.MEMBER)


def _sections(user, bound_form=None) -> list[dict]:
    """One section per customer the user belongs to: its members, and for an owner its
    pending invitations and an invite form (the bound one for the customer just tried)."""
    sections = []
    for membership in selectors.memberships_of(user):
        customer = membership.customer
        owner = membership.role == MembershipRole.OWNER
        section = {
            "customer": customer,
            "role": membership.get_role_display(),
            "owner": owner,
            "members": selectors.members_of(customer),
        }
        if owner:
            section["invitations"] = selectors.pending_invitations_of(customer)
            tried = bound_form is not None and bound_form.data.get("customer") == str(customer.pk)
            section["form"] = bound_form if tried else InviteForm(initial={"customer": customer.pk})
        sections.append(section)
    return sections


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def members(request):
    """GET: the members of the user's customers; POST (owners): invite an email address.
    A refusal is shown next to the field it is about."""
    form, status = None, 200
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                customer = actions.check_can_invite(request.user, data["customer"])
                invitation = actions.do_invite(
                    customer,
                    data["email"],
                    data["role"],
                    by=request.user,
                    base_url=request.build_absolute_uri("/"),
                )
            except PortalError as error:
                field = error.field if error.field in ("email", "role") else None
                form.add_error(field, error.message)
                status = error.status_code
            else:
                messages.success(
                    request,
                    f"Invitation sent to {invitation.email} "
                    f"({invitation.get_role_display().lower()}).",
                )
                return redirect("members:list")
        else:
            status = 400
    sections = _sections(request.user, form)
    # Refused for a customer the user does not own: no form of theirs to show it next to.
    shown = any(section.get("form") is form for section in sections)
    page_errors = (
        [error for errors in form.errors.values() for error in errors]
        if form is not None and not shown
        else []
    )
    return render(
        request,
        "accounts/members.html",
        {
            "sections": sections,
            "page_errors": page_errors,
            "invitation_days": settings.INVITATION_DAYS,
        },
        status=status,
    )


@login_required
@require_POST
def revoke_invitation(request, pk):
    """An owner revokes a pending invitation of their customer (others': 404)."""
    invitation = get_object_or_404(Invitation.objects.changeable_by(request.user), pk=pk)
    try:
        actions.do_revoke_invitation(invitation, by=request.user)
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Invitation to {invitation.email} revoked.")
    return redirect("members:list")
