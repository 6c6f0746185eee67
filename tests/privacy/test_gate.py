"""The gate end to end (PRV-1, PRV-3, PRV-4, PRV-7): grants read exactly what they
allow, every decision and read is audited, revocation stops the next read, and past
grants survive a restart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from meetpunt import rulebook
from meetpunt.cli import app
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import RemoteReading
from meetpunt.domain.ean import ean_from_serial
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.store import MeterStore, open_store
from meetpunt.privacy import audit, consent, retention
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate, GateError, Grant
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import Register, default_database_url, open_register, schema
from meetpunt.register.store import RegisterSession
from tests.meterdata.conftest import E1X25, E3X25, quarters
from tests.privacy.flagging import FLAG, flag_all
from tests.unit.domain.factories import SUPPLIER_GLN, attributes, contract

GRID = Party("grid", Role.GRID_OPERATOR)
APP = Party("app-1", Role.APP)
DAY = date(2025, 7, 1)
T0 = local_midnight_utc(DAY)


def _period(days: float, first: datetime = T0) -> Period:
    return Period(first, first + timedelta(days=days))


def _setup(session: RegisterSession) -> None:
    session.record_connection(E3X25, Commodity.ELECTRICITY, attributes("3x25"), date(2020, 1, 1))
    opted = replace(attributes("1x25"), remote_reading=RemoteReading.ADMINISTRATIVELY_OFF)
    session.record_connection(E1X25, Commodity.ELECTRICITY, opted, date(2020, 1, 1))
    session.add_contract(contract(E3X25, date(2024, 1, 1)))
    session.add_contract(contract(E1X25, date(2024, 1, 1)))
    flag_all(session.db, GRID.id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Register, MeterStore]]:
    register = open_register(f"sqlite:///{tmp_path / 'register.sqlite'}")
    with register.session() as s:
        _setup(s)
        index = ConnectionIndex(s.meter_index(), 230.0)
    store = open_store(tmp_path / "meterdata.duckdb")
    ingestor = Ingestor(store, index, rulebook.vee_rules(), now=datetime(2026, 1, 1, tzinfo=UTC))
    for ean in (E3X25, E1X25):
        rows = quarters(ean, T0 - timedelta(days=2), 96 * 20)
        ingestor.ingest(ingestor_source(rows))
    yield register, store
    store.close()
    register.dispose()


def ingestor_source(rows: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from meetpunt.meterdata.kinds import KINDS
    from meetpunt.meterdata.source import SourceData

    schema = KINDS["quarter_hours"].source_schema()
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema if f.name != "record"}
    table = pa.Table.from_pydict(
        columns, schema=pa.schema([f for f in schema if f.name != "record"])
    )
    return SourceData(f"rows-{id(rows)}", "", {"quarter_hours": table})


def _gate(register: Register, store: MeterStore | None, at: datetime = T0) -> Gate:
    return Gate(register, store, load_catalogue(), clock=lambda: at)


def _uc3(eans: tuple[str, ...], days: float = 10, first: datetime = T0) -> AccessRequest:
    return AccessRequest(
        GRID,
        "UC3",
        eans,
        frozenset({"quarter_hours"}),
        _period(days, first),
        first,
        trigger="UC2 ranking",
        cites=FLAG,
    )


def test_a_grant_reads_exactly_its_connections_kinds_and_period(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    grant = _gate(register, store).request(_uc3((E3X25,), days=2))
    assert isinstance(grant, Grant)
    rows = grant.read("quarter_hours")
    assert rows.num_rows == 2 * 96
    assert set(rows.column("connection").to_pylist()) == {grant.connection_ids[E3X25]}
    starts = rows.column("start").to_pylist()
    assert min(starts) == T0 and max(starts) == T0 + timedelta(days=2, minutes=-15)
    assert rows.schema.metadata[b"purpose"] == b"UC3"
    with pytest.raises(GateError) as refused:
        grant.read("voltages_10min")
    assert refused.value.rules == ("UC3.kinds",)


def test_every_decision_and_read_is_in_the_audit_log(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    gate = _gate(register, store)
    grant = gate.request(_uc3((E3X25,), days=2))
    assert isinstance(grant, Grant)
    grant.read("quarter_hours")
    refused = gate.request(_uc3((E3X25,), days=11))
    assert isinstance(refused, Decision) and not refused.granted
    with register.session() as s:
        records = audit.records(s.db)
        assert not audit.verify(s.db)
    assert [(r.entry.event, r.entry.outcome) for r in records] == [
        ("decision", "granted"),
        ("read", "read"),
        ("decision", "refused"),
    ]
    assert records[2].entry.rules == ("UC3.window", "UC3.frequency")
    assert records[1].entry.detail["rows"] == 192


def test_frequency_holds_across_a_restart(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    assert isinstance(_gate(register, store).request(_uc3((E3X25,))), Grant)
    later = T0 + timedelta(days=20)
    again = _gate(register, store, later).request(_uc3((E3X25,), first=later))
    assert isinstance(again, Decision) and again.rules == ("UC3.frequency",)


def test_opt_out_stops_everything_but_grid_management(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    gate = _gate(register, store)
    assert isinstance(gate.request(_uc3((E1X25,))), Grant)
    supplier = AccessRequest(
        Party("8710000000017", Role.SUPPLIER),
        "supplier_daily",
        (E1X25,),
        frozenset({"daily_readings"}),
        _period(1),
        T0,
    )
    refused = gate.request(supplier)
    assert isinstance(refused, Decision) and refused.rules == ("PRV-3.opt_out",)


def test_a_revoked_consent_stops_the_next_read(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    with register.session() as s:
        given = consent.give(
            s.db,
            APP.id,
            "app_consent",
            E3X25,
            ["quarter_hours"],
            _period(30, T0),
            "J. de Vries",
            T0,
        )
    gate = _gate(register, store)
    request = AccessRequest(
        APP, "app_consent", (E3X25,), frozenset({"quarter_hours"}), _period(2), T0
    )
    grant = gate.request(request)
    assert isinstance(grant, Grant)
    assert grant.read("quarter_hours").num_rows == 192
    with register.session() as s:
        consent.revoke(s.db, given.id, T0 + timedelta(hours=1))
    with pytest.raises(GateError) as refused:
        grant.read("quarter_hours")
    assert refused.value.rules == ("PRV-4.consent",)
    again = gate.request(request)
    assert isinstance(again, Decision) and again.rules == ("PRV-4.consent",)
    with register.session() as s:
        trail = [(r.entry.event, r.entry.outcome) for r in audit.records(s.db)]
    assert ("consent", "given") in trail and ("consent", "revoked") in trail
    assert trail[-2:] == [("read", "refused"), ("decision", "refused")]


def test_the_consent_state_machine_refuses_what_it_must(world) -> None:  # type: ignore[no-untyped-def]
    register, _ = world
    with register.session() as s:
        given = consent.give(
            s.db, APP.id, "app_consent", E3X25, ["quarter_hours"], _period(1), "J. de Vries", T0
        )
        consent.revoke(s.db, given.id, T0)
    with register.session() as s, pytest.raises(consent.ConsentError) as refused:
        consent.change(s.db, given.id, "given", T0)
    assert refused.value.rules == ("PRV-4.transition",)
    with register.session() as s:
        late = consent.give(
            s.db, APP.id, "app_consent", E3X25, ["quarter_hours"], _period(1), "J. de Vries", T0
        )
        expired = consent.expire(s.db, T0 + timedelta(days=2))
    assert [c.id for c in expired] == [late.id]


def test_aggregate_only_purposes_never_hand_out_rows(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    gate = _gate(register, store)
    assert isinstance(gate.request(_uc3((E3X25,), days=2)), Grant)  # read for UC3 first
    uc11 = AccessRequest(GRID, "UC11", (E3X25,), frozenset({"quarter_hours"}), _period(2), T0)
    grant = gate.request(uc11)
    assert isinstance(grant, Grant)
    with pytest.raises(GateError) as refused:
        grant.read("quarter_hours")
    assert refused.value.rules == ("UC11.aggregate",)


def test_consent_cli_gives_lists_and_revokes() -> None:
    register = open_register(default_database_url())
    with register.session() as s:
        _setup(s)
    register.dispose()
    runner = CliRunner()
    given = runner.invoke(
        app,
        [
            "consent",
            "give",
            E3X25,
            "--party",
            "app-1",
            "--kinds",
            "quarter_hours",
            "--from",
            "2025-07-01",
            "--until",
            "2025-08-01",
            "--given-by",
            "J. de Vries",
            "--json",
        ],
    )
    assert given.exit_code == 0, given.output
    made = __import__("json").loads(given.stdout)
    assert made["state"] == "given" and given.stderr.startswith("audit head ")
    revoked = runner.invoke(app, ["consent", "revoke", str(made["id"]), "--json"])
    assert __import__("json").loads(revoked.stdout)["state"] == "revoked"
    again = runner.invoke(app, ["consent", "revoke", str(made["id"]), "--json"])
    assert again.exit_code == 1 and "PRV-4.transition" in again.output
    listed = runner.invoke(app, ["consent", "list", "--ean", E3X25])
    assert "revoked" in listed.output


def test_copies_carry_their_purpose_and_go_when_the_purpose_says(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    gate = _gate(register, store)
    uc7 = AccessRequest(
        GRID,
        "UC7",
        (E3X25,),
        frozenset({"voltages_10min"}),
        _period(2),
        T0,
        trigger="GIS review of feeder K3",
    )
    grant = gate.request(uc7)
    assert isinstance(grant, Grant)
    copy = grant.export("voltages_10min", tmp_path / "uc7.parquet")
    import pyarrow.parquet as pq

    assert pq.read_schema(copy).metadata[b"purpose"] == b"UC7"
    assert copy.exists()
    deleted = grant.finish()  # UC7: the source data goes right after the analysis
    assert [d.path for d in deleted] == [str(copy)] and not copy.exists()
    uc3 = gate.request(_uc3((E3X25,), days=2))
    assert isinstance(uc3, Grant)
    left = uc3.export("quarter_hours", tmp_path / "uc3.parquet")  # never finished
    with register.session() as s:  # what `meetpunt retention run` does
        swept = retention.delete_copies(s.db, T0 + timedelta(days=1))
    assert [d.path for d in swept] == [str(left)] and not left.exists()
    with register.session() as s:
        trail = [(r.entry.event, r.entry.outcome) for r in audit.records(s.db)]
    assert trail.count(("retention", "deleted")) == 2


def test_aggregates_leave_only_through_disclosure_control(tmp_path: Path) -> None:
    from meetpunt.domain.ean import ean_from_serial

    register = open_register(f"sqlite:///{tmp_path / 'area.sqlite'}")
    base = attributes("1x35")
    streets = [("Dorpsstraat", "5617BD")] * 10 + [("Kerkstraat", "5617BE")] * 9
    eans = [ean_from_serial("87168740", 700 + i) for i in range(len(streets))]
    with register.session() as s:
        for ean, (street, postcode) in zip(eans, streets, strict=True):
            address = replace(
                base.address, street=street, postcode=postcode, municipality="Eindhoven"
            )
            s.record_connection(
                ean, Commodity.ELECTRICITY, replace(base, address=address), date(2020, 1, 1)
            )
        flag_all(s.db, GRID.id)
        index = ConnectionIndex(s.meter_index(), 230.0)
    store = open_store(tmp_path / "area.duckdb")
    ingestor = Ingestor(store, index, rulebook.vee_rules(), now=datetime(2026, 1, 1, tzinfo=UTC))
    for ean in eans:
        ingestor.ingest(ingestor_source(quarters(ean, T0, 96)))
    gate = _gate(register, store)
    assert isinstance(gate.request(_uc3(tuple(eans), days=1)), Grant)  # read for UC3 first
    uc11 = AccessRequest(GRID, "UC11", tuple(eans), frozenset({"quarter_hours"}), _period(1), T0)
    grant = gate.request(uc11)
    assert isinstance(grant, Grant)
    released = grant.aggregate("quarter_hours", "import_wh")
    assert [(c.area, c.value, c.count) for c in released.cells] == [
        ("5617:Dorpsstraat", 96_000.0, None)
    ]
    assert released.suppressed == (("5617:Kerkstraat", T0),)  # 9 houses: not shown
    assert {f.name for f in fields(released.cells[0])} == {
        "level",
        "area",
        "period_start",
        "period_end",
        "value",
        "count",
    }  # no connection ids, no member values leave (PRV-6.leaves)
    assert "PRV-6.min_connections" in released.rules
    with register.session() as s:
        last = audit.records(s.db)[-1]
    assert (last.entry.event, last.entry.detail["cells"]) == ("release", 1)
    with pytest.raises(GateError) as refused:
        grant.read("quarter_hours")
    assert refused.value.rules == ("UC11.aggregate",)
    store.close()
    register.dispose()


def test_uc1_learns_only_whether_each_meter_has_voltage(world) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from meetpunt.meterdata.kinds import KINDS
    from meetpunt.meterdata.source import SourceData

    register, store = world
    with register.session() as s:
        index = ConnectionIndex(s.meter_index(), 230.0)
    outage_end = T0 + timedelta(hours=5)
    schema = pa.schema(
        [f for f in KINDS["power_failure_log"].source_schema() if f.name != "record"]
    )
    log = pa.Table.from_pydict(
        {"ean": [E3X25], "end": [outage_end], "duration_s": [4 * 3600]}, schema=schema
    )
    Ingestor(store, index, rulebook.vee_rules(), now=datetime(2026, 1, 1, tzinfo=UTC)).ingest(
        SourceData("log", "", {"power_failure_log": log})
    )
    gate = _gate(register, store)
    uc1 = AccessRequest(
        GRID,
        "UC1",
        (E3X25, E1X25),
        frozenset({"voltage_presence"}),
        _period(1),
        T0,
        trigger="outage report by phone, 02:10",
    )
    grant = gate.request(uc1)
    assert isinstance(grant, Grant)
    assert grant.presence(T0 + timedelta(hours=2)) == {E3X25: False, E1X25: True}
    assert grant.presence(T0 + timedelta(hours=6)) == {E3X25: True, E1X25: True}
    with pytest.raises(GateError) as refused:
        grant.read("voltages_10min")
    assert refused.value.rules == ("UC1.kinds",)
    with pytest.raises(GateError) as outside:
        grant.presence(T0 + timedelta(days=2))
    assert outside.value.rules == ("UC1.window",)


def _ask(
    purpose: str,
    eans: tuple[str, ...],
    kinds: str,
    first: datetime,
    days: float,
    party: Party = GRID,
) -> AccessRequest:
    return AccessRequest(
        party,
        purpose,
        eans,
        frozenset({kinds}),
        _period(days, first),
        first,
        trigger="why",
        cites=FLAG if purpose == "UC3" else None,
    )


SUPPLIER = Party(SUPPLIER_GLN, Role.SUPPLIER)
UNKNOWN = ean_from_serial("87168740", 99)
STEPS: list[tuple[AccessRequest, tuple[str, ...]]] = [
    (_ask("UC3", (E3X25,), "quarter_hours", T0, 10), ()),
    (_ask("UC3", (E3X25,), "quarter_hours", T0 + timedelta(days=20), 10), ("UC3.frequency",)),
    (_ask("UC5", (E3X25,), "voltages_10min", T0, 5), ()),
    (_ask("UC5", (E3X25,), "voltages_10min", T0 + timedelta(days=5), 5), ("UC5.pause",)),
    (_ask("UC5", (E3X25,), "voltages_10min", T0 + timedelta(days=7), 5), ()),
    (_ask("UC5", (E3X25,), "voltages_10min", T0 + timedelta(days=14), 5), ("UC5.frequency",)),
    (_ask("UC11", (E3X25,), "quarter_hours", T0, 2), ()),
    (_ask("UC11", (E1X25,), "quarter_hours", T0, 2), ("UC11.population", "PRV-3.opt_out")),
    (_ask("UC3", (UNKNOWN,), "quarter_hours", T0, 1), ("PRV-1.unknown_connection",)),
    (_ask("nope", (E3X25,), "quarter_hours", T0, 1), ("PRV-2.unknown_purpose",)),
    (_ask("supplier_daily", (E3X25,), "daily_readings", T0, 1, SUPPLIER), ()),
    (
        _ask("supplier_daily", (E3X25,), "daily_readings", T0, 1, Party("other", Role.SUPPLIER)),
        ("PRV-1.supplier_scope",),
    ),
]
"""Requests and the rules each breaks, in order: frequency, pause, data already read for
another purpose, opt-out, unknown connection and purpose, supplier scope."""


def test_the_gate_decides_audits_and_remembers_alike_on_both_engines(
    register: Register,
) -> None:
    """One query for state and earlier grants, the PostgreSQL pipeline and the rows
    written past SQLAlchemy decide exactly as the rules say, on SQLite and PostgreSQL."""
    with register.session() as s:
        _setup(s)
    gate = _gate(register, None, T0 + timedelta(days=30))
    for request, rules in STEPS:
        answer = gate.request(request)
        decision = answer.decision if isinstance(answer, Grant) else answer
        assert decision.rules == rules, request.purpose
        assert isinstance(answer, Grant) == (not rules)
    with register.session() as s:
        records = audit.records(s.db)
        assert not audit.verify(s.db)
        granted = s.db.execute(
            select(schema.privacy_grant.c.purpose, schema.privacy_grant.c.audit_seq).order_by(
                schema.privacy_grant.c.id
            )
        ).all()
    assert [r.entry.rules for r in records] == [rules for _, rules in STEPS]
    assert [r.seq for r in records] == list(range(1, len(STEPS) + 1))
    assert [tuple(g) for g in granted] == [
        (r.entry.purpose, r.seq) for r in records if r.entry.outcome == "granted"
    ]


def test_rows_written_past_sqlalchemy_are_stored_as_through_it(tmp_path: Path) -> None:
    """On SQLite the gate writes its audit record and grant rows through the driver; the
    times are stored in SQLAlchemy's own text form, and read back and verify (PRV-7)."""
    register = open_register(f"sqlite:///{tmp_path / 'register.sqlite'}")
    with register.session() as s:
        _setup(s)
    assert isinstance(_gate(register, None).request(_uc3((E3X25,))), Grant)
    with register.session() as s:
        stored = s.db.exec_driver_sql(
            "SELECT a.at, a.period_start, a.period_end, g.period_start, g.period_end, "
            "g.granted_at, g.expires_at FROM audit_log a JOIN privacy_grant g "
            "ON g.audit_seq = a.seq"
        ).one()
        (record,) = audit.records(s.db)
        assert not audit.verify(s.db)
    register.dispose()
    at = start = "2025-06-30 22:00:00.000000"
    end = "2025-07-10 22:00:00.000000"
    assert tuple(stored) == (at, start, end, start, end, at, None)
    assert record.at == T0 and record.entry.period_end == T0 + timedelta(days=10)


def test_a_failed_grant_write_leaves_no_decision_behind(
    register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit record, the grant rows and the commit go together: when the grant rows
    cannot be written, nothing of the decision stays, and the next one starts clean."""
    from meetpunt.privacy import grants

    with register.session() as s:
        _setup(s)
    gate = _gate(register, None)
    broken = "INSERT INTO no_such_table (x) VALUES (1)"
    with monkeypatch.context() as patched:
        patched.setattr(grants, "PG_INSERT", broken)
        patched.setattr(grants, "_SQLITE_INSERT", broken)
        with pytest.raises(Exception, match="no_such_table"):
            gate.request(_uc3((E3X25,)))
    with register.session() as s:
        assert audit.records(s.db) == []
    assert isinstance(gate.request(_uc3((E3X25,))), Grant)
    with register.session() as s:
        assert [r.seq for r in audit.records(s.db)] == [1]
        assert not audit.verify(s.db)


def _refused_reads(register: Register) -> list[tuple[str, ...]]:
    with register.session() as s:
        assert not audit.verify(s.db)
        return [
            r.entry.rules
            for r in audit.records(s.db)
            if (r.entry.event, r.entry.outcome) == ("read", "refused")
        ]


def test_a_grant_cannot_be_changed_to_read_more(world) -> None:  # type: ignore[no-untyped-def]
    """PRV-1.grant: a grant's connections cannot be changed, and a grant changed
    anyway (``object.__setattr__``) after it read is checked again and reads nothing."""
    from dataclasses import FrozenInstanceError
    from types import MappingProxyType

    register, store = world
    gate = _gate(register, store, T0 + timedelta(days=3))
    grant = gate.request(_uc3((E3X25,), days=2))
    other = gate.request(_uc3((E1X25,), days=2, first=T0 + timedelta(days=3)))
    assert isinstance(grant, Grant) and isinstance(other, Grant)
    e1 = other.connection_ids[E1X25]
    with pytest.raises(TypeError):
        grant.connection_ids[E1X25] = e1  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        grant.connection_ids = {E3X25: grant.connection_ids[E3X25], E1X25: e1}  # type: ignore[misc]
    assert grant.read("quarter_hours").num_rows == 2 * 96  # checked once, then in memory
    wider = {**grant.connection_ids, E1X25: e1}
    object.__setattr__(grant, "connection_ids", MappingProxyType(wider))
    with pytest.raises(GateError) as refused:
        grant.read("quarter_hours")
    assert refused.value.rules == ("PRV-1.grant",)
    object.__setattr__(grant, "connection_ids", {E3X25: e1})  # a plain, mutable dict
    with pytest.raises(GateError):
        grant.read("quarter_hours")
    assert _refused_reads(register) == [("PRV-1.grant",), ("PRV-1.grant",)]


def test_a_grant_with_another_request_or_decision_reads_nothing(world) -> None:  # type: ignore[no-untyped-def]
    """PRV-1.grant: replacing a grant's decision or request (a longer period, another
    kind, another party, another decision's audit record) is refused and audited."""
    register, store = world
    gate = _gate(register, store)
    grant = gate.request(_uc3((E3X25,), days=2))
    assert isinstance(grant, Grant)
    decision, request = grant.decision, grant.request
    longer = replace(request, period=_period(10, T0 - timedelta(days=2)))
    forged = [
        replace(grant, decision=replace(decision, request=longer)),
        replace(grant, decision=replace(decision, request=replace(request, party=APP))),
        replace(grant, decision=replace(decision, audit_seq=(decision.audit_seq or 0) + 1)),
        replace(grant, decision=replace(decision, request=replace(request, purpose="UC5"))),
    ]
    for fake in forged:
        with pytest.raises(GateError) as refused:
            fake.read("quarter_hours")
        assert refused.value.rules == ("PRV-1.grant",)
    object.__setattr__(grant, "decision", replace(decision, request=longer))
    with pytest.raises(GateError):
        grant.read("quarter_hours")
    assert _refused_reads(register) == [("PRV-1.grant",)] * 5


def test_a_hand_made_grant_reads_nothing_and_is_audited(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """PRV-1.grant: a :class:`Grant` built by hand, with an audit record the gate never
    wrote or one that refused, reads, exports, aggregates and deletes nothing."""
    register, store = world
    gate = _gate(register, store)
    refused = gate.request(_uc3((E3X25,), days=11))
    assert isinstance(refused, Decision) and not refused.granted
    with register.session() as s:
        e3 = s.db.execute(
            select(schema.connection.c.id).where(schema.connection.c.ean == E3X25)
        ).scalar_one()
    rule = load_catalogue().get("UC3")
    assert rule is not None
    request = _uc3((E3X25,), days=2)
    fakes = [
        Grant(Decision(request, (), 999), rule, {E3X25: e3}, gate),
        Grant(Decision(request, (), None), rule, {E3X25: e3}, gate),
        Grant(Decision(request, (), refused.audit_seq), rule, {E3X25: e3}, gate),
    ]
    for fake in fakes:
        with pytest.raises(GateError) as stopped:
            fake.read("quarter_hours")
        assert stopped.value.rules == ("PRV-1.grant",)
    with pytest.raises(GateError):
        fakes[0].export("quarter_hours", tmp_path / "copy.parquet")
    with pytest.raises(GateError):
        fakes[0].finish()
    assert not (tmp_path / "copy.parquet").exists()
    with register.session() as s:
        reads = [r for r in audit.records(s.db) if r.entry.event == "read"]
        assert not audit.verify(s.db)
    assert [(r.entry.outcome, r.entry.rules) for r in reads] == [("refused", ("PRV-1.grant",))] * 5
    assert reads[0].entry.detail["audit_seq"] == 999


def test_a_faithful_copy_of_a_grant_reads_as_the_grant(world) -> None:  # type: ignore[no-untyped-def]
    """A grant that matches the gate's stored record reads exactly what it granted,
    whether the object the gate returned or an equal one built from it."""
    register, store = world
    grant = _gate(register, store).request(_uc3((E3X25,), days=2))
    assert isinstance(grant, Grant)
    first = grant.read("quarter_hours")
    again = replace(grant).read("quarter_hours")
    assert first.equals(again) and first.num_rows == 2 * 96
    assert _refused_reads(register) == []


def test_grants_are_checked_alike_on_both_engines(register: Register) -> None:
    """The stored-record check (one query) passes a real grant and refuses a forged one
    on SQLite and PostgreSQL; with no store the real one gets as far as the store."""
    with register.session() as s:
        _setup(s)
    gate = _gate(register, None)
    grant = gate.request(_uc3((E3X25,), days=2))
    assert isinstance(grant, Grant)
    with pytest.raises(GateError) as no_store:
        grant.read("quarter_hours")
    assert no_store.value.rules == ()
    later = replace(grant.request, period=_period(2, T0 + timedelta(days=1)))
    with pytest.raises(GateError) as forged:
        replace(grant, decision=replace(grant.decision, request=later)).read("quarter_hours")
    assert forged.value.rules == ("PRV-1.grant",)
