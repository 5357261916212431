"""Help texts read in the admin as written (the admin renders them as HTML)."""

import html
import re

import pytest
from django.urls import reverse

from portal.workspaces import actions
from portal.workspaces.models import Workspace

pytestmark = pytest.mark.usefixtures("broker")


def help_texts(page: str) -> list[str]:
    found = re.findall(r'<div class="help"[^>]*>(.*?)</div>', page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", text)).strip() for text in found]


def test_the_slug_help_text_shows_its_placeholders(admin_client, member, ws_node):
    # Issue #19: "Subdomain: <slug>.<WORKSPACES_DOMAIN>." showed as "Subdomain: .."
    workspace = actions.do_create(member[1], member[0], "Help text")
    page = admin_client.get(reverse("admin:workspaces_workspace_change", args=[workspace.pk]))
    texts = [text for text in help_texts(page.content.decode()) if "ubdomain" in text]
    assert texts == [Workspace._meta.get_field("slug").help_text]
    assert "SLUG.WORKSPACES_DOMAIN" in texts[0]
