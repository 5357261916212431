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


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside a transaction
def test_a_fill_is_settled_with_a_checkpoint_before_its_requests_are_timed():
    if connection.vendor != "postgresql":
        pytest.skip("the checkpointer is PostgreSQL's")
    before = scale.checkpoints_so_far()
    assert scale.settle() is True
    assert scale.checkpoints_so_far() >= before + 1
