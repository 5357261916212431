"""The form generated from a manifest, and the page that renders it."""

import pytest
from django import forms

from portal.installers import catalogue
from portal.installers.forms import installer_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def form_class():
    return installer_form(catalogue.get("web-server"))


def test_a_field_per_input_with_its_widget(form_class):
    fields = form_class().fields
    assert list(fields) == [spec.name for spec in catalogue.get("web-server").inputs]
    assert isinstance(fields["tls_key"].widget, forms.PasswordInput)
    assert isinstance(fields["tls_mode"].widget, forms.Select)
    assert isinstance(fields["modules"].widget, forms.CheckboxSelectMultiple)
    assert isinstance(fields["notes"].widget, forms.Textarea)
    assert isinstance(fields["tls_enabled"], forms.BooleanField)
    assert isinstance(fields["contact"].widget, forms.EmailInput)
    assert isinstance(fields["upstream"].widget, forms.URLInput)
    assert fields["cache_ratio"].widget.attrs["step"] == 0.05
    assert fields["http_port"].initial == 80
    assert fields["tls_key"].initial is None  # a secret has no initial value


def test_clean_uses_check_inputs(form_class):
    form = form_class({"server_name": "example.org", "modules": ["gzip"], "workers": "3"})
    assert form.is_valid(), form.errors
    assert form.cleaned_inputs.values["workers"] == 3
    assert "admin_password" in form.cleaned_inputs.generated


def test_errors_land_on_their_fields(form_class):
    form = form_class({"server_name": "Bad Name", "http_port": "0", "tls_enabled": "on"})
    assert not form.is_valid()
    assert form.errors["http_port"] == ["type: a port is 1-65535"]
    assert form.errors["server_name"][0].startswith("pattern: must match")
    assert form.errors["certificate"] == ["required: this input is required"]


def test_hidden_fields_are_ignored(form_class):
    form = form_class({"server_name": "a.b", "certificate": "short", "tls_key": "x"})
    assert form.is_valid(), form.errors  # TLS off: certificate and key are hidden
    assert "tls_key" not in form.cleaned_inputs.all()


def test_the_page_renders_every_input_with_data_attributes(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("u", password="p"))
    response = client.get("/installers/web-server/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-input="certificate"' in html
    assert 'data-visible-if="tls_enabled == true"' in html
    assert 'data-visibility-url="/api/installers/web-server/visibility"' in html
    assert "installers/inputs.js" in html and "<script>" not in html
    listing = client.get("/installers/")
    assert listing.status_code == 200 and "/installers/web-server/" in listing.content.decode()
    assert 'href="/installers/" data-testid="nav-installers"' in listing.content.decode()


def test_the_page_checks_a_post(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("u", password="p"))
    bad = client.post("/installers/web-server/", {"server_name": "Bad Name"})
    assert bad.status_code == 400
    assert "pattern: must match" in bad.content.decode()
    good = client.post("/installers/web-server/", {"server_name": "a.b"})
    assert good.status_code == 200
    assert 'data-testid="installer-checked"' in good.content.decode()


def test_the_page_refuses_unknown_ids_and_anonymous_users(client, django_user_model):
    assert client.get("/installers/web-server/").status_code == 302  # to the login
    client.force_login(django_user_model.objects.create_user("u", password="p"))
    assert client.get("/installers/nope/").status_code == 404
    assert client.get("/installers/..%5Cetc/").status_code == 404
