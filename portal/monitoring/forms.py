"""The operator alert list's filters (GET parameters of /monitoring/alerts/). A bad value is
ignored and named in a message, so a hand-edited URL still lists alerts."""

from django import forms

from portal.monitoring.choices import AlertType, Severity
from portal.monitoring.selectors import AlertFilters
from portal.nodes.models import NodeGroup

RESOLVED_DAYS = ((1, "1 day"), (7, "7 days"), (30, "30 days"))
DEFAULT_RESOLVED_DAYS = 7
ANY = [("", "any")]


def _unknown(what: str) -> dict[str, str]:
    return {"invalid_choice": f"unknown {what} “%(value)s”, ignored."}


class AlertFilterForm(forms.Form):
    severity = forms.ChoiceField(
        choices=ANY + Severity.choices,
        required=False,
        label="severity",
        error_messages=_unknown("severity"),
    )
    type = forms.ChoiceField(
        choices=ANY + AlertType.choices,
        required=False,
        label="type",
        error_messages=_unknown("type"),
    )
    group = forms.ModelChoiceField(
        NodeGroup.objects.order_by("name").only("name"),
        required=False,
        empty_label="any",
        label="node group",
        error_messages=_unknown("node group"),
    )
    resolved = forms.BooleanField(required=False, label="include resolved")
    days = forms.TypedChoiceField(
        choices=RESOLVED_DAYS,
        coerce=int,
        required=False,
        label="resolved in the last",
        error_messages=_unknown("number of days"),
    )

    def __init__(self, params):
        data = params.copy()
        data.setdefault("days", str(DEFAULT_RESOLVED_DAYS))
        super().__init__(data)

    def filters(self) -> AlertFilters:
        """The valid fields' values (call after is_valid())."""
        clean = self.cleaned_data
        group = clean.get("group")
        days = clean.get("days") or DEFAULT_RESOLVED_DAYS
        return AlertFilters(
            severity=clean.get("severity") or None,
            type=clean.get("type") or None,
            group_id=group.pk if group else None,
            resolved_days=days if clean.get("resolved") else None,
        )

    def problems(self) -> list[str]:
        """One message per bad parameter, naming it."""
        return [
            f"{name}: {message}" for name, messages in self.errors.items() for message in messages
        ]
