"""Prometheus figures of the installers, read from the database at scrape time: install runs
by outcome and the success rate per installer, run time from the jobs, the queue, failures
by type (portal.installers.selectors)."""

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily

from portal.installers import selectors


class InstallerCollector:
    def collect(self) -> Iterator[Metric]:
        yield from self._outcomes()
        yield self._run_seconds()
        yield self._queue()

    def _outcomes(self) -> Iterator[Metric]:
        outcomes = selectors.run_outcomes()
        ended = GaugeMetricFamily(
            "portal_installer_runs_ended",
            "Install runs (install, reinstall, upgrade, retry) that ended, by installer",
            labels=["installer"],
        )
        success = GaugeMetricFamily(
            "portal_installer_success_ratio",
            "Share of ended install runs that installed, by installer",
            labels=["installer"],
        )
        failures = GaugeMetricFamily(
            "portal_installer_failures",
            "Ended install runs that failed, by installer and type "
            "(rejected: exit 1 or preflight; needs_operator: exit 3; failed_timeout: exit 124)",
            labels=["installer", "type"],
        )
        for installer, counts in sorted(outcomes.items()):
            total = sum(counts.values())
            ended.add_metric([installer], total)
            success.add_metric([installer], counts[selectors.SUCCESS] / total if total else 0.0)
            for kind in selectors.FAILURE_TYPES:
                failures.add_metric([installer, kind], counts[kind])
        yield ended
        yield success
        yield failures

    def _run_seconds(self) -> Metric:
        family = SummaryMetricFamily(
            "portal_installer_run_seconds",
            "Run time of the installers' finished jobs (started to finished), by installer; "
            "average = _sum / _count",
            labels=["installer"],
        )
        for installer, (count, total) in sorted(selectors.run_seconds().items()):
            family.add_metric([installer], count_value=count, sum_value=total)
        return family

    def _queue(self) -> Metric:
        family = GaugeMetricFamily(
            "portal_installations_queued",
            "Installations waiting for or in a run (pending, installing, uninstalling)",
            labels=["status"],
        )
        for status, count in selectors.queue_depth().items():
            family.add_metric([status], count)
        return family
