"""The persistent schedule of recurring use-case checks (issue 20, UC15): watches and
what each due check found, in the register (``schedule_task``, ``schedule_run``,
migration 0013_schedule), so a schedule survives restarts and a check runs once per
due moment however often the schedule is run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, insert, select, update

from meetpunt.domain.calendar import stored_utc
from meetpunt.register import schema as t


@dataclass(frozen=True)
class Task:
    """One watch of one connection (``stopped_on`` None: still running)."""

    id: int
    purpose: str
    ean: str
    commodity: str
    group: str
    every_days: int
    started_on: date
    next_due: datetime
    stopped_on: date | None
    stop_reason: str | None
    last_check_at: datetime | None
    last_import_wh: int | None


@dataclass(frozen=True)
class RunRow:
    """What one due check of a watch found."""

    task_id: int
    ean: str
    group: str
    due: datetime
    outcome: str
    import_wh: int | None
    consumed_wh: int | None
    audit_seq: int | None


def _task(row: object) -> Task:
    r = row._mapping  # type: ignore[attr-defined]
    last = r["last_check_at"]
    return Task(
        r["id"],
        r["purpose"],
        r["ean"],
        r["commodity"],
        r["grp"],
        r["every_days"],
        r["started_on"],
        stored_utc(r["next_due"]),
        r["stopped_on"],
        r["stop_reason"],
        None if last is None else stored_utc(last),
        r["last_import_wh"],
    )


def tasks(db: Connection, purpose: str, active_only: bool = False) -> list[Task]:
    """Every watch of ``purpose`` (only the running ones with ``active_only``)."""
    s = t.schedule_task
    query = select(s).where(s.c.purpose == purpose).order_by(s.c.id)
    if active_only:
        query = query.where(s.c.stopped_on.is_(None))
    return [_task(r) for r in db.execute(query)]


def add_task(
    db: Connection,
    purpose: str,
    ean: str,
    commodity: str,
    group: str,
    every_days: int,
    started_on: date,
    next_due: datetime,
) -> int:
    """Start a watch; its id."""
    key = db.execute(
        insert(t.schedule_task).values(
            purpose=purpose,
            ean=ean,
            commodity=commodity,
            grp=group,
            every_days=every_days,
            started_on=started_on,
            next_due=next_due,
        )
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def update_task(db: Connection, task_id: int, **values: object) -> None:
    """Change a watch (next_due, grp, last_check_at, last_import_wh, stopped_on, ...)."""
    db.execute(update(t.schedule_task).where(t.schedule_task.c.id == task_id).values(**values))


def has_run(db: Connection, task_id: int, due: datetime) -> bool:
    """Whether the check of ``task_id`` due at ``due`` already ran."""
    r = t.schedule_run
    return (
        db.execute(select(r.c.id).where(r.c.task_id == task_id, r.c.due == due)).first() is not None
    )


def add_run(
    db: Connection,
    task_id: int,
    due: datetime,
    outcome: str,
    import_wh: int | None = None,
    consumed_wh: int | None = None,
    audit_seq: int | None = None,
) -> None:
    """Record what a due check found (once per watch and due moment)."""
    db.execute(
        insert(t.schedule_run).values(
            task_id=task_id,
            due=due,
            outcome=outcome,
            import_wh=import_wh,
            consumed_wh=consumed_wh,
            audit_seq=audit_seq,
        )
    )


def runs(db: Connection, purpose: str) -> list[RunRow]:
    """Every recorded check of ``purpose``'s watches, in due order."""
    s, r = t.schedule_task, t.schedule_run
    query = (
        select(r, s.c.ean, s.c.grp)
        .join(s, s.c.id == r.c.task_id)
        .where(s.c.purpose == purpose)
        .order_by(r.c.due, r.c.id)
    )
    return [
        RunRow(
            row.task_id,
            row.ean,
            row.grp,
            stored_utc(row.due),
            row.outcome,
            row.import_wh,
            row.consumed_wh,
            row.audit_seq,
        )
        for row in db.execute(query)
    ]
