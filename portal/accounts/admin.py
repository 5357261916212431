from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from portal.accounts import actions, lockout, selectors
from portal.accounts.models import Customer, Invitation, Membership, Plan
from portal.core.errors import PortalError


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "tier",
        "workspace_limit",
        "disk_quota_gb",
        "cpu_limit",
        "memory_limit_mb",
        "monthly_price",
        "customer_count",
    ]
    search_fields = ["name", "tier"]

    def get_queryset(self, request):
        return selectors.with_customer_count(super().get_queryset(request))

    @admin.display(description="customers", ordering="customer_count")
    def customer_count(self, plan):
        return plan.customer_count


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "email",
        "company",
        "plan",
        "billing_status",
        "monthly_fee",
        "member_count",
        "created_at",
    ]
    list_filter = ["plan__tier", "billing_status", "created_at"]
    search_fields = ["name", "email", "company"]
    list_select_related = ["plan"]
    inlines = [MembershipInline]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return selectors.with_member_count(super().get_queryset(request))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, customer):
        return customer.member_count


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    autocomplete_fields = ["customer"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are sent from the API (owners, admins); here they are listed and revoked.
    The token is never shown: only its hash is stored."""

    list_display = [
        "email",
        "customer",
        "role",
        "status_now",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_by",
        "accepted_at",
    ]
    list_filter = ["status", "role", "created_at"]
    search_fields = ["email", "customer__name", "invited_by__username", "accepted_by__username"]
    list_select_related = ["customer", "invited_by", "accepted_by"]
    readonly_fields = [
        "customer",
        "email",
        "role",
        "status",
        "invited_by",
        "expires_at",
        "accepted_by",
        "accepted_at",
        "revoked_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["token_hash"]
    actions = ["revoke"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def status_now(self, invitation):
        return invitation.current_status

    @admin.action(description="Revoke selected pending invitations")
    def revoke(self, request, queryset):
        done, refused = 0, []
        for invitation in queryset:
            try:
                actions.do_revoke_invitation(invitation, by=request.user)
                done += 1
            except PortalError as error:
                refused.append(f"{invitation.email}: {error.message}")
        if done:
            self.message_user(request, f"Revoked {done} invitation(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [*BaseUserAdmin.inlines, UserMembershipInline]
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "last_login",
    ]
    actions = ["unlock_login"]

    @admin.action(description="Unlock login (forget failed login attempts)")
    def unlock_login(self, request, queryset):
        usernames = list(queryset.values_list("username", flat=True))
        cleared = lockout.unlock(usernames)
        self.message_user(
            request,
            f"Unlocked {len(usernames)} user(s); {cleared} failed-login record(s) cleared.",
            messages.SUCCESS,
        )


admin.site.site_header = "Provisioning portal"
admin.site.site_title = "Provisioning portal admin"
admin.site.index_title = "Administration"
