"""The scale group of `make bench` (#18): what it selects and how it is judged."""

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
