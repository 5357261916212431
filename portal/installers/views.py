"""The catalogue for signed-in users: the list, and each installer's form checked by the
same code as the API; operators (and admins) also install from it, on nodes they choose.
The installations' pages list what each user may see (portal.installers.selectors).

A generated password is shown once, on the page that answers the install (no-store); it
is stored nowhere in clear, so that page cannot be shown again.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portal.core.errors import NotFound, PortalError
from portal.installers import actions, catalogue, selectors
from portal.installers.actions import Launched
from portal.installers.forms import TargetsForm, installer_form, submit_install
from portal.installers.inputs import InputsInvalid

INSTALLATIONS_SHOWN = 200


@login_required
@require_http_methods(["GET", "HEAD"])
def installer_list(request):
    return render(request, "installers/list.html", {"installers": catalogue.all_manifests()})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def installer_detail(request, installer_id: str):
    try:
        manifest = catalogue.get(installer_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    may_install = selectors.may_act(request.user)
    data = request.POST if request.method == "POST" else None
    installing = data is not None and "install" in data
    if installing and not may_install:
        raise PermissionDenied("Only operators and admins may install.")
    targets: TargetsForm | None = None
    if installing:
        submission = submit_install(manifest, data, request.user)
        if submission.launched is not None:
            return _launched(request, submission.launched)
        form, targets, checked = submission.inputs, submission.targets, None
    else:
        form = installer_form(manifest)(data)
        chosen = {"nodes": data.getlist("nodes")} if data is not None else None
        if may_install:
            targets = TargetsForm(initial=chosen)
        checked = form.cleaned_inputs if form.is_bound and form.is_valid() else None
    context = {
        "manifest": manifest,
        "form": form,
        "targets": targets,
        "checked": checked,
        "visibility_url": reverse("api:installer-visibility", args=[manifest.id]),
    }
    refused = form.errors or (targets is not None and targets.errors)
    return render(request, "installers/detail.html", context, status=400 if refused else 200)


def _launched(request, launched: Launched) -> HttpResponse:
    """Without generated passwords, to the installation's page (or the list, for several
    nodes); with some, a page that shows them this once."""
    if not launched.generated:
        if len(launched.installations) == 1:
            return redirect("installers:installation", pk=launched.installations[0].pk)
        return redirect(reverse("installers:installations") + f"?job={launched.job.pk}")
    response = render(request, "installers/launched.html", {"launched": launched})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "HEAD"])
def installation_list(request):
    rows = selectors.installations_for(request.user)
    job = request.GET.get("job", "")
    if job.isascii() and job.isdigit() and len(job) <= 18:
        rows = rows.filter(jobs__pk=int(job))
    context = {
        "installations": rows[:INSTALLATIONS_SHOWN],
        "shown": INSTALLATIONS_SHOWN,
        "may_act": selectors.may_act(request.user),
    }
    return render(request, "installers/installations.html", context)


@login_required
@require_http_methods(["GET", "HEAD"])
def installation_detail(request, pk: int):
    rows = selectors.with_history(selectors.installations_for(request.user))
    installation = get_object_or_404(rows, pk=pk)
    may_act = selectors.may_act(request.user)
    context = {
        "installation": installation,
        "may_act": may_act,
        "follow_ups": actions.follow_ups(installation) if may_act else [],
    }
    return render(request, "installers/installation.html", context)


@login_required
@require_http_methods(["POST"])
def installation_action(request, pk: int, action: str):
    """Reinstall, upgrade, retry or uninstall (the admin's actions, for operators here)."""
    if action not in actions.FOLLOW_UPS:
        raise Http404(f"No action {action!r}.")
    if not selectors.may_act(request.user):
        raise PermissionDenied("Only operators and admins may change installations.")
    installation = get_object_or_404(selectors.installations_for(request.user), pk=pk)
    do, _start = actions.FOLLOW_UPS[action]
    try:
        launched = do(installation, by=request.user)
    except InputsInvalid as exc:
        reasons = "; ".join(f"{name}: {why}" for name, why in exc.messages.items())
        messages.error(request, f"Cannot {action}: {reasons}")
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{action.capitalize()} launched: job {launched.job.pk}.")
        return _launched(request, launched)
    return redirect("installers:installation", pk=pk)
