"""Writes of the alerts: the rules' evaluator (a beat task) and the manual alerts' actions.

The evaluator passes over the monitored nodes in batches of MONITORING_ALERT_BATCH by node
id. Per batch it reads the latest values (the liveness rows, which every heartbeat updates;
extra gauges from the batch's samples of the last MONITORING_ALERT_GAUGE_MAX_AGE seconds,
only when a rule uses one) and the pairs' states in one query each, runs rules.step for every
(rule, node) in Python, and writes back in bulk: new, changed and idle states, new alerts
(INSERT ... ON CONFLICT DO NOTHING against the partial unique index, so two evaluators never
both raise one), resolutions (one UPDATE per rule). No query per node.
"""

import logging
import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, Exists, F, FloatField, OuterRef, Q, Value, When
from django.utils import timezone

from portal.accounts.models import Customer
from portal.core.errors import Conflict, NotFound, PortalError
from portal.monitoring import baselines, notify, scopes
from portal.monitoring import rules as arithmetic
from portal.monitoring.choices import (
    BUILTIN_METRICS,
    DOWN,
    AlertType,
    Comparison,
    Liveness,
    NotificationEvent,
    RuleKind,
    Severity,
)
from portal.monitoring.models import (
    Alert,
    AlertRule,
    AlertState,
    Baseline,
    NodeLiveness,
    Sample,
)
from portal.monitoring.outages import Outage, down_groups
from portal.nodes.models import Node, NodeGroup

logger = logging.getLogger(__name__)

IDLE = arithmetic.State()
# A row's status_changed_at only when it is down (the one case a pass reads it): no datetime
# to decode for the others.
DOWN_SINCE_OF = Case(When(status=Liveness.DOWN, then=F("status_changed_at")), default=None)
STATE_FIELDS = ["pending_since", "clearing_since", "firing", "flapping", "flips"]


def flapping_setting() -> arithmetic.Flapping:
    return arithmetic.Flapping(
        flips=settings.MONITORING_ALERT_FLAP_FLIPS,
        window=timedelta(seconds=settings.MONITORING_ALERT_FLAP_WINDOW),
    )


def spec_of(rule: AlertRule) -> arithmetic.Spec:
    return arithmetic.Spec(
        comparison=rule.comparison,
        threshold=rule.threshold,
        clear_threshold=rule.clear_at,
        for_seconds=rule.for_seconds,
        keep_firing_for_seconds=rule.keep_firing_for_seconds,
    )


def _states(first: int, last: int, rules: list[AlertRule]) -> dict[tuple[int, int], tuple]:
    """The batch's pair states: (rule id, node id) -> (row id, rules.State); plain rows, no
    model instances (a pass over 100k nodes reads some 10k of them)."""
    rows = AlertState.objects.filter(
        node_id__gte=first, node_id__lte=last, rule__in=[rule.pk for rule in rules]
    ).values_list("pk", "rule_id", "node_id", *STATE_FIELDS)
    return {
        (rule_id, node_id): (
            pk,
            arithmetic.State(pending, clearing, firing, flapping, tuple(flips or ())),
        )
        for pk, rule_id, node_id, pending, clearing, firing, flapping, flips in rows
    }


def _message(rule: AlertRule, name: str, value: float) -> str:
    if rule.metric == DOWN:
        return f"{name} is down ({rule.name})."
    if rule.kind == RuleKind.BASELINE:
        return (
            f"{name}: {rule.metric} is unusual for this hour of the week, {value:+.1f} "
            f"spreads from its usual value ({rule.name})."
        )
    return (
        f"{name}: {rule.metric} is {value:g} ({rule.comparison} {rule.threshold:g}, {rule.name})."
    )


@dataclass
class _Batch:
    """What one batch's pass decided, written by _write."""

    new_states: list[AlertState] = field(default_factory=list)
    changed_states: list[AlertState] = field(default_factory=list)
    idle_states: list[int] = field(default_factory=list)
    resolve: dict[int, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    # (event, rule, node id, value, firing) of fire, flapping and flapping_end
    events: list[tuple[str, AlertRule, int, float, bool]] = field(default_factory=list)


def _latest_gauges(first: int, last: int, now: datetime) -> dict[int, dict[str, float]]:
    since = now - timedelta(seconds=settings.MONITORING_ALERT_GAUGE_MAX_AGE)
    rows = (
        Sample.objects.filter(node_id__gte=first, node_id__lte=last, at__gte=since, at__lte=now)
        .exclude(gauges=None)
        .order_by("node_id", "at")
        .values_list("node_id", "gauges")
    )
    latest: dict[int, dict[str, float]] = {}
    for node_id, gauges in rows:
        latest[node_id] = gauges or {}  # ordered by time: the latest one of each node wins
    return latest


def _applies(
    rule: AlertRule, group_id: int | None, purpose: str, node_id: int, members: scopes.Members
) -> bool:
    return (
        (not rule.group_id or rule.group_id == group_id)
        and (not rule.purpose or rule.purpose == purpose)
        and members.applies(rule.scope, node_id)
    )


# The columns a pass reads from each liveness row (the four metrics follow STATUS).
NODE, GROUP, PURPOSE, STATUS, DOWN_SINCE = range(5)
METRIC_COLUMN = {metric: 5 + index for index, metric in enumerate(BUILTIN_METRICS[:4])}
OPERATORS = {
    Comparison.GE: operator.ge,
    Comparison.GT: operator.gt,
    Comparison.LE: operator.le,
    Comparison.LT: operator.lt,
}


def _value(rule: AlertRule, row: tuple, gauges: dict[int, dict[str, Any]]) -> float | None:
    if rule.metric == DOWN:
        return 1.0 if row[STATUS] == Liveness.DOWN else 0.0
    column = METRIC_COLUMN.get(rule.metric)
    if column is not None:
        return row[column]
    ratio = arithmetic.ratio_of(rule.metric)
    if ratio is not None:
        return arithmetic.percent_of(gauges.get(row[NODE]) or {}, *ratio)
    value = (gauges.get(row[NODE]) or {}).get(rule.metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _score(
    rule: AlertRule, node_id: int, value: float, usual: dict[tuple[str, int], tuple[float, float]]
) -> float | None:
    """A baseline rule's value: spreads from the node's usual (None: no baseline yet)."""
    found = usual.get((rule.metric, node_id))
    if found is None:
        return None
    return baselines.score(value, *found, rule.min_spread)


def _decide(
    rules: list[AlertRule],
    rows: list[tuple],
    now: datetime,
    outages: dict[int, Outage],
    members: scopes.Members = scopes.NOBODY,
) -> _Batch:
    """Run every rule over the batch's rows: one loop per rule over plain tuples, and
    rules.step only for the pairs that have a state or whose condition holds now. A down
    node's other alerts are held, and so are the down alerts of the nodes of a down group
    (``outages``: the group's own alert stands for them, unless the rule's scope narrows it
    to other nodes), and every alert of a held node (``members.held``: a VM in
    maintenance). ``members``: the rules' scopes (portal.monitoring.scopes)."""
    first, last = rows[0][NODE], rows[-1][NODE]
    states = _states(first, last, rules)
    gauges = (
        _latest_gauges(first, last, now)
        if any(rule.metric not in BUILTIN_METRICS for rule in rules)
        else {}
    )
    watched = {rule.metric for rule in rules if rule.kind == RuleKind.BASELINE}
    usual = baselines.current(watched, first, last, now) if watched else {}
    flapping = flapping_setting()
    out = _Batch()
    for rule in rules:
        spec = spec_of(rule)
        holds = OPERATORS[Comparison(rule.comparison)]
        rule_id, threshold, scoped, column = (
            rule.pk,
            rule.threshold,
            rule.group_id or rule.purpose or rule.scope,
            None,
        )
        site_wide = not scopes.narrows(rule.scope)
        if rule.metric in METRIC_COLUMN:
            column = METRIC_COLUMN[rule.metric]
        baseline = rule.kind == RuleKind.BASELINE
        for row in rows:
            if scoped and not _applies(rule, row[GROUP], row[PURPOSE], row[NODE], members):
                continue
            value = row[column] if column is not None else _value(rule, row, gauges)
            if baseline and value is not None:
                value = _score(rule, row[NODE], value, usual)
            state = states.get((rule_id, row[NODE]))
            if state is None and (value is None or not holds(value, threshold)):
                continue  # idle and staying so: the common case, nothing to write
            if value is None:
                continue  # no data: nothing changes
            down = row[STATUS] == Liveness.DOWN
            old = state[1] if state else IDLE
            new, event = arithmetic.step(
                spec,
                old,
                value,
                now,
                flapping=flapping,
                inhibited=row[NODE] in members.held
                or (down and (rule.metric != DOWN or (site_wide and row[GROUP] in outages))),
                since=row[DOWN_SINCE] if rule.metric == DOWN and down else None,
            )
            _record(out, rule, row[NODE], value, state, old, new, event)
    return out


def _record(out, rule, node_id, value, state, old, new, event) -> None:
    if new != old:
        if state is None:
            out.new_states.append(AlertState(rule=rule, node_id=node_id, **_fields(new)))
        elif new.idle:
            out.idle_states.append(state[0])
        else:
            out.changed_states.append(
                AlertState(pk=state[0], rule=rule, node_id=node_id, **_fields(new))
            )
    if event == arithmetic.RESOLVE:
        out.resolve[rule.pk][node_id] = value
    elif event is not None:
        out.events.append((event, rule, node_id, value, new.firing))


def _fields(state: arithmetic.State) -> dict[str, Any]:
    return {
        "pending_since": state.pending_since,
        "clearing_since": state.clearing_since,
        "firing": state.firing,
        "flapping": state.flapping,
        "flips": list(state.flips),
    }


def _values(values: dict[int, float]) -> Case:
    return Case(
        *[When(node_id=node_id, then=Value(value)) for node_id, value in values.items()],
        default=F("last_value"),
        output_field=FloatField(),
    )


def _write(out: _Batch, now: datetime) -> dict[str, int]:
    """One batch's writes, in bulk; alerts are inserted in (rule, node) order so competing
    evaluators take the unique index's locks in the same order."""
    AlertState.objects.bulk_create(out.new_states, batch_size=1000, ignore_conflicts=True)
    AlertState.objects.bulk_update(
        sorted(out.changed_states, key=lambda row: row.pk), STATE_FIELDS, batch_size=1000
    )
    AlertState.objects.filter(pk__in=out.idle_states).delete()
    resolved = 0
    for rule_id, values in out.resolve.items():
        resolved += Alert.objects.filter(
            rule_id=rule_id, node_id__in=list(values), resolved=False
        ).update(resolved=True, resolved_at=now, last_value=_values(values))
    names = dict(
        Node.objects.filter(pk__in={event[2] for event in out.events}).values_list("pk", "name")
    )
    fire, flapping = [], 0
    for event, rule, node_id, value, firing in sorted(
        out.events, key=lambda event: (event[1].pk, event[2])
    ):
        message = _message(rule, names.get(node_id, f"node {node_id}"), value)
        mine = Alert.objects.filter(rule=rule, node_id=node_id, resolved=False)
        if event == arithmetic.FIRE:
            fire.append(_alert(rule, node_id, rule.alert_type, message, value, now))
        elif event == arithmetic.FLAPPING:
            flapping += 1
            text = f"Flapping: {message}"
            if not mine.update(type=AlertType.FLAPPING, message=text, last_value=value):
                fire.append(_alert(rule, node_id, AlertType.FLAPPING, text, value, now))
        elif firing:  # the flapping ended while the condition holds: the rule's alert again
            mine.update(type=rule.alert_type, message=message, last_value=value)
        else:
            resolved += mine.update(resolved=True, resolved_at=now, last_value=value)
    Alert.objects.bulk_create(fire, batch_size=1000, ignore_conflicts=True)
    _notify(out, fire, now)
    return {"fired": len(fire), "resolved": resolved, "flapping": flapping}


def _notify(out: _Batch, fire: list[Alert], now: datetime) -> None:
    """The batch's outbox rows, in its transaction: its alerts raised and resolved now."""
    raised = {alert.node_id for alert in fire}
    if raised:
        notify.enqueue(
            Alert.objects.filter(node_id__in=raised, created_at=now, resolved=False),
            NotificationEvent.FIRED,
            now,
        )
    ended = {node_id for values in out.resolve.values() for node_id in values}
    ended |= {event[2] for event in out.events if event[0] == arithmetic.FLAPPING_END}
    if ended:
        notify.enqueue(
            Alert.objects.filter(node_id__in=ended, resolved_at=now),
            NotificationEvent.RESOLVED,
            now,
        )


def _alert(
    rule: AlertRule,
    node_id: int | None,
    kind: str,
    message: str,
    value: float,
    now: datetime,
    group_id: int | None = None,
) -> Alert:
    return Alert(
        rule=rule,
        node_id=node_id,
        group_id=group_id,
        type=kind,
        severity=rule.severity,
        message=message,
        created_at=now,
        fired_value=value,
        last_value=value,
    )


LOOKUP = {Comparison.GE: "gte", Comparison.GT: "gt", Comparison.LE: "lte", Comparison.LT: "lt"}


def _candidates(rules: list[AlertRule], now: datetime) -> Q | None:
    """The liveness rows a pass must read: those where some rule's condition holds, and
    those of nodes with a pair state (they may be clearing). Every other row is idle for
    every rule and would be skipped by _decide after crossing into Python, which was most of
    a pass's time; the database filters them instead. A threshold on an extra gauge (its
    value is not in the liveness row) reads the rows of the nodes that sent gauges within
    MONITORING_ALERT_GAUGE_MAX_AGE (the only ones _latest_gauges finds a value for)."""
    condition = Q(node_id__in=AlertState.objects.filter(rule__in=rules).values("node_id"))
    for rule in rules:
        if rule.kind == RuleKind.BASELINE:
            usual = Baseline.objects.filter(
                hour_of_week=baselines.hour_of_week(now), metric=rule.metric
            )
            condition |= Q(node_id__in=usual.values("node_id"))
        elif rule.metric == DOWN:
            condition |= Q(status=Liveness.DOWN)
        elif rule.metric in METRIC_COLUMN:
            condition |= Q(
                **{f"{rule.metric}__{LOOKUP[Comparison(rule.comparison)]}": rule.threshold}
            )
        else:
            # A gauge's value is not in the liveness row: the nodes that sent gauges lately.
            since = now - timedelta(seconds=settings.MONITORING_ALERT_GAUGE_MAX_AGE)
            recent = Sample.objects.filter(at__gte=since, at__lte=now).exclude(gauges=None)
            condition |= Q(node_id__in=recent.values("node_id"))
    return condition


def _batch_rows(
    after: int, batch: int, only: Iterable[int] | None = None, candidates: Q | None = None
) -> tuple[int, list[tuple]] | None:
    """The next ``batch`` liveness rows after node id ``after`` (of the nodes ``only``, when
    given; of the ``candidates``, when given), joined in Python with their enabled nodes'
    group and purpose (two indexed reads; an SQL join made PostgreSQL hash the whole node
    table for every batch). None when there are no more."""
    liveness = NodeLiveness.objects.filter(node_id__gt=after)
    if only is not None:
        liveness = liveness.filter(node_id__in=list(only))
    if candidates is not None:
        liveness = liveness.filter(candidates)
    rows = list(
        liveness.annotate(down_since=DOWN_SINCE_OF)
        .order_by("node_id")
        .values_list("node_id", "status", "down_since", *BUILTIN_METRICS[:4])[:batch]
    )
    if not rows:
        return None
    last = rows[-1][0]
    nodes = Node.objects.filter(enabled=True)
    if candidates is None and only is None:
        nodes = nodes.filter(pk__gt=after, pk__lte=last)  # every row: a range scan
    else:
        nodes = nodes.filter(pk__in=[row[0] for row in rows])
    found = {
        pk: (group_id, purpose)
        for pk, group_id, purpose in nodes.values_list("pk", "group_id", "purpose")
    }
    return last, [(row[0], *found[row[0]], *row[1:]) for row in rows if row[0] in found]


def _retire(now: datetime) -> int:
    """Alerts nobody evaluates any more resolve, and their pairs forget their state: those of
    disabled rules and of disabled nodes (and the states of deleted nodes, whose alerts went
    with them). Returns the alerts resolved."""
    unwatched = Q(rule__enabled=False) | Q(node__enabled=False)
    with transaction.atomic():
        AlertState.objects.filter(
            Q(rule__enabled=False)
            | ~Exists(Node.objects.filter(pk=OuterRef("node_id"), enabled=True))
        ).delete()
        retired = list(
            Alert.objects.filter(unwatched, resolved=False, rule__isnull=False).values_list(
                "pk", flat=True
            )
        )
        count = Alert.objects.filter(pk__in=retired, resolved=False).update(
            resolved=True, resolved_at=now
        )
        notify.enqueue(Alert.objects.filter(pk__in=retired), NotificationEvent.RESOLVED, now)
        return count


def evaluate_alerts(
    now: datetime | None = None, batch: int | None = None, only: Iterable[int] | None = None
) -> dict[str, int]:
    """One pass of every enabled rule over every enabled monitored node (or the nodes
    ``only``: the liveness tick passes those it just took down, so their down alerts need not
    wait for the next full pass); returns counts. ``now`` is the clock (tests drive it). Safe
    to run from several beat processes."""
    now = now or timezone.now()
    batch = batch or settings.MONITORING_ALERT_BATCH
    resolved = _retire(now) if only is None else 0
    totals = {"nodes": 0, "fired": 0, "resolved": resolved, "flapping": 0}
    rules = _with_data(list(AlertRule.objects.filter(enabled=True).order_by("pk")), now)
    if not rules:
        return totals
    down_rules = [rule for rule in rules if rule.metric == DOWN and not scopes.narrows(rule.scope)]
    outages = down_groups(now) if down_rules else {}
    candidates = _candidates(rules, now)
    members = scopes.members(rule.scope for rule in rules if rule.scope)
    after = 0
    while True:
        found = _batch_rows(after, batch, only, candidates)
        if found is None:
            break
        after, rows = found
        if rows:
            with transaction.atomic():
                counts = _write(_decide(rules, rows, now, outages, members), now)
            totals["nodes"] += len(rows)
            for key, count in counts.items():
                totals[key] += count
    fired, resolved = _group_alerts(down_rules, outages, now)
    totals["fired"] += fired
    totals["resolved"] += resolved
    if totals["fired"] or totals["resolved"]:
        logger.info("alerts: %s", totals)
    return totals


def _with_data(rules: list[AlertRule], now: datetime) -> list[AlertRule]:
    """The rules that can see a value this pass: a baseline rule whose metric has no
    baseline for this hour of the week (none computed yet, or no node with enough history)
    would change nothing, so its pass is skipped (its pairs keep their state, as with any
    missing value)."""
    watched = {rule.metric for rule in rules if rule.kind == RuleKind.BASELINE}
    known = baselines.metrics_with_baselines(watched, now) if watched else set()
    return [rule for rule in rules if rule.kind != RuleKind.BASELINE or rule.metric in known]


def _group_alerts(
    down_rules: list[AlertRule], outages: dict[int, Outage], now: datetime
) -> tuple[int, int]:
    """Raise the alert of each down group whose outage has lasted a down rule's ``for``
    (a rule scoped to a group watches only it), resolve those of groups no longer down.
    Returns (fired, resolved)."""
    if not down_rules:
        return 0, 0
    open_alerts = Alert.objects.filter(
        rule__in=down_rules, node__isnull=True, group__isnull=False, resolved=False
    )
    standing = {
        (rule_id, group_id): pk
        for pk, rule_id, group_id in open_alerts.values_list("pk", "rule_id", "group_id")
    }
    over = [pk for (_, group_id), pk in standing.items() if group_id not in outages]
    fire = _site_alerts(down_rules, outages, set(standing), now)
    if not fire and not over:
        return 0, 0
    with transaction.atomic():
        Alert.objects.bulk_create(fire, ignore_conflicts=True)
        resolved = Alert.objects.filter(pk__in=over, resolved=False).update(
            resolved=True, resolved_at=now
        )
        if fire:
            raised = open_alerts.filter(created_at=now, group__in=[a.group_id for a in fire])
            notify.enqueue(raised, NotificationEvent.FIRED, now)
        if resolved:
            ended = Alert.objects.filter(pk__in=over, resolved_at=now)
            notify.enqueue(ended, NotificationEvent.RESOLVED, now)
    return len(fire), resolved


def _site_alerts(
    down_rules: list[AlertRule],
    outages: dict[int, Outage],
    standing: set[tuple[int, int]],
    now: datetime,
) -> list[Alert]:
    due = [
        (rule, group_id, outage)
        for rule in down_rules
        for group_id, outage in sorted(outages.items())
        if (not rule.group_id or rule.group_id == group_id)
        and (rule.pk, group_id) not in standing
        and now - outage.since >= timedelta(seconds=rule.for_seconds)
    ]
    if not due:
        return []
    names = dict(NodeGroup.objects.filter(pk__in=list(outages)).values_list("pk", "name"))
    return [
        _alert(
            rule,
            None,
            rule.alert_type,
            f"{outage.describe(names[group_id])} ({rule.name})",
            outage.down,
            now,
            group_id,
        )
        for rule, group_id, outage in due
    ]


# --- manual alerts (the source API's POST /api/alerts, PUT /api/alerts/{id}/resolve) -------


def check_create_alert(data: dict[str, Any]) -> dict[str, Any]:
    """The validated fields of a manual alert (a PortalError naming the field otherwise)."""
    if data.get("type") not in AlertType.values:
        raise PortalError(f"One of {', '.join(AlertType.values)}.", field="type")
    severity = data.get("severity") or Severity.WARNING
    if severity not in Severity.values:
        raise PortalError(f"One of {', '.join(Severity.values)}.", field="severity")
    message = data.get("message")
    if (
        not isinstance(message, str)
        or not message.strip()
        or len(message) > 2000
        or "\x00" in message
    ):
        raise PortalError("A non-empty text of at most 2000 characters.", field="message")
    fields: dict[str, Any] = {"type": data["type"], "severity": severity, "message": message}
    for key, model in (("vm_id", Node), ("customer_id", Customer)):
        ref = data.get(key)
        if ref is None:
            continue
        if isinstance(ref, bool) or not isinstance(ref, int) or not 1 <= ref < 2**63:
            raise PortalError("An id (a whole number), or null.", field=key)
        if not model.objects.filter(pk=ref).exists():
            raise PortalError(f"No {model._meta.verbose_name} with id {ref}.", field=key)
        fields["node_id" if key == "vm_id" else "customer_id"] = ref
    return fields


def do_create_alert(data: dict[str, Any]) -> Alert:
    fields = check_create_alert(data)
    with transaction.atomic():
        alert = Alert.objects.create(**fields)
        notify.enqueue(Alert.objects.filter(pk=alert.pk), NotificationEvent.FIRED)
    return alert


def do_resolve_alert(alert_id: int, now: datetime | None = None) -> Alert:
    """Resolve an open alert; one already resolved is a Conflict (409), so two operators
    resolving the same alert learn that the second did nothing. An alert of a rule whose
    condition still holds is raised again by the evaluator's next firing only after it
    clears (its state stays firing), so a manual resolve is final for this incident."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None:
            raise NotFound(f"No alert {alert_id}.", field="id")
        if alert.resolved:
            raise Conflict(f"Alert {alert_id} was resolved at {alert.resolved_at}.", field="id")
        alert.resolved, alert.resolved_at = True, now
        alert.save(update_fields=["resolved", "resolved_at"])
        notify.enqueue(Alert.objects.filter(pk=alert.pk), NotificationEvent.RESOLVED, now)
    return alert


def open_alert_counts(severities: Iterable[str] = Severity.values) -> dict[str, int]:
    counts = dict.fromkeys(severities, 0)
    rows = (
        Alert.objects.filter(resolved=False).values("severity").annotate(n=Count("pk")).order_by()
    )
    for row in rows:
        counts[row["severity"]] = counts.get(row["severity"], 0) + row["n"]
    return counts
