"""The catalogue for signed-in users: the list, and each installer's form checked by the
same code as the API (installing from the form comes with the install action)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portal.core.errors import NotFound
from portal.installers import catalogue
from portal.installers.forms import installer_form


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
    form_class = installer_form(manifest)
    form = form_class(request.POST if request.method == "POST" else None)
    checked = form.cleaned_inputs if form.is_bound and form.is_valid() else None
    context = {
        "manifest": manifest,
        "form": form,
        "checked": checked,
        "visibility_url": reverse("api:installer-visibility", args=[manifest.id]),
    }
    return render(request, "installers/detail.html", context, status=400 if form.errors else 200)
