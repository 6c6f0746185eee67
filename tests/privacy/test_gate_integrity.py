"""Gate integrity (PRV-1, PRV-3, PRV-4, PRV-7): nothing lost, nothing false, no way
around the gate, on SQLite and PostgreSQL.

- concurrent requests: eight at once for a once-a-quarter purpose on one connection
  give exactly one grant and seven refusals with the frequency rule, all audited;
- register changes within the period: a grant covers exactly the sub-periods in which
  opt-out, contract, consent holder and status allow it, and reads nothing outside;
- forged and mutated grants read nothing, and each refusal is audited;
- a period that has not begun is refused (``PRV-1.future_period``), audited.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import select

from meetpunt import rulebook
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import PhysicalStatus, RemoteReading
from meetpunt.domain.ean import ean_from_serial
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import MeterStore, open_store
from meetpunt.privacy import audit, consent, explain
from meetpunt.privacy import gate as gate_module
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate, GateError, Grant
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import Register, open_register, schema
from tests.meterdata.conftest import quarters, reading
from tests.privacy.flagging import FLAG, flag_all
from tests.unit.domain.factories import SUPPLIER_GLN, attributes, contract

GRID = Party("grid", Role.GRID_OPERATOR)
APP = Party("app-1", Role.APP)
SUPPLIER = Party(SUPPLIER_GLN, Role.SUPPLIER)
OTHER_SUPPLIER = "8710000000024"

OPTING = ean_from_serial("87168740", 801)
"""Supplied by SUPPLIER; the customer opts out of remote reading from 3 June."""
MOVING = ean_from_serial("87168740", 802)
"""J. de Vries (who gave the app its consent) moves out on 10 June; K. Visser moves in."""
ENDING = ean_from_serial("87168740", 803)
"""SUPPLIER's contract ends on 4 June; another supplier's starts then."""
VACANT = ean_from_serial("87168740", 804)
"""Contractless and in service until 4 June, out of service from then on."""
STEADY = ean_from_serial("87168740", 805)
"""Nothing changes."""
EANS = (OPTING, MOVING, ENDING, VACANT, STEADY)

JUNE = date(2025, 6, 1)
NOW = local_midnight_utc(date(2025, 7, 1))


def day(n: int) -> datetime:
    """Local midnight starting June ``n`` (UTC)."""
    return local_midnight_utc(date(2025, 6, n))


def _build(register: Register) -> None:
    since = date(2020, 1, 1)
    with register.session() as s:
        for ean in EANS:
            s.record_connection(ean, Commodity.ELECTRICITY, attributes("1x25"), since)
        opted = replace(attributes("1x25"), remote_reading=RemoteReading.ADMINISTRATIVELY_OFF)
        s.record_connection(OPTING, Commodity.ELECTRICITY, opted, date(2025, 6, 3))
        s.set_status(VACANT, PhysicalStatus.OUT_OF_SERVICE, date(2025, 6, 4))
        s.add_contract(contract(OPTING, date(2024, 1, 1)))
        s.add_contract(contract(STEADY, date(2024, 1, 1)))
        s.add_contract(contract(MOVING, date(2024, 1, 1), date(2025, 6, 10)))
        s.add_contract(contract(MOVING, date(2025, 6, 10), contract_holder="K. Visser"))
        s.add_contract(contract(ENDING, date(2024, 1, 1), date(2025, 6, 4)))
        s.add_contract(contract(ENDING, date(2025, 6, 4), supplier=OTHER_SUPPLIER))
        consent.give(
            s.db,
            APP.id,
            "app_consent",
            MOVING,
            ["quarter_hours"],
            Period(day(1) - timedelta(days=30), day(1) + timedelta(days=60)),
            "J. de Vries",
            day(1) - timedelta(days=30),
        )
        flag_all(s.db, GRID.id)


def _gate(register: Register, store: MeterStore | None = None, now: datetime = NOW) -> Gate:
    return Gate(register, store, load_catalogue(), clock=lambda: now)


def _ask(
    purpose: str, party: Party, eans: tuple[str, ...], kind: str, first: int, last: int
) -> AccessRequest:
    """A request for June ``first`` to ``last`` inclusive."""
    return AccessRequest(
        party,
        purpose,
        eans,
        frozenset({kind}),
        Period(day(first), day(last + 1)),
        day(first),
        trigger="integrity test",
        cites=FLAG if purpose == "UC3" else None,
    )


def _records(register: Register) -> list[audit.AuditRecord]:
    with register.session() as s:
        assert not audit.verify(s.db)
        return audit.records(s.db)


def _grant_rows(register: Register, seq: int) -> list[tuple[int, datetime, datetime]]:
    g = schema.privacy_grant
    with register.session() as s:
        rows = s.db.execute(
            select(g.c.connection_id, g.c.period_start, g.c.period_end).where(g.c.audit_seq == seq)
        ).all()
    return sorted((cid, gate_module.stored_utc(a), gate_module.stored_utc(b)) for cid, a, b in rows)


# --- concurrency -------------------------------------------------------------------------


def _uc3(ean: str) -> AccessRequest:
    return _ask("UC3", GRID, (ean,), "quarter_hours", 2, 5)


def _race_threads(register: Register, request: AccessRequest, n: int = 8) -> list[Any]:
    gate = _gate(register)
    barrier = threading.Barrier(n)
    answers: list[Any] = []
    lock = threading.Lock()

    def ask() -> None:
        barrier.wait()
        try:
            answer: Any = gate.request(request)
        except Exception as exc:  # recorded, so the assert below names it
            answer = exc
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=ask) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def _exactly_one_grant(register: Register, answers: list[Any]) -> None:
    errors = [a for a in answers if isinstance(a, Exception)]
    assert errors == []
    grants = [a for a in answers if isinstance(a, Grant)]
    refused = [a for a in answers if isinstance(a, Decision)]
    assert len(grants) == 1 and len(refused) == 7
    assert all(r.rules == ("UC3.frequency",) for r in refused)
    records = _records(register)
    decisions = [r for r in records if r.entry.event == "decision"]
    assert sorted(r.entry.outcome for r in decisions) == ["granted"] + ["refused"] * 7
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    with register.session() as s:
        stored = s.db.execute(select(schema.privacy_grant.c.audit_seq)).scalars().all()
    assert stored == [grants[0].decision.audit_seq]


def test_eight_requests_at_once_give_one_grant_and_seven_audited_refusals(
    register: Register,
) -> None:
    """PRV-1, PRV-7: the frequency check and the grant are one serialised step; the
    ones that lose the race are refused with the frequency rule and audited."""
    _build(register)
    _exactly_one_grant(register, _race_threads(register, _uc3(STEADY)))


def test_the_lock_is_taken_before_the_facts_without_the_pipeline_too(
    register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without psycopg's pipeline (an older libpq, another driver) the gate still takes
    the append lock before it reads the earlier grants (PostgreSQL), or the write lock
    when it begins (SQLite)."""
    monkeypatch.setattr(gate_module, "_pipelined", lambda _db: None)
    _build(register)
    _exactly_one_grant(register, _race_threads(register, _uc3(STEADY)))


def _ask_in_process(url: str, barrier: Any, results: Any) -> None:
    """One process of the SQLite race: its own engine and gate, one request."""
    register = open_register(url)
    try:
        gate = _gate(register)
        barrier.wait()
        answer = gate.request(_uc3(STEADY))
        results.put("granted" if isinstance(answer, Grant) else ",".join(answer.rules) or "refused")
    except Exception as exc:  # reported to the parent
        results.put(f"error: {exc!r}")
    finally:
        register.dispose()


def test_eight_processes_at_once_on_sqlite_give_one_grant(tmp_path: Path) -> None:
    """Separate processes on one SQLite file wait for the write lock (busy timeout)
    instead of failing with "database is locked", and only one passes the limit."""
    url = f"sqlite:///{tmp_path / 'register.sqlite'}"
    register = open_register(url)
    _build(register)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(8)
    results = context.Queue()
    workers = [
        context.Process(target=_ask_in_process, args=(url, barrier, results)) for _ in range(8)
    ]
    for w in workers:
        w.start()
    answers = sorted(results.get(timeout=120) for _ in workers)
    for w in workers:
        w.join(timeout=60)
    assert answers == ["UC3.frequency"] * 7 + ["granted"]
    assert len([r for r in _records(register) if r.entry.event == "decision"]) == 8
    register.dispose()


# --- register changes within the period ---------------------------------------------------


@dataclass
class World:
    register: Register
    store: MeterStore
    ids: dict[str, int]


@pytest.fixture
def world(register: Register, tmp_path: Path) -> Iterator[World]:
    """The changing register on each engine, with quarter-hours and daily readings of
    every connection from 28 May to 15 June in a meter-data store."""
    _build(register)
    with register.session() as s:
        index = ConnectionIndex(s.meter_index(), 230.0)
        ids = {
            ean: s.db.execute(
                select(schema.connection.c.id).where(schema.connection.c.ean == ean)
            ).scalar_one()
            for ean in EANS
        }
    store = open_store(tmp_path / "meterdata.duckdb")
    ingestor = Ingestor(store, index, rulebook.vee_rules(), now=datetime(2026, 1, 1, tzinfo=UTC))
    first = day(1) - timedelta(days=4)
    for ean in EANS:
        ingestor.ingest(_source("quarter_hours", quarters(ean, first, 96 * 19), f"qh-{ean}"))
        daily = [
            reading(ean, local_midnight_utc(date(2025, 5, 28) + timedelta(days=i)), 1000 * i)
            for i in range(19)
        ]
        ingestor.ingest(_source("daily_readings", daily, f"daily-{ean}"))
    yield World(register, store, ids)
    store.close()


def _source(kind: str, rows: list[dict[str, Any]], name: str) -> SourceData:
    import pyarrow as pa

    fields = [f for f in KINDS[kind].source_schema() if f.name != "record"]
    table = pa.Table.from_pydict(
        {f.name: [r.get(f.name) for r in rows] for f in fields}, schema=pa.schema(fields)
    )
    return SourceData(name, "", {kind: table})


def _local_days(times: list[datetime]) -> list[date]:
    return sorted({to_local(t).date() for t in times})


def _cuts(record: audit.AuditRecord) -> list[tuple[str, str, list[str]]]:
    return [(c["ean"], c["rule"], c["period"]) for c in record.entry.detail.get("cut", [])]


def test_an_opt_out_on_3_june_leaves_a_2_to_5_june_supplier_read_with_2_june(
    world: World,
) -> None:
    """PRV-3: the daily readings after the opt-out never leave; the audit record names
    the granted day and the rule that cut the rest."""
    gate = _gate(world.register, world.store)
    grant = gate.request(_ask("supplier_daily", SUPPLIER, (OPTING,), "daily_readings", 2, 5))
    assert isinstance(grant, Grant)
    assert grant.periods == {OPTING: (Period(day(2), day(3)),)}
    rows = grant.read("daily_readings")
    assert _local_days(rows.column("at").to_pylist()) == [date(2025, 6, 2)]
    decision = _records(world.register)[grant.decision.audit_seq - 1]
    assert decision.entry.outcome == "granted"
    assert decision.entry.detail["granted_periods"] == {
        OPTING: [[day(2).isoformat(), day(3).isoformat()]]
    }
    assert _cuts(decision) == [(OPTING, "PRV-3.opt_out", [day(3).isoformat(), day(6).isoformat()])]
    # the customer reads which days were not granted, and why (PRV-7)
    told = explain.describe(decision, "nl", None, OPTING)
    assert told.endswith(
        "Niet van 3 juni 2025 tot en met 5 juni 2025, omdat u bezwaar heeft gemaakt tegen "
        "het uitlezen van uw meter."
    )
    assert "Not from 3 June 2025 to 5 June 2025" in explain.describe(decision, "en", None, OPTING)
    assert "Niet van" not in explain.describe(decision, "nl")  # no EAN: not the customer
    assert _grant_rows(world.register, grant.decision.audit_seq) == [
        (world.ids[OPTING], day(2), day(3))
    ]
    after = gate.request(_ask("supplier_daily", SUPPLIER, (OPTING,), "daily_readings", 3, 5))
    assert isinstance(after, Decision) and after.rules == ("PRV-3.opt_out",)
    assert _records(world.register)[-1].entry.outcome == "refused"


def test_an_app_consent_does_not_outlive_the_move_of_the_customer_who_gave_it(
    world: World,
) -> None:
    """PRV-4: the new occupant's quarter-hours are never read under the old
    occupant's consent."""
    gate = _gate(world.register, world.store)
    grant = gate.request(_ask("app_consent", APP, (MOVING,), "quarter_hours", 5, 14))
    assert isinstance(grant, Grant)
    assert grant.periods == {MOVING: (Period(day(5), day(10)),)}
    rows = grant.read("quarter_hours")
    assert rows.num_rows == 5 * 96
    assert max(rows.column("start").to_pylist()) < day(10)
    assert {r for _, r, _ in _cuts(_records(world.register)[-2])} == {"PRV-4.consent"}
    later = gate.request(_ask("app_consent", APP, (MOVING,), "quarter_hours", 10, 14))
    assert isinstance(later, Decision) and later.rules == ("PRV-4.consent",)


def test_a_contract_that_ends_mid_period_ends_the_supplier_read(world: World) -> None:
    """PRV-1.supplier_scope: the supplier reads its own days and the switch-day reading
    at the midnight its contract ends (MKT-5: it belongs to both), not its successor's
    days after it."""
    gate = _gate(world.register, world.store)
    grant = gate.request(_ask("supplier_daily", SUPPLIER, (ENDING,), "daily_readings", 2, 5))
    assert isinstance(grant, Grant)
    assert grant.periods == {ENDING: (Period(day(2), day(5)),)}
    assert _local_days(grant.read("daily_readings").column("at").to_pylist()) == [
        date(2025, 6, 2),
        date(2025, 6, 3),
        date(2025, 6, 4),
    ]
    successor = Party(OTHER_SUPPLIER, Role.SUPPLIER)
    theirs = gate.request(_ask("supplier_daily", successor, (ENDING,), "daily_readings", 2, 5))
    assert isinstance(theirs, Grant)
    assert theirs.periods == {ENDING: (Period(day(4), day(6)),)}


def test_a_status_change_mid_period_ends_a_contractless_read(world: World) -> None:
    """UC8 reads a contractless connection while it is in service, not after."""
    gate = _gate(world.register, world.store)
    grant = gate.request(_ask("UC8", GRID, (VACANT,), "monthly_readings", 1, 10))
    assert isinstance(grant, Grant)
    assert grant.periods == {VACANT: (Period(day(1), day(4)),)}
    assert {r for _, r, _ in _cuts(_records(world.register)[-1])} == {"UC8.population"}
    assert _grant_rows(world.register, grant.decision.audit_seq) == [
        (world.ids[VACANT], day(1), day(4))
    ]


def test_connections_with_different_cuts_read_their_own_days_in_one_grant(
    world: World,
) -> None:
    """One grant, several connections, each clipped to its own sub-periods."""
    gate = _gate(world.register, world.store)
    grant = gate.request(
        _ask("supplier_daily", SUPPLIER, (OPTING, ENDING, STEADY), "daily_readings", 2, 5)
    )
    assert isinstance(grant, Grant)
    rows = grant.read("daily_readings")
    seen: dict[int, list[date]] = {}
    for cid, at in zip(
        rows.column("connection").to_pylist(), rows.column("at").to_pylist(), strict=True
    ):
        seen.setdefault(cid, []).append(to_local(at).date())
    june = [date(2025, 6, d) for d in range(2, 6)]
    assert {k: sorted(v) for k, v in seen.items()} == {
        world.ids[OPTING]: june[:1],
        world.ids[ENDING]: june[:3],  # up to and including the switch-day reading
        world.ids[STEADY]: june,
    }


def test_a_connection_cut_on_every_day_refuses_the_whole_request(world: World) -> None:
    """A request is granted for some days of each connection, never none of one."""
    gate = _gate(world.register, world.store)
    refused = gate.request(
        _ask("supplier_daily", SUPPLIER, (OPTING, STEADY), "daily_readings", 3, 5)
    )
    assert isinstance(refused, Decision) and refused.rules == ("PRV-3.opt_out",)
    with world.register.session() as s:
        assert s.db.execute(select(schema.privacy_grant)).all() == []


def test_a_period_that_has_not_begun_is_refused_and_audited(register: Register) -> None:
    """PRV-1.future_period: a period after now (the gate's clock) reads nothing."""
    _build(register)
    future = AccessRequest(
        GRID,
        "UC1",
        (STEADY,),
        frozenset({"voltage_presence"}),
        Period(NOW + timedelta(days=365), NOW + timedelta(days=366)),
        NOW + timedelta(days=365),
        trigger="outage report",
    )
    refused = _gate(register).request(future)
    assert isinstance(refused, Decision) and refused.rules == ("PRV-1.future_period",)
    assert isinstance(
        _gate(register).request(replace(future, period=Period(NOW - timedelta(days=1), NOW))), Grant
    )
    outcomes = [(r.entry.outcome, r.entry.rules) for r in _records(register)][-2:]
    assert outcomes == [("refused", ("PRV-1.future_period",)), ("granted", ())]


# --- forged and mutated grants -------------------------------------------------------------


def _refusals(register: Register) -> list[tuple[str, ...]]:
    return [
        r.entry.rules
        for r in _records(register)
        if (r.entry.event, r.entry.outcome) == ("read", "refused")
    ]


def test_forged_and_mutated_grants_read_nothing_and_are_audited(world: World) -> None:
    """PRV-1.grant: ``dataclasses.replace``, ``object.__setattr__`` and a hand-built
    grant that claim more days, other connections or another decision read nothing."""
    gate = _gate(world.register, world.store)
    grant = gate.request(_ask("supplier_daily", SUPPLIER, (OPTING,), "daily_readings", 2, 5))
    other = gate.request(_ask("supplier_daily", SUPPLIER, (STEADY,), "daily_readings", 2, 5))
    assert isinstance(grant, Grant) and isinstance(other, Grant)
    decision = grant.decision
    whole = ((OPTING, (decision.request.period,)),)
    rule = load_catalogue().get("supplier_daily")
    assert rule is not None
    forged = [
        # claims the days the opt-out cut
        replace(grant, decision=replace(decision, periods=whole)),
        # claims no sub-periods at all (the whole period)
        replace(grant, decision=replace(decision, periods=())),
        # another decision's audit record
        replace(grant, decision=replace(decision, audit_seq=other.decision.audit_seq)),
        # a longer request
        replace(
            grant,
            decision=replace(
                decision,
                request=replace(decision.request, period=Period(day(1), day(6))),
            ),
        ),
        # another connection's id under this decision
        replace(grant, connection_ids={OPTING: world.ids[STEADY]}),
        # hand-built: a decision the gate never wrote, and a refused one
        Grant(Decision(decision.request, (), 999, whole), rule, {OPTING: world.ids[OPTING]}, gate),
        Grant(
            Decision(other.request, (), other.decision.audit_seq),
            rule,
            {STEADY: world.ids[STEADY], OPTING: world.ids[OPTING]},
            gate,
        ),
    ]
    for fake in forged:
        with pytest.raises(GateError) as refused:
            fake.read("daily_readings")
        assert refused.value.rules == ("PRV-1.grant",)
    # the real grant reads, then is mutated in place and is checked again
    assert grant.read("daily_readings").num_rows == 1
    object.__setattr__(grant, "decision", replace(decision, periods=whole))
    with pytest.raises(GateError):
        grant.read("daily_readings")
    object.__setattr__(grant, "decision", decision)
    object.__setattr__(grant, "connection_ids", MappingProxyType({OPTING: world.ids[STEADY]}))
    with pytest.raises(GateError):
        grant.read("daily_readings")
    assert _refusals(world.register) == [("PRV-1.grant",)] * (len(forged) + 2)
    reads = [r for r in _records(world.register) if r.entry.event == "read"]
    assert [r.entry.outcome for r in reads].count("read") == 1
    assert json.loads(json.dumps(reads[-1].entry.detail))["audit_seq"] == decision.audit_seq


def test_the_cli_refuses_a_uc1_request_in_the_future(tmp_path: Path) -> None:
    """``meetpunt usecase uc01 --at 2099-...`` is refused (exit 1) with
    ``PRV-1.future_period`` in the error shape, and the refusal is audited."""
    from typer.testing import CliRunner

    from meetpunt.cli import app

    url = f"sqlite:///{tmp_path / 'register.sqlite'}"
    register = open_register(url)
    _build(register)
    open_store(tmp_path / "meterdata.duckdb").close()
    args = ["usecase", "uc01", "--ean", STEADY, "--at", "2099-06-03T10:00:00+02:00"]
    args += ["--db", url, "--store", str(tmp_path / "meterdata.duckdb"), "--json"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1, refused.output
    error = json.loads(refused.stdout)["error"]
    assert "PRV-1.future_period" in [f["rule"] for f in error["findings"]]
    last = _records(register)[-1]
    assert (last.entry.outcome, last.entry.rules) == ("refused", ("PRV-1.future_period",))
    register.dispose()
