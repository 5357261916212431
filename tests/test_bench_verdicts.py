"""`make bench` judges each figure against the issue's targets; variants get their base's,
the embedded default's figures are a comparison without a verdict."""

from bench.__main__ import judge, split_skipped


def test_a_figure_is_judged_against_its_target():
    assert judge("job_overhead_ratio", (1.12, "x")) == {
        "value": 1.12,
        "unit": "x",
        "target": "<= 1.05",
        "met": False,
    }
    assert judge("launch_ratio", (0.85, "x"))["met"] is True


def test_a_variant_has_its_bases_target():
    assert judge("event_lag_p95_50x20", (600.0, "ms"))["target"] == "<= 500"


def test_the_embedded_defaults_figures_are_reported_without_a_verdict():
    entry = judge("job_overhead_ratio_sqlite", (1.2, "x"))
    assert entry == {"value": 1.2, "unit": "x", "target": "report"}
    assert judge("worker_rss_mb", (203.0, "MB"))["target"] == "report"


def test_a_comparison_that_did_not_fit_in_time_is_skipped_not_failed():
    errors = {
        "job_overhead_ratio_sqlite": "out of time: 3s left, 39s needed",
        "suite_sqlite": "no time left",
        "dispatch_latency_p95_sqlite": "RuntimeError: worker died",
        "workspace_batch_speedup": "out of time: 3s left, 30s needed",
    }
    failed, skipped = split_skipped(errors)
    assert set(skipped) == {"job_overhead_ratio_sqlite", "suite_sqlite"}
    assert set(failed) == {"dispatch_latency_p95_sqlite", "workspace_batch_speedup"}
