"""The scale group of `make bench` (#18): what it selects and how it is judged."""

import pytest
from django.db import connection

from bench import scale
from bench.__main__ import judge, select
from bench.scale import FIGURES
from bench.suite import ORDER, SCALE, WEIGHTS


def test_the_scale_group_is_not_in_the_default_run():
    assert not set(select("")) & set(SCALE)


def test_the_group_and_each_of_its_figures_select_its_entry():
    assert select("scale") == list(SCALE)
    for figure in FIGURES:
        assert select(figure) == list(SCALE)
    assert all(name in ORDER and name in WEIGHTS for name in SCALE)


def test_growth_figures_are_judged_against_1_5():
    assert judge("growth_metrics", (1.2, "x"))["met"] is True
    assert judge("growth_admin_job_list", (1.6, "x"))["met"] is False


@pytest.mark.django_db(transaction=True)  # as the bench runs it: no transaction around it
def test_the_fills_are_checkpointed_before_the_requests_are_timed():
    if connection.vendor != "postgresql":
        pytest.skip("the checkpointer is PostgreSQL's")
    before = scale.checkpoints_so_far()
    assert scale.checkpoint() is True
    assert scale.checkpoints_so_far() >= before + 1


def test_each_request_alternates_the_two_histories_and_is_judged_by_its_pairs(monkeypatch):
    sent = []
    slow = {scale.SMALL: 10.0, scale.LARGE: 12.0}

    def get(port, path, headers):
        sent.append(port)
        return slow[port], 100

    monkeypatch.setattr(scale, "_get_ok", get)
    monkeypatch.setattr(scale, "WARM_UPS", 1)
    sides = {size: (size, {"metrics": ("/metrics", {})}) for size in (scale.SMALL, scale.LARGE)}
    timed = scale.time_in_pairs(sides, pairs=4)["metrics"]
    small, large = scale.SMALL, scale.LARGE
    # a warm-up of each, then small-large, large-small, ...
    assert sent == [small, large, small, large, large, small, small, large, large, small]
    assert timed["ratios"] == [1.2] * 4
    assert timed[f"{large}"]["median_ms"] == 12.0 and timed[f"{small}"]["runs_ms"] == [10.0] * 4


@pytest.mark.django_db(transaction=True)  # the schema and search_path, as the bench has them
def test_the_large_history_is_a_schema_the_search_path_selects():
    if connection.vendor != "postgresql":
        pytest.skip("schemas and search_path are PostgreSQL's")
    from django.utils import timezone

    from portal.jobs.models import Job

    scale.fill_jobs(1, 3, timezone.now())
    scale.make_large_history_schema()
    try:
        with scale.history(scale.LARGE):
            assert Job.objects.count() == 0
            scale.fill_jobs(1, 25, timezone.now())
            assert Job.objects.count() == 25
        assert Job.objects.count() == 3
    finally:
        scale.drop_large_history_schema()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s)", [scale.LARGE_SCHEMA])
        assert cursor.fetchone() == (None,)
