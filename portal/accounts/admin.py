from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Count

from portal.accounts.models import Customer, Membership, Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "tier", "workspace_limit", "disk_quota_gb", "cpu_limit",
                    "memory_limit_mb", "monthly_price", "customer_count"]
    search_fields = ["name", "tier"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_customers=Count("customers"))

    @admin.display(description="customers", ordering="_customers")
    def customer_count(self, plan):
        return plan._customers


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "company", "plan", "billing_status", "monthly_fee",
                    "member_count", "created_at"]
    list_filter = ["plan__tier", "billing_status", "created_at"]
    search_fields = ["name", "email", "company"]
    list_select_related = ["plan"]
    inlines = [MembershipInline]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description="members", ordering="_members")
    def member_count(self, customer):
        return customer._members


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    autocomplete_fields = ["customer"]


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [*BaseUserAdmin.inlines, UserMembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active",
                    "last_login"]


admin.site.site_header = "Provisioning portal"
admin.site.site_title = "Provisioning portal admin"
admin.site.index_title = "Administration"
