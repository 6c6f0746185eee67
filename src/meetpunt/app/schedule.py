"""Run the persistent schedule of UC15's watches (issue 20): ``meetpunt schedule run``.

Day by day up to ``until``: connections that entered UC15's population that day get a
watch (from ``since`` on the first run); each watch whose check is due is first checked
against the register of its day (a contract started, back in service, removed: the
watch stops and nothing is read), then checked through the gate
(:func:`meetpunt.usecases.uc15_watch.check`). Everything lives in the register
(:mod:`meetpunt.register.schedule`), each check in its own transaction: a crash loses
at most the check under way, a second run reads nothing twice (a check is recorded once
per watch and due moment, and the next due moment moves on with it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from meetpunt.domain.calendar import to_local
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party
from meetpunt.register import schedule as store
from meetpunt.usecases import uc15_watch as uc15


@dataclass
class ScheduleReport:
    """What one run of the schedule did."""

    until: datetime
    started: list[str] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    checks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "purpose": uc15.PURPOSE,
            "until": self.until.isoformat(),
            "checks": self.checks,
            "watches_started": len(self.started),
            "watches_stopped": [{"ean": e, "reason": r} for e, r in self.stopped],
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def run_schedule(
    gate: Gate,
    party: Party,
    until: datetime,
    since: date | None = None,
    rules: uc15.Uc15Rules | None = None,
) -> ScheduleReport:
    """Run every UC15 check due up to ``until`` (see the module docstring)."""
    rules = rules or uc15.Uc15Rules.load()
    report = ScheduleReport(until)
    register = gate.register
    with register.session() as s:
        active = store.tasks(s.db, uc15.PURPOSE, active_only=True)
    last_day = to_local(until).date()
    if uc15.check_moment(last_day, rules) > until:
        last_day -= timedelta(days=1)
    first_day = min([since or last_day] + [to_local(task.next_due).date() for task in active])
    day = first_day
    while day <= last_day:
        _run_day(gate, party, day, rules, report)
        day += timedelta(days=1)
    return report


def _run_day(
    gate: Gate, party: Party, day: date, rules: uc15.Uc15Rules, report: ScheduleReport
) -> None:
    groups, stops = uc15.population(gate, day)
    moment = uc15.check_moment(day, rules)
    register = gate.register
    with register.session() as s:
        every = store.tasks(s.db, uc15.PURPOSE)
        blocking = {task.ean for task in every if task.stopped_on is None or task.stopped_on > day}
        for ean, group in sorted(groups.items()):
            if ean not in blocking:
                store.add_task(
                    s.db, uc15.PURPOSE, ean, "electricity", group, rules.every_days, day, moment
                )
                report.started.append(ean)
        due = [t for t in store.tasks(s.db, uc15.PURPOSE, active_only=True) if t.next_due <= moment]
    for task in due:
        with register.session() as s:
            if store.has_run(s.db, task.id, task.next_due):
                continue
        now = groups.get(task.ean)
        if now is None:
            reason = stops.get(task.ean, "removed")
            with register.session() as s:
                store.add_run(s.db, task.id, task.next_due, "stopped")
                store.update_task(s.db, task.id, stopped_on=day, stop_reason=reason)
            report.stopped.append((task.ean, reason))
            report.outcomes["stopped"] += 1
            continue
        group = now
        previous = task.last_import_wh if group in uc15.READ_GROUPS else None
        found = uc15.check(gate, party, task.ean, group, day, previous, rules, moment)
        nxt = uc15.check_moment(uc15.next_check_day(day, rules), rules)
        with register.session() as s:
            store.add_run(
                s.db,
                task.id,
                task.next_due,
                found.outcome,
                found.import_wh,
                found.consumed_wh,
                found.audit_seq,
            )
            store.update_task(
                s.db,
                task.id,
                grp=group,
                next_due=nxt,
                last_check_at=moment,
                last_import_wh=found.import_wh if group in uc15.READ_GROUPS else None,
            )
        report.checks += 1
        report.outcomes[found.outcome] += 1


def schedule_list(gate: Gate) -> list[dict[str, Any]]:
    """Every UC15 watch with its state (``meetpunt schedule list``)."""
    with gate.register.session() as s:
        return [
            {
                "ean": task.ean,
                "group": task.group,
                "started_on": task.started_on.isoformat(),
                "next_due": None if task.stopped_on else task.next_due.isoformat(),
                "stopped_on": None if task.stopped_on is None else task.stopped_on.isoformat(),
                "stop_reason": task.stop_reason,
                "last_check_at": None
                if task.last_check_at is None
                else task.last_check_at.isoformat(),
            }
            for task in store.tasks(s.db, uc15.PURPOSE)
        ]
