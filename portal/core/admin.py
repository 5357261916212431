"""Shared admin bases: read-only detail pages and actions as buttons on a detail page.

Records that change only through actions (jobs, events, histories, lab sessions) are
viewable, never editable: no Save or Delete button. Their list actions also appear as
buttons on the detail page; a button posts to one URL per object that runs the very same
list action on a queryset of that one object, so both paths share the checks and messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

READ_ONLY_FORM = "admin/portal/change_form.html"

if TYPE_CHECKING:  # the mixins below are mixed into ModelAdmin
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


def seconds(value: datetime | None) -> str:
    """A time to the second in the current time zone ("—" when unset)."""
    if value is None:
        return "—"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


def duration_text(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{delta.total_seconds():.1f}s"


def status_badge(value: str, label: str | None = None) -> str:
    """A status coloured by the class portal/admin.css gives it (no inline style: CSP)."""
    return format_html('<b class="status-badge status-{}">{}</b>', value, label or value)


class WriteOnlySecretsForm(forms.ModelForm):
    """A model form whose secret fields (``SECRET_FIELDS``) are write-only: never rendered,
    and left empty on an existing row they keep the stored value."""

    SECRET_FIELDS: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.SECRET_FIELDS:
            self.initial[name] = ""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None:
            stored = type(self.instance)._base_manager.filter(pk=self.instance.pk)
            for name in self.SECRET_FIELDS:
                if not cleaned.get(name) and name not in self.errors:
                    cleaned[name] = stored.values_list(name, flat=True).first() or ""
        return cleaned


def secret_field(help_text: str) -> forms.CharField:
    """A write-only password input for a WriteOnlySecretsForm."""
    return forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text=help_text
    )


class DetailActionsMixin(_AdminBase):
    """``detail_actions``: (list action name, button label) pairs shown on the detail page.

    ``detail_action_applies(obj, name)`` hides a button that makes no sense for the object's
    state (the action itself still decides and says why it refuses)."""

    detail_actions: list[tuple[str, str]] = []
    change_form_template = READ_ONLY_FORM
    read_only_page = False

    def detail_action_applies(self, obj: Any, name: str) -> bool:
        return True

    def _detail_action_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_detail_action"

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<path:object_id>/run/<str:name>/",
                self.admin_site.admin_view(self.detail_action_view),
                name=self._detail_action_url_name(),
            )
        ]
        return extra + super().get_urls()

    def detail_action_view(
        self, request: HttpRequest, object_id: str, name: str
    ) -> HttpResponseBase:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if name not in dict(self.detail_actions):
            raise Http404
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        # filtered by the actions' permissions: (function, name, description) by name
        available: dict[str, Any] = self.get_actions(request)
        if name not in available:
            raise PermissionDenied
        func = available[name][0]
        queryset = self.get_queryset(request).filter(pk=obj.pk)
        response = func(self, request, queryset)
        if response is not None:
            return response
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        )

    def detail_buttons(self, request: HttpRequest, obj: Model | None) -> list[dict[str, str]]:
        if obj is None:
            return []
        available = self.get_actions(request)
        return [
            {
                "label": label,
                "name": name,
                "url": reverse(f"admin:{self._detail_action_url_name()}", args=[obj.pk, name]),
            }
            for name, label in self.detail_actions
            if name in available and self.detail_action_applies(obj, name)
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "read_only_page": self.read_only_page,
            "detail_buttons": self.detail_buttons(request, obj),
        }
        return super().change_view(request, object_id, form_url, extra_context)


class ReadOnlyAdminMixin(DetailActionsMixin):
    """Viewable, never edited here: no add, change or delete; no submit row.

    ``has_operate_permission`` is the model's real change permission, for actions
    declared with ``permissions=["operate"]``."""

    read_only_page = True

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return admin.ModelAdmin.has_change_permission(self, request)
