"""The audit log (PRV-7): a hash chain that verifies, catches every kind of tampering
with its rule, and reads as plain Dutch for the customer. Every test that takes
``register`` or ``db_url`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select, text, update
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.domain.calendar import LOCAL_TZ
from meetpunt.domain.findings import Finding
from meetpunt.errors import DomainError
from meetpunt.privacy import audit, explain
from meetpunt.privacy.audit import GENESIS, AuditEntry, AuditError, AuditRecord
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import Register, open_register
from meetpunt.register.schema import audit_log

EAN_A = "871694840008583575"
EAN_B = "871694840015271748"
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
TITLES = {
    "UC3": "Seizoensanalyse van de spanningskwaliteit",
    "supplier_insight": "Inzicht in uw verbruik",
}
# local midnights: 20 Feb .. 2 Mar 2026 (10 days), 25 Mar .. 1 Apr 2026 (7 days, DST)
FEB20, MAR2 = datetime(2026, 2, 19, 23, tzinfo=UTC), datetime(2026, 3, 1, 23, tzinfo=UTC)
MAR25, APR1 = datetime(2026, 3, 24, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)

ONLY_A = f'["{EAN_A}"]'

runner = CliRunner()


def voltage_read(ean: str = EAN_A, **changes: Any) -> AuditEntry:
    entry = AuditEntry(
        event="decision",
        party="dso",
        purpose="UC3",
        outcome="granted",
        connections=(ean,),
        kinds=("voltages_10min",),
        period_start=FEB20,
        period_end=MAR2,
        detail={"role": "grid_operator", "justification": "seasonal voltage check"},
    )
    return replace(entry, **changes)


def supplier_refusal(ean: str = EAN_A) -> AuditEntry:
    return AuditEntry(
        event="decision",
        party="8712345000004",
        purpose="supplier_insight",
        outcome="refused",
        connections=(ean,),
        kinds=("quarter_hours",),
        period_start=MAR25,
        period_end=APR1,
        rules=("PRV-3.opt_out",),
        detail={"role": "supplier"},
    )


def entries() -> list[AuditEntry]:
    """Six varied entries over two connections."""
    return [
        voltage_read(),
        supplier_refusal(EAN_B),
        voltage_read(EAN_B, outcome="refused", rules=("UC3.window", "UC3.frequency")),
        AuditEntry(
            "consent",
            "app-1",
            "energy_app",
            "given",
            (EAN_A,),
            ("quarter_hours", "daily_readings"),
            MAR25,
            APR1 + timedelta(days=365),
            detail={"role": "app", "given_by": "J. Jansen", "consent": 1},
        ),
        AuditEntry(
            "read",
            "dso",
            "UC3",
            "read",
            (EAN_A, EAN_B),
            ("voltages_10min",),
            FEB20,
            MAR2,
            detail={"role": "grid_operator", "kind": "voltages_10min", "rows": 2880},
        ),
        AuditEntry(
            "retention",
            "dso",
            "UC3",
            "deleted",
            (EAN_A, EAN_B),
            ("voltages_10min",),
            detail={"role": "grid_operator"},
        ),
    ]


def fill(register: Register, items: list[AuditEntry] | None = None) -> list[AuditRecord]:
    """Append ``items`` (default :func:`entries`) an hour apart, after the last record."""
    out: list[AuditRecord] = []
    with register.session() as session:
        last = audit.records(session.db)[-1:]
        start = last[0].at + timedelta(hours=1) if last else T0
        for i, entry in enumerate(entries() if items is None else items):
            out.append(audit.append(session.db, entry, start + timedelta(hours=i)))
    return out


def check(register: Register, **options: Any) -> list[Finding]:
    with register.session() as session:
        return audit.verify(session.db, **options)


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def sql(register: Register, statement: str, **params: Any) -> None:
    with register.engine.begin() as conn:
        conn.execute(text(statement), params)


def set_column(register: Register, seq: int, **values: Any) -> None:
    with register.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(**values))


# --- the chain -----------------------------------------------------------------------------


def test_append_numbers_links_and_reads_back(register: Register) -> None:
    written = fill(register)
    assert [r.seq for r in written] == [1, 2, 3, 4, 5, 6]
    assert written[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))
    assert all(audit.record_hash(r) == r.hash for r in written)
    with register.session() as session:
        assert audit.records(session.db) == written  # a faithful round trip on both engines
        assert audit.head(session.db) == (6, written[-1].hash)
        assert audit.count(session.db) == 6


def test_an_intact_chain_verifies_and_keeps_its_noted_head(register: Register) -> None:
    written = fill(register)
    noted = (6, written[-1].hash)
    assert check(register) == []
    assert check(register, expect_head=noted) == []
    fill(register, [voltage_read()])  # the log grows: the noted head still holds
    assert check(register, expect_head=noted) == []


def test_empty_log(register: Register) -> None:
    with register.session() as session:
        assert audit.head(session.db) == (0, GENESIS)
        assert audit.records(session.db) == []
    assert check(register) == []
    assert rules(check(register, expect_head=(2, "a" * 64))) == ["PRV-7.truncated"]


def test_the_hash_covers_a_canonical_serialisation() -> None:
    entry = voltage_read(detail={"b": 1, "a": [1, 2]})
    body = audit.canonical_bytes(7, T0.astimezone(LOCAL_TZ), entry, GENESIS)
    parsed = json.loads(body)
    assert parsed["at"] == "2026-03-03T09:00:00.000000Z"  # UTC whatever the zone given
    assert parsed["period_start"] == "2026-02-19T23:00:00.000000Z"
    assert parsed["seq"] == 7 and parsed["prev_hash"] == GENESIS
    assert body == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    assert audit.entry_hash(7, T0, entry, GENESIS) == audit.entry_hash(
        7, T0.astimezone(LOCAL_TZ), replace(entry, detail={"a": [1, 2], "b": 1}), GENESIS
    )


def test_append_refuses_naive_times_and_oversized_fields(register: Register) -> None:
    with register.session() as session:
        with pytest.raises(DomainError) as naive:
            audit.append(session.db, voltage_read(), datetime(2026, 3, 3, 9))
        assert naive.value.rules == ("MTR-3.naive",)
        with pytest.raises(AuditError) as long:
            audit.append(session.db, voltage_read(party="x" * 65), T0)
        assert long.value.rules == ("PRV-7.entry",)
        with pytest.raises(AuditError):
            audit.append(session.db, voltage_read(detail={"when": object()}), T0)
    assert check(register) == []


def test_an_append_that_rolls_back_leaves_no_trace(register: Register) -> None:
    fill(register, [voltage_read()])
    with pytest.raises(RuntimeError), register.session() as session:
        audit.append(session.db, voltage_read(), T0)
        raise RuntimeError("the gate failed after auditing")
    record = fill(register, [voltage_read()])[0]
    assert record.seq == 2
    assert check(register) == []


def test_decision_entry_from_a_gate_decision() -> None:
    request = AccessRequest(
        Party("8712345000004", Role.SUPPLIER, "Stroom BV"),
        "supplier_insight",
        (EAN_A,),
        frozenset({"quarter_hours", "daily_readings"}),
        Period(MAR25, APR1),
        T0,
        justification="monthly bill",
    )
    entry = audit.decision_entry(Decision(request, (Finding("PRV-3.opt_out", "opted out"),)))
    assert entry.outcome == "refused"
    assert entry.rules == ("PRV-3.opt_out",)
    assert entry.kinds == ("daily_readings", "quarter_hours")
    assert entry.detail == {
        "role": "supplier",
        "party_name": "Stroom BV",
        "justification": "monthly bill",
    }
    assert audit.decision_entry(Decision(request)).outcome == "granted"


# --- tampering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "seq"),
    [
        pytest.param(
            lambda r: sql(r, "UPDATE audit_log SET outcome = 'refused' WHERE seq = 1"),
            1,
            id="granted-to-refused",
        ),
        pytest.param(
            lambda r: sql(r, "UPDATE audit_log SET outcome = 'granted' WHERE seq = 2"),
            2,
            id="refused-to-granted",
        ),
        pytest.param(
            lambda r: sql(r, "UPDATE audit_log SET connections = :c WHERE seq = 3", c=ONLY_A),
            3,
            id="connection",
        ),
        pytest.param(
            lambda r: set_column(r, 3, period_end=MAR2 + timedelta(days=30)), 3, id="period"
        ),
        pytest.param(
            lambda r: set_column(r, 3, at=T0 + timedelta(hours=2, seconds=1)), 3, id="time"
        ),
        pytest.param(
            lambda r: sql(r, "UPDATE audit_log SET rules = '[]' WHERE seq = 3"), 3, id="rules"
        ),
        pytest.param(
            lambda r: sql(r, 'UPDATE audit_log SET detail = \'{"role":"app"}\' WHERE seq = 4'),
            4,
            id="detail",
        ),
        pytest.param(
            lambda r: sql(r, "UPDATE audit_log SET party = 'someone' WHERE seq = 6"),
            6,
            id="party-of-the-last",
        ),
    ],
)
def test_an_edited_field_is_caught(register: Register, tamper: Any, seq: int) -> None:
    fill(register)
    tamper(register)
    findings = check(register)
    assert rules(findings) == ["PRV-7.edited"]
    assert findings[0].message == (f"record {seq}: its content does not match its hash (edited)")


def test_unreadable_content_is_reported_not_crashed_on(register: Register) -> None:
    fill(register)
    sql(register, "UPDATE audit_log SET detail = 'not json' WHERE seq = 2")
    if register.engine.dialect.name == "sqlite":  # PostgreSQL refuses a bad timestamp itself
        sql(register, "UPDATE audit_log SET at = 'yesterday' WHERE seq = 4")
    findings = check(register)
    assert set(rules(findings)) == {"PRV-7.edited"}
    assert "detail is not JSON" in findings[0].message
    with register.session() as session, pytest.raises(AuditError):
        audit.records(session.db)


def test_a_deleted_record_in_the_middle_is_caught(register: Register) -> None:
    fill(register)
    sql(register, "DELETE FROM audit_log WHERE seq IN (3, 4)")
    assert [f.as_dict() for f in check(register)] == [
        {"rule": "PRV-7.deleted", "message": "records 3-4 are missing (deleted)"}
    ]


def test_a_deleted_first_record_is_caught(register: Register) -> None:
    fill(register)
    sql(register, "DELETE FROM audit_log WHERE seq = 1")
    assert [f.message for f in check(register)] == ["record 1 is missing (deleted)"]


def test_a_deleted_last_record_needs_the_noted_head(register: Register) -> None:
    written = fill(register)
    noted = (6, written[-1].hash)
    sql(register, "DELETE FROM audit_log WHERE seq = 6")
    assert check(register) == []  # a shorter chain is a valid chain
    findings = check(register, expect_head=noted)
    assert rules(findings) == ["PRV-7.truncated"]
    assert "ends at record 5" in findings[0].message


def test_a_cut_and_rewritten_tail_is_caught_by_the_noted_head(register: Register) -> None:
    written = fill(register)
    noted = (6, written[-1].hash)
    sql(register, "DELETE FROM audit_log WHERE seq >= 5")
    fill(register, [voltage_read(), voltage_read()])  # seq 5 and 6 again, validly chained
    assert check(register) == []
    assert rules(check(register, expect_head=noted)) == ["PRV-7.rewritten"]


def test_two_swapped_records_are_caught_as_reordered(register: Register) -> None:
    fill(register)
    sql(register, "UPDATE audit_log SET seq = -3 WHERE seq = 3")
    sql(register, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    sql(register, "UPDATE audit_log SET seq = 4 WHERE seq = -3")
    assert [f.as_dict() for f in check(register)] == [
        {
            "rule": "PRV-7.reordered",
            "message": "records 3 and 4 were swapped: each verifies only at the other's position",
        }
    ]


def test_swapped_contents_are_caught_as_reordered(register: Register) -> None:
    fill(register)
    content = [c.name for c in audit_log.c if c.name not in ("seq", "prev_hash", "hash")]
    with register.engine.begin() as conn:
        rows = {
            r.seq: r._mapping
            for r in conn.execute(select(audit_log).where(audit_log.c.seq.in_([2, 5])))
        }
        for seq, other in ((2, 5), (5, 2)):
            values = {name: rows[other][name] for name in content}
            conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(**values))
    assert [f.message for f in check(register)] == [
        "records 2 and 5 hold each other's contents (swapped)"
    ]


def test_a_moved_record_is_caught_as_reordered(register: Register) -> None:
    fill(register)
    sql(register, "UPDATE audit_log SET seq = 60 WHERE seq = 3")
    assert [f.as_dict() for f in check(register)] == [
        {
            "rule": "PRV-7.reordered",
            "message": "the record stored as 60 was written as record 3 and moved",
        }
    ]


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(register: Register) -> None:
    written = fill(register)
    forged = replace(written[2].entry, outcome="granted", rules=())
    digest = audit.entry_hash(3, written[2].at, forged, written[2].prev_hash)
    sql(
        register,
        "UPDATE audit_log SET outcome = 'granted', rules = '[]', hash = :h WHERE seq = 3",
        h=digest,
    )
    findings = check(register)
    assert rules(findings) == ["PRV-7.broken_chain"]
    assert findings[0].message.startswith("record 4 does not point to the hash of record 3")


def test_time_running_backwards_is_reported_beyond_the_tolerance(register: Register) -> None:
    with register.session() as session:
        audit.append(session.db, voltage_read(), T0)
        audit.append(session.db, voltage_read(), T0 - timedelta(minutes=1))  # two writers
        audit.append(session.db, voltage_read(), T0 - timedelta(hours=2))
    findings = check(register)
    assert rules(findings) == ["PRV-7.reordered"]
    assert findings[0].message.startswith("record 3 is dated 2026-03-03T07:00:00.000000Z")
    assert check(register, time_tolerance=timedelta(hours=3)) == []


@pytest.mark.postgres
def test_concurrent_writers_never_fork_the_chain(postgres_database: str) -> None:
    """Four writers at once on PostgreSQL: the advisory lock serialises them (without it
    the primary key on seq refuses the second writer of a seq instead). SQLite has one
    writer at a time by itself."""
    register = open_register(postgres_database)
    sql(register, "TRUNCATE audit_log")
    errors: list[BaseException] = []

    def writer(party: str) -> None:
        try:
            for _ in range(40):
                with register.session() as session:
                    audit.append(session.db, voltage_read(party=party), T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with register.session() as session:
            assert audit.head(session.db)[0] == 160
        assert check(register) == []
    finally:
        register.dispose()


# --- the customer's view -------------------------------------------------------------------


def test_the_dutch_list_of_a_connection(register: Register) -> None:
    fill(register)
    with register.session() as session:
        mine = audit.records(session.db, ean=EAN_A)
    assert [r.seq for r in mine] == [1, 4, 5, 6]
    assert all(EAN_A in r.entry.connections for r in mine)
    text_nl = [explain.describe(r, "nl", TITLES) for r in mine]
    assert text_nl[0] == (
        "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 10 dagen "
        "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
    )
    read = AuditRecord(9, mine[0].at, replace(mine[0].entry, event="read", outcome="read"), "", "")
    assert explain.describe(read, "nl", TITLES) == (  # the read itself, in its own words
        "Op 3 maart 2026 heeft uw netbeheerder 10 dagen spanningsgegevens uitgelezen "
        "voor: seizoensanalyse van de spanningskwaliteit."
    )
    assert explain.describe(read, "en", {"UC3": "Seasonal voltage quality"}) == (
        "On 3 March 2026 your grid operator read 10 days of voltage data for: "
        "Seasonal voltage quality."
    )
    assert text_nl[1] == (
        "Op 3 maart 2026 heeft u de app app-1 toestemming gegeven om kwartierwaarden en "
        "dagstanden te gebruiken tot 1 april 2027 voor: energy_app."
    )
    assert text_nl[3] == (
        "Op 3 maart 2026 zijn de spanningsgegevens verwijderd die uw netbeheerder had "
        "opgehaald voor: seizoensanalyse van de spanningskwaliteit."
    )
    with register.session() as session:
        assert [r.seq for r in audit.records(session.db, ean=EAN_B)] == [2, 3, 5, 6]
        assert audit.records(session.db, ean="871694840000000000") == []
        later = audit.records(session.db, since=T0 + timedelta(hours=4))
        assert [r.seq for r in later] == [5, 6]
        window = audit.records(session.db, EAN_A, T0, T0 + timedelta(hours=4))
        assert [r.seq for r in window] == [1, 4]


def test_a_refusal_in_plain_dutch_on_the_local_date() -> None:
    at = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # 00:30 on 1 April in Amsterdam (CEST)
    record = AuditRecord(1, at, supplier_refusal(), GENESIS, "0" * 64)
    assert explain.describe(record, "nl", TITLES) == (
        "Op 1 april 2026 vroeg uw leverancier 7 dagen kwartierwaarden op voor: inzicht in "
        "uw verbruik; dit is geweigerd omdat u bezwaar heeft gemaakt tegen het uitlezen van "
        "uw meter."
    )
    assert explain.describe(record, "en") == (
        "On 1 April 2026 your supplier asked for 7 days of quarter-hour values for: "
        "supplier_insight; this was refused because you opted out of remote meter reading."
    )


def test_refusal_reasons_and_roles() -> None:
    entry = voltage_read(
        outcome="refused",
        rules=("UC3.window", "UC3.frequency", "XYZ.odd"),
        detail={"role": "researcher", "party_name": "TU Delft"},
        period_start=T0,
        period_end=T0 + timedelta(hours=6),
    )
    record = AuditRecord(1, T0, entry, GENESIS, GENESIS)
    assert explain.describe(record, "nl") == (
        "Op 3 maart 2026 vroeg onderzoeker TU Delft 6 uur spanningsgegevens op voor: UC3; "
        "dit is geweigerd omdat de gevraagde periode langer is dan voor dit doel is "
        "toegestaan, er vaker gegevens werden opgevraagd dan voor dit doel is toegestaan "
        "en niet aan regel XYZ.odd werd voldaan."
    )
    own = replace(entry, outcome="granted", rules=(), detail={"role": "customer"})
    assert explain.describe(AuditRecord(1, T0, own, GENESIS, GENESIS), "nl").startswith(
        "Op 3 maart 2026 gaf de privacycontrole u toegang tot 6 uur spanningsgegevens"
    )
    own_read = replace(own, event="read", outcome="read")
    assert explain.describe(AuditRecord(1, T0, own_read, GENESIS, GENESIS), "nl").startswith(
        "Op 3 maart 2026 heeft u zelf 6 uur spanningsgegevens uitgelezen"
    )
    unknown = replace(entry, detail={})
    assert "vroeg partij dso" in explain.describe(
        AuditRecord(1, T0, unknown, GENESIS, GENESIS), "nl"
    )


# --- properties ----------------------------------------------------------------------------

_chars = st.sampled_from(list("abcXYZ019 _-.%\\\"'éëüß€ñ中"))
_text = st.text(_chars, min_size=1, max_size=12)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([UTC, LOCAL_TZ]),
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_entries = st.builds(
    AuditEntry,
    event=st.sampled_from(audit.EVENTS),
    party=st.text(_chars, min_size=1, max_size=64),
    purpose=st.text(_chars, min_size=1, max_size=40),
    outcome=st.sampled_from(["granted", "refused", "read", "given", "revoked", "deleted"]),
    connections=st.lists(st.sampled_from([EAN_A, EAN_B, "871694840000000017"]), max_size=3).map(
        tuple
    ),
    kinds=st.lists(st.sampled_from(sorted(explain.KINDS)), max_size=3).map(tuple),
    period_start=st.none() | _times,
    period_end=st.none() | _times,
    rules=st.lists(st.sampled_from(["UC3.window", "PRV-3.opt_out", "PRV-4.consent"])).map(tuple),
    detail=st.dictionaries(_text, _json, max_size=4),
)
_property = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@contextmanager
def rolled_back(register: Register) -> Iterator[Connection]:
    """One hypothesis example in one transaction, undone afterwards (a clean log)."""
    with register.engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()


@_property
@given(items=st.lists(_entries, min_size=1, max_size=6))
def test_any_sequence_of_entries_verifies(register: Register, items: list[AuditEntry]) -> None:
    with rolled_back(register) as db:
        written = [audit.append(db, e, T0 + timedelta(minutes=i)) for i, e in enumerate(items)]
        assert audit.verify(db) == []
        assert audit.verify(db, expect_head=(written[-1].seq, written[-1].hash)) == []
        assert audit.records(db) == written
        for record in written:
            assert explain.describe(record, "nl").startswith("Op ")
            assert explain.describe(record, "en").startswith("On ")


def _changed(column: str, old: Any, data: st.DataObject) -> Any:
    if column in ("at", "period_start", "period_end"):
        if old is not None and data.draw(st.booleans()) and column != "at":
            return None
        base = old if old is not None else T0
        return base + timedelta(microseconds=data.draw(st.integers(1, 10**9)))
    if column in ("event", "party", "purpose", "outcome"):
        return old[:-1] if len(old) > 1 else old + "x"
    if column in ("connections", "kinds", "rules"):
        return json.dumps([*json.loads(old), "tampered"])
    if column == "detail":
        return json.dumps({"wrapped": json.loads(old)})
    if column in ("prev_hash", "hash"):
        return ("1" if old[0] == "0" else "0") + old[1:]
    assert column == "seq"
    return old + 1000


@_property
@given(
    items=st.lists(_entries, min_size=1, max_size=5),
    column=st.sampled_from([c.name for c in audit_log.c]),
    data=st.data(),
)
def test_any_single_field_change_is_caught(
    register: Register, items: list[AuditEntry], column: str, data: st.DataObject
) -> None:
    with rolled_back(register) as db:
        written = [audit.append(db, e, T0 + timedelta(minutes=i)) for i, e in enumerate(items)]
        seq = data.draw(st.integers(1, len(written)))
        old = db.execute(select(audit_log.c[column]).where(audit_log.c.seq == seq)).scalar()
        if column in ("at", "period_start", "period_end") and old is not None:
            old = old.replace(tzinfo=UTC) if old.tzinfo is None else old
        new = _changed(column, old, data)
        db.execute(update(audit_log).where(audit_log.c.seq == seq).values({column: new}))
        found = rules(audit.verify(db, expect_head=(written[-1].seq, written[-1].hash)))
        assert found, f"changing {column} of record {seq} went unnoticed"
        if column == "seq":
            assert "PRV-7.reordered" in found
        else:
            assert "PRV-7.edited" in found


# --- the command ---------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_head_verify_and_list(db_url: str) -> None:
    register = open_register(db_url)
    try:
        written = fill(register)
    finally:
        register.dispose()
    code, out = run("audit", "head", "--db", db_url)
    assert (code, out.strip()) == (0, f"6:{written[-1].hash}")
    code, out = run("audit", "verify", "--db", db_url, "--expect-head", out.strip())
    assert code == 0
    assert "intact" in out and "6 record(s)" in out
    code, out = run("audit", "list", "--ean", EAN_A, "--db", db_url)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(
        "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 10 dagen "
        "spanningsgegevens voor: "
    )
    code, out = run("audit", "list", "--ean", EAN_B, "--lang", "en", "--db", db_url)
    assert code == 0
    assert out.splitlines()[0].startswith("On 3 March 2026 your supplier asked for 7 days")
    code, out = run("audit", "list", "--ean", EAN_A, "--db", db_url, "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in listed] == [1, 4, 5, 6]
    assert listed[0]["text"].startswith("Op 3 maart 2026")
    assert listed[0]["connections"] == [EAN_A]


def test_cli_verify_reports_tampering_and_a_cut_tail(db_url: str) -> None:
    register = open_register(db_url)
    try:
        written = fill(register)
        sql(register, "UPDATE audit_log SET outcome = 'granted' WHERE seq = 2")
        sql(register, "DELETE FROM audit_log WHERE seq = 6")
    finally:
        register.dispose()
    code, out = run("audit", "verify", "--db", db_url)
    assert code == 1
    assert "PRV-7.edited: record 2:" in out
    code, out = run(
        "audit", "verify", "--db", db_url, "--json", "--expect-head", f"6:{written[-1].hash}"
    )
    assert code == 1
    report = json.loads(out)
    assert report["intact"] is False
    assert report["records"] == 5
    assert [f["rule"] for f in report["findings"]] == ["PRV-7.edited", "PRV-7.truncated"]


def test_cli_uses_the_default_register_and_checks_its_options() -> None:
    register = open_register()  # the SQLite file in the (isolated) meetpunt home
    try:
        fill(register, [voltage_read()])
    finally:
        register.dispose()
    code, out = run("audit", "head", "--json")
    assert code == 0 and json.loads(out)["seq"] == 1
    assert run("audit", "verify")[0] == 0
    assert run("audit", "list", "--ean", EAN_B)[1].strip() == "Geen gegevens gevonden."
    assert run("audit", "verify", "--expect-head", "1:abc")[0] == 2
    assert run("audit", "list", "--lang", "fr")[0] == 2
    code, out = run("audit", "--help")
    assert code == 0
    assert all(word in out for word in ("verify", "list", "head", "PRV-7"))


# --- the export the customer or a regulator keeps ------------------------------------------


def _export(db_url: str, *options: str, tmp: Any) -> Any:
    path = tmp / "kept.jsonl"
    result = runner.invoke(app, ["audit", "export", "--db", db_url, "--out", str(path), *options])
    assert result.exit_code == 0, result.output
    return path


def _verify_against(db_url: str, path: Any) -> tuple[int, list[str]]:
    result = runner.invoke(
        app, ["audit", "verify", "--db", db_url, "--against", str(path), "--json"]
    )
    return result.exit_code, [f["rule"] for f in json.loads(result.stdout)["findings"]]


def test_an_export_ends_with_the_head_and_verifies_while_the_log_holds(
    db_url: str, tmp_path: Any
) -> None:
    register = open_register(db_url)
    try:
        written = fill(register)
    finally:
        register.dispose()
    path = _export(db_url, tmp=tmp_path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["seq"] for line in lines[:-1]] == [1, 2, 3, 4, 5, 6]
    assert lines[-1]["head"] == {"seq": 6, "hash": written[-1].hash}
    assert _verify_against(db_url, path) == (0, [])
    register = open_register(db_url)
    try:
        fill(register, [voltage_read()])  # the log grows: the export still holds
    finally:
        register.dispose()
    assert _verify_against(db_url, path) == (0, [])


def test_a_kept_export_catches_a_cut_tail_and_a_rewritten_chain(db_url: str, tmp_path: Any) -> None:
    """Cut at the end, or everything from record 5 on rewritten with valid hashes: the
    chain alone verifies, the export kept earlier does not (PRV-7)."""
    register = open_register(db_url)
    try:
        fill(register)
        path = _export(db_url, tmp=tmp_path)
        sql(register, "DELETE FROM audit_log WHERE seq = 6")
        assert check(register) == []
        assert _verify_against(db_url, path) == (1, ["PRV-7.truncated", "PRV-7.deleted"])
        sql(register, "DELETE FROM audit_log WHERE seq >= 5")
        fill(register, [voltage_read(EAN_B), voltage_read(EAN_B)])
        assert check(register) == []
        code, found = _verify_against(db_url, path)
        assert code == 1 and set(found) == {"PRV-7.rewritten"}
    finally:
        register.dispose()


def test_a_customers_own_export_catches_a_removed_record_of_theirs(
    db_url: str, tmp_path: Any
) -> None:
    """The customer keeps only the records naming their EAN; one of them taken out of
    the middle and the chain rebuilt after it is still caught."""
    register = open_register(db_url)
    try:
        fill(register)
        path = _export(db_url, "--ean", EAN_A, tmp=tmp_path)
        kept = [json.loads(line) for line in path.read_text().splitlines()]
        assert all(EAN_A in line["connections"] for line in kept[:-1])
        with register.session() as session:
            later = audit.records(session.db)[4:]  # seq 5, 6
        sql(register, "DELETE FROM audit_log WHERE seq >= 4")
        fill(register, [r.entry for r in later])  # rechained as 4, 5: a valid chain
        assert check(register) == []
        code, found = _verify_against(db_url, path)
        assert code == 1 and "PRV-7.rewritten" in found
    finally:
        register.dispose()


def test_verify_refuses_a_file_that_is_not_an_export(db_url: str, tmp_path: Any) -> None:
    open_register(db_url).dispose()
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    result = runner.invoke(app, ["audit", "verify", "--db", db_url, "--against", str(path)])
    assert result.exit_code == 2 and "not a line of 'meetpunt audit export'" in result.output
