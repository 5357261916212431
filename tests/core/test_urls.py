"""The API's URL groups (the router's viewsets, each app's paths) never claim the same path,
so their order in portal/urls.py decides only how many patterns a request tries."""

import re

from django.urls import Resolver404, URLResolver
from django.urls.resolvers import RoutePattern

from portal.urls import api_patterns

SAMPLES = [  # a converter or a regex group -> a value it accepts
    (r"<int:\w+>", "7"),
    (r"<(?:str|slug):\w+>", "abc"),
    (r"<drf_format_suffix:\w+>", ".json"),
    (r"\(\?P<format>[^)]*\)", "json"),
    (r"\(\?P<\w+>[^)]*\)", "7"),
]


def sample_paths(resolver, prefix=""):
    """A concrete path for every pattern under ``resolver``, with and without the slash."""
    for pattern in resolver.url_patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from sample_paths(pattern, text)
            continue
        for regex, value in SAMPLES:
            text = re.sub(regex, value, text)
        text = text.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
        yield text
        yield text.rstrip("/")


def groups():
    return [p for p in api_patterns if isinstance(p, URLResolver) and str(p.pattern) == ""]


def claims(group: URLResolver, path: str) -> bool:
    try:
        URLResolver(RoutePattern(""), group.url_patterns).resolve(path)
    except Resolver404:
        return False
    return True


def test_no_path_is_claimed_by_two_url_groups():
    found = groups()
    assert len(found) == 5  # the router and four apps
    paths = sorted({path for group in found for path in sample_paths(group)})
    assert len(paths) > 200
    shared = {
        path: [str(group.urlconf_name)[:60] for group in found if claims(group, path)]
        for path in paths
    }
    assert not {path: names for path, names in shared.items() if len(names) > 1}


def test_the_busiest_paths_are_tried_first():
    """Every node's heartbeat first (monitoring's few paths), then the router's viewsets,
    launches and job reads first among them."""
    from portal.api_router import router
    from portal.monitoring.api import urls as monitoring_urls

    first, second = groups()[:2]
    assert first.url_patterns == monitoring_urls.urlpatterns
    assert first.url_patterns[0].name == "node-heartbeat"
    assert second.url_patterns == router.urls
    assert [prefix for prefix, *_ in router.registry[:3]] == ["jobs", "nodes", "workspaces"]
    assert api_patterns.index(first) == 0 and api_patterns.index(second) == 1
