"""A Django form built from a manifest: the catalogue page and the admin render it; with the
targets form (nodes, keep on failure), ``submit_install`` installs from both.

The fields only carry the values and pick widgets; every rule is checked once, by
``inputs.check_inputs`` in ``clean()`` (numbers arrive as text and are coerced there), so a
form and the API can never disagree. Each field's row carries ``data-input`` and, when
conditional, ``data-visible-if``; the page's script asks ``POST
/api/installers/{id}/visibility`` which rows to show (the server's evaluator, no expression
code in the browser). Without the script every input shows and hidden ones are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from portal.core.errors import PortalError
from portal.installers.actions import Launched, do_install
from portal.installers.actions.install import MAX_NODES
from portal.installers.inputs import Cleaned, InputsInvalid, check_inputs
from portal.installers.manifest import Input, Manifest
from portal.nodes.models import Node


class InstallerForm(forms.Form):
    manifest: Manifest
    cleaned_inputs: Cleaned | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            self.cleaned_inputs = check_inputs(self.manifest, data)
        except InputsInvalid as exc:
            for name, error in exc.errors.items():
                field = name if name in self.fields else None
                self.add_error(field, f"{error.rule}: {error.reason}")
        return data

    def rows(self) -> list[tuple[forms.BoundField, Input]]:
        """(bound field, input) in the manifest's order, for the template."""
        return [(self[spec.name], spec) for spec in self.manifest.inputs]


def installer_form(manifest: Manifest) -> type[InstallerForm]:
    fields: dict[str, Any] = {spec.name: _field(spec) for spec in manifest.inputs}
    return type(f"{manifest.id}InputsForm", (InstallerForm,), {"manifest": manifest, **fields})


def _field(spec: Input) -> forms.Field:
    options: dict[str, Any] = {
        "label": spec.label,
        "help_text": _help(spec),
        "required": False,  # visibility decides; check_inputs enforces "required"
    }
    if spec.has_default and not spec.sensitive:
        options["initial"] = spec.default
    choices = [(str(value), str(value)) for value in spec.allowed_values or ()]
    if spec.type == "boolean":
        return forms.BooleanField(**options)
    if spec.type == "multiselect":
        return forms.Field(widget=forms.CheckboxSelectMultiple(choices=choices), **options)
    return forms.CharField(widget=_widget(spec, choices), strip=False, **options)


def _widget(spec: Input, choices: list[tuple[str, str]]) -> forms.Widget:
    number_attrs = {
        key: value
        for key, value in (("min", spec.min_value), ("max", spec.max_value), ("step", spec.step))
        if value is not None
    }
    if spec.type in ("integer", "port"):
        return forms.NumberInput(attrs={"step": 1, **number_attrs})
    if spec.type == "number":
        return forms.NumberInput(attrs={"step": "any", **number_attrs})
    return {
        "password": forms.PasswordInput(render_value=False),
        "select": forms.Select(choices=[("", "—"), *choices]),
        "text": forms.Textarea(attrs={"rows": 4}),
        "email": forms.EmailInput(),
        "url": forms.URLInput(),
    }.get(spec.type, forms.TextInput())


def _help(spec: Input) -> str:
    parts = [spec.description] if spec.description else []
    if spec.generate:
        parts.append("Leave empty to have one generated (shown once).")
    return " ".join(parts)


class TargetsForm(forms.Form):
    """Where to install: the nodes (one installation each, one job for all) and whether a
    failed install leaves the node as it is."""

    nodes = forms.ModelMultipleChoiceField(
        queryset=Node.objects.filter(enabled=True).order_by("name"),
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text=f"One or several (at most {MAX_NODES}); one job installs on all of them.",
    )
    keep_on_failure = forms.BooleanField(
        required=False,
        label="Keep the node as it is after a failure",
        help_text="No uninstall script after a failed install (for debugging).",
    )


@dataclass
class InstallSubmission:
    """The two forms of an install page, and what the install launched (None until it did)."""

    targets: TargetsForm
    inputs: InstallerForm
    launched: Launched | None = None


def submit_install(manifest: Manifest, data: Any, by: Any) -> InstallSubmission:
    """Bind both forms to ``data`` (None: empty forms) and, when both are valid, install.
    The action's refusals (a node taken, too many nodes) become form errors."""
    submission = InstallSubmission(TargetsForm(data), installer_form(manifest)(data))
    if data is None or not (submission.targets.is_valid() & submission.inputs.is_valid()):
        return submission
    try:
        submission.launched = do_install(
            list(submission.targets.cleaned_data["nodes"]),
            manifest.id,
            submission.inputs.cleaned_data,
            by=by,
            keep_on_failure=submission.targets.cleaned_data["keep_on_failure"],
        )
    except InputsInvalid as exc:  # checked by the form already; kept for a changed catalogue
        for name, message in exc.messages.items():
            submission.inputs.add_error(name if name in submission.inputs.fields else None, message)
    except PortalError as error:
        field = error.field if error.field in submission.targets.fields else None
        submission.targets.add_error(field, error.message)
    return submission
