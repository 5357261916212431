from django import template

from portal.jobs import dashboard

register = template.Library()


@register.simple_tag
def admin_home_numbers() -> dict:
    """The admin home's numbers (portal/templates/admin/index.html)."""
    return dashboard.admin_home()
