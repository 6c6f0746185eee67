"""The attack suite (PRV-6, issue 15): an adversary tries to recover one connection's
values through ``Gate.request`` and ``Grant.aggregate`` on a small world.

Each attack is written as the adversary would: ask for releases, do the arithmetic, and
compare the result with the truth (which only the test knows). Each one reports
``tried`` and an outcome: ``refused`` (the gate refused the request or read),
``suppressed`` (the cell the attack needs was not shown), ``released-safe`` (released,
but the arithmetic gives no individual value) or ``recovered`` (the attack worked). The
last test writes the table to ``attacks.json`` in pytest's tmp dir, prints it, and
fails on any ``recovered``.

The world: pc4 5617 (pc3 561, Eindhoven) with Dorpsstraat (12 houses, dynamic
contracts, one more opted out, one joining on day 3), Kerkstraat (12 houses, 3 with
solar export), Molenweg (1 house: the usual target), Schoolstraat (10 houses and one
big consumer), Beukenlaan (16, dynamic) and Eikenlaan (16); Dorpsstraat and Molenweg
on feeder K1. Every house has its own
quarter-hour import, so a recovered value is recognisable. UC6 (grid management) read
everything first, so UC11 and UC13 may count it (``already_read``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import insert, select

from meetpunt import rulebook
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import Address, GridPosition, RemoteReading
from meetpunt.domain.contract import ContractType
from meetpunt.domain.ean import ean_from_serial
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import open_store
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.disclosure import PublicRelease
from meetpunt.privacy.gate import Gate, GateError, Grant
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import open_register
from meetpunt.register import schema as tables
from tests.unit.domain.factories import attributes, contract

D0 = date(2025, 7, 7)  # a Monday
T0 = local_midnight_utc(D0)
GRID = Party("8716874000009", Role.GRID_OPERATOR)
RESEARCHER = Party("ut-1", Role.RESEARCHER, "Universiteit Twente")
QH = frozenset({"quarter_hours"})
RESULTS: dict[str, dict[str, Any]] = {}


def at_day(n: int) -> datetime:
    return local_midnight_utc(D0 + timedelta(days=n))


@dataclass(frozen=True)
class House:
    ean: str
    street: str
    postcode: str
    feeder: str
    import_wh: int
    export_wh: int = 0
    dynamic: bool = False
    opted_out: bool = False
    joins: int = 0  # the day it joins


def _houses() -> list[House]:
    out: list[House] = []
    serial = 9000

    def add(street: str, pc: str, feeder: str, n: int, **kw: Any) -> None:
        nonlocal serial
        for _ in range(n):
            serial += 1
            out.append(
                House(
                    ean_from_serial("87168740", serial), street, pc, feeder, 40 + 3 * len(out), **kw
                )
            )

    add("Dorpsstraat", "5617AA", "K1", 12, dynamic=True)
    add("Dorpsstraat", "5617AA", "K1", 1, opted_out=True)
    add("Dorpsstraat", "5617AA", "K1", 1, joins=2)
    add("Kerkstraat", "5617AB", "K2", 3, export_wh=150)
    add("Kerkstraat", "5617AB", "K2", 9)
    add("Molenweg", "5617AC", "K1", 1)
    add("Beukenlaan", "5617AE", "K4", 16, dynamic=True)
    add("Eikenlaan", "5617AF", "K4", 16)
    add("Schoolstraat", "5617AD", "K3", 10)
    out.append(House(ean_from_serial("87168740", 9999), "Schoolstraat", "5617AD", "K3", 4000))
    return out


HOUSES = _houses()
BY_STREET: dict[str, list[House]] = {}
for _h in HOUSES:
    BY_STREET.setdefault(_h.street, []).append(_h)
TARGET = BY_STREET["Molenweg"][0]


def _attrs(h: House, street: str | None = None, postcode: str | None = None) -> Any:
    base = attributes("3x25")
    address = Address(
        postcode=postcode or h.postcode,
        house_number=int(h.ean[-4:]),
        street=street or h.street,
        city="Eindhoven",
        municipality="Eindhoven",
        woz_object_id=h.ean[-12:],
    )
    remote = RemoteReading.ADMINISTRATIVELY_OFF if h.opted_out else RemoteReading.STANDARD
    return replace(
        base, address=address, grid=GridPosition("OS-1", h.feeder, None), remote_reading=remote
    )


def _rows(h: House) -> list[dict[str, Any]]:
    first = at_day(h.joins)
    n = 96 * (7 - h.joins)
    return [
        {
            "ean": h.ean,
            "start": first + timedelta(minutes=15 * i),
            "import_wh": h.import_wh + (i % 96) // 24,
            "export_wh": h.export_wh if 40 <= i % 96 < 64 else 0,
        }
        for i in range(n)
    ]


def truth(h: House, first: int, days: int, column: str = "import_wh") -> int:
    """What only the test knows: one house's sum over days ``first`` .. ``first+days-1``."""
    return sum(
        int(r[column]) for r in _rows(h) if at_day(first) <= r["start"] < at_day(first + days)
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("attack_world")
    register = open_register(f"sqlite:///{folder / 'register.sqlite'}")
    with register.session() as s:
        for h in HOUSES:
            since = D0 + timedelta(days=h.joins) if h.joins else date(2020, 1, 1)
            s.record_connection(h.ean, Commodity.ELECTRICITY, _attrs(h), since)
            kind = ContractType.DYNAMIC if h.dynamic else ContractType.VARIABLE
            s.add_contract(contract(h.ean, since, contract_type=kind))
        index = ConnectionIndex(s.meter_index(), 230.0)
    store = open_store(folder / "meterdata.duckdb")
    ingestor = Ingestor(store, index, rulebook.vee_rules(), now=datetime(2026, 1, 1, tzinfo=UTC))
    rows = [r for h in HOUSES for r in _rows(h)]
    schema = pa.schema([f for f in KINDS["quarter_hours"].source_schema() if f.name != "record"])
    table = pa.Table.from_pydict(
        {f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema
    )
    ingestor.ingest(SourceData("attack-world", "", {"quarter_hours": table}))
    store.close()
    with register.session() as s:  # an energy app read July's quarter-hours (UC13 reuses them)
        july = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
        for h in HOUSES:
            if h.joins:
                continue
            s.db.execute(
                insert(tables.privacy_grant).values(
                    audit_seq=0,
                    party="app-1",
                    purpose="app_consent",
                    connection_id=_cid(s.db, h.ean),
                    kinds=json.dumps(["quarter_hours"]),
                    period_start=july.start,
                    period_end=july.end,
                    granted_at=july.start,
                )
            )
    gate = Gate(register, None, load_catalogue(), clock=lambda: at_day(8))
    settled = [h.ean for h in HOUSES if not h.joins]
    for eans, first, days in ((settled, 0, 7), ([h.ean for h in HOUSES if h.joins], 2, 5)):
        request = AccessRequest(
            GRID, "UC6", tuple(eans), QH, Period(at_day(first), at_day(first + days)), at_day(first)
        )
        assert isinstance(gate.request(request), Grant)  # grid management read it first
    register.dispose()
    return folder


def _cid(db: Any, ean: str) -> int:
    return int(
        db.execute(
            select(tables.connection.c.id).where(
                tables.connection.c.ean == ean, tables.connection.c.commodity == "electricity"
            )
        ).scalar_one()
    )


class World:
    """A fresh copy of the world for one attack, with the adversary's tools."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.register = open_register(f"sqlite:///{folder / 'register.sqlite'}")
        self.store = open_store(folder / "meterdata.duckdb", read_only=True)
        self.gate = Gate(self.register, self.store, load_catalogue(), clock=lambda: at_day(8))

    def restart(self) -> None:
        self.close()
        self.__init__(self.folder)  # type: ignore[misc]

    def close(self) -> None:
        self.store.close()
        self.register.dispose()

    def ask(
        self,
        purpose: str,
        period: Period,
        column: str = "import_wh",
        eans: Sequence[str] = (),
        level: str | None = None,
        areas: Sequence[str] | None = None,
        party: Party = GRID,
    ) -> PublicRelease | str:
        """One aggregate release; a refusal comes back as its message (rule: text)."""
        request = AccessRequest(party, purpose, tuple(eans), QH, period, period.start)
        grant = self.gate.request(request)
        if isinstance(grant, Decision):
            return "; ".join(f"{f.rule}: {f.message}" for f in grant.findings)
        try:
            return grant.aggregate("quarter_hours", column, areas, level)
        except GateError as refused:
            return "; ".join(f"{f.rule}: {f.message}" for f in refused.findings)


def value(release: PublicRelease | str, area: str, first: int = 0) -> float | None:
    if isinstance(release, str):
        return None
    for c in release.cells:
        if c.area == area and c.period_start == at_day(first):
            return c.value
    return None


def days(first: int, n: int = 1) -> Period:
    return Period(at_day(first), at_day(first + n))


@pytest.fixture
def world(template: Path, tmp_path: Path) -> Iterator[World]:
    copy = tmp_path / "world"
    shutil.copytree(template, copy)
    w = World(copy)
    yield w
    w.close()


def report(
    name: str, cls: str, outcome: str, note: str, guess: float | None, actual: float
) -> None:
    """Record one attack; an exact guess of the individual value is ``recovered``."""
    if guess is not None and abs(guess - actual) < 0.5:
        outcome = "recovered"
    RESULTS[name] = {"class": cls, "tried": 1, "outcome": outcome, "note": note}
    assert outcome != "recovered", f"{name}: recovered {actual}"


def street(name: str) -> str:
    return f"5617:{name}"


# ---------------------------------------------------------------- periods


def test_overlapping_periods_days_1_to_7_minus_1_to_6(world: World) -> None:
    dorp = [h.ean for h in BY_STREET["Dorpsstraat"][:12]]
    week = world.ask("UC11", days(0, 7), eans=dorp)
    six = world.ask("UC11", days(0, 6), eans=dorp)
    assert not isinstance(week, str) and not isinstance(six, str)
    # days 1-7 minus days 1-6 is day 7 of the whole street, not of one house; "the
    # others on day 7" are the same fixed cell: the difference is 0
    target = BY_STREET["Dorpsstraat"][0]
    others = value(week, street("Dorpsstraat"), 6)
    guess = (value(week, street("Dorpsstraat"), 6) or 0) - (others or 0)
    report(
        "overlap_week_minus_six_days",
        "periods",
        "released-safe",
        "day grid: a week is 7 day cells; 'the others' are the same fixed cell",
        guess,
        truth(target, 6, 1),
    )


@pytest.mark.parametrize(
    "shift", [timedelta(seconds=1), timedelta(minutes=1), timedelta(minutes=15)]
)
def test_shifting_a_period_escapes_nothing(world: World, shift: timedelta) -> None:
    out = world.ask("UC11", Period(T0 + shift, at_day(1) + shift), eans=[TARGET.ean])
    assert isinstance(out, str) and "PRV-6.period_grid" in out
    report(f"shift_period_{int(shift.total_seconds())}s", "periods", "refused", out[:60], None, 0)


def test_quarter_hours_around_a_join(world: World) -> None:
    """Per-quarter-hour cells around the moment a connection joined: off the grid;
    the days before and after it joined are different days, never subtracted."""
    joiner = BY_STREET["Dorpsstraat"][13]
    qh = world.ask("UC11", Period(at_day(2), at_day(2) + timedelta(minutes=15)), eans=[joiner.ean])
    assert isinstance(qh, str) and "PRV-6.period_grid" in qh
    out = world.ask("UC11", days(1, 2), eans=[joiner.ean])
    before, after = value(out, street("Dorpsstraat"), 1), value(out, street("Dorpsstraat"), 2)
    guess = None if before is None or after is None else after - before
    report(
        "quarter_hours_around_join",
        "periods",
        "released-safe",
        "other days",
        guess,
        truth(joiner, 2, 1),
    )


def test_a_month_over_days_with_a_joiner(world: World) -> None:
    """UC13's month of the postcode against UC11's days of it, while one house joined
    mid-week: the month minus the days would give the joiner's days."""
    everyone = [h.ean for h in HOUSES if not h.opted_out]
    daily = world.ask("UC11", days(0, 7), areas=["5617"], level="pc4")
    month = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
    monthly = world.ask("UC13", month, eans=everyone[:1], areas=["5617"])
    total_days = sum(value(daily, "5617", d) or 0 for d in range(7))
    got = None if isinstance(monthly, str) else next(iter(monthly.cells), None)
    guess = None if got is None else total_days - got.value
    report(
        "month_minus_days_with_joiner",
        "periods",
        "suppressed" if got is None else "released-safe",
        str(monthly)[:60],
        guess,
        truth(BY_STREET["Dorpsstraat"][13], 2, 5),
    )


# ---------------------------------------------------------------- chosen cells


def test_two_disjoint_sets_then_both_plus_one(world: World) -> None:
    kerk = [h.ean for h in BY_STREET["Kerkstraat"]]
    dorp = [h.ean for h in BY_STREET["Dorpsstraat"][:12]]
    a = world.ask("UC11", days(0), eans=dorp[:10])
    b = world.ask("UC11", days(0), eans=kerk[:10])
    both = world.ask("UC11", days(0), eans=[*dorp[:10], *kerk[:10], TARGET.ean], level="pc4")
    parts = [value(a, street("Dorpsstraat")), value(b, street("Kerkstraat")), value(both, "5617")]
    guess = None if None in parts else parts[2] - parts[0] - parts[1]  # type: ignore[operator]
    # the cells are whole streets whatever was asked; the pc4 minus its streets leaves
    # Molenweg + Schoolstraat (12 houses), not the target
    report(
        "chosen_members_disjoint_plus_one",
        "chosen cells",
        "released-safe",
        "fixed cells",
        guess,
        truth(TARGET, 0, 1),
    )


def test_two_streets_then_their_postcode(world: World) -> None:
    out = world.ask(
        "UC11", days(0), areas=[street(s) for s in ("Dorpsstraat", "Kerkstraat", "Schoolstraat")]
    )
    shown = [value(out, street(s)) for s in ("Dorpsstraat", "Kerkstraat", "Schoolstraat")]
    pc4 = world.ask("UC11", days(0), areas=["5617"], level="pc4")
    parent = value(pc4, "5617")
    known = [v for v in shown if v is not None]
    guess = None if parent is None or len(known) < 3 else parent - sum(known)
    outcome = "suppressed" if parent is None or len(known) < 3 else "released-safe"
    report(
        "cross_level_streets_then_postcode",
        "chosen cells",
        outcome,
        "PRV-6.linked",
        guess,
        truth(TARGET, 0, 1),
    )


def test_the_rest_of_the_postcode(world: World) -> None:
    """The old residual cell 'the rest of pc4 5617' no longer exists; asking the parent
    after the shown streets is the cross-level attack, and the municipality too."""
    out = world.ask("UC11", days(0), areas=[street(s) for s in BY_STREET])
    assert not isinstance(out, str)
    assert all(c.level == "street" for c in out.cells)
    shown = sum(c.value for c in out.cells)
    town = value(world.ask("UC11", days(0), areas=["Eindhoven"], level="municipality"), "Eindhoven")
    guess = None if town is None else town - shown
    report(
        "residual_rest_of_postcode",
        "chosen cells",
        "suppressed" if town is None else "released-safe",
        "no residual cells",
        guess,
        truth(TARGET, 0, 1),
    )


def test_the_grid_hierarchy_against_the_address_tree(world: World) -> None:
    """Feeder K1 holds Dorpsstraat and Molenweg: the feeder minus the street."""
    s = world.ask("UC11", days(0), areas=[street("Dorpsstraat")])
    f = world.ask("UC11", days(0), areas=["OS-1/K1"], level="feeder")
    a, b = value(s, street("Dorpsstraat")), value(f, "OS-1/K1")
    guess = None if a is None or b is None else b - a
    report(
        "feeder_minus_street",
        "chosen cells",
        "suppressed" if guess is None else "released-safe",
        "PRV-6.linked",
        guess,
        truth(TARGET, 0, 1),
    )


def test_another_purpose_and_party(world: World) -> None:
    """Grid operator's UC11 streets, then the researcher's UC14 month of pc3 561."""
    world.ask("UC11", days(0, 7), areas=[street(s) for s in BY_STREET])
    month = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
    out = world.ask("UC14", month, areas=["561"], party=RESEARCHER)
    v = value(out, "561") if not isinstance(out, str) else None
    report(
        "cross_purpose_and_party",
        "chosen cells",
        "suppressed" if v is None else "released-safe",
        str(out)[:60],
        None,
        truth(TARGET, 0, 7),
    )


# ---------------------------------------------------------------- history


def test_a_street_renamed_by_a_register_correction(world: World) -> None:
    """Release Dorpsstraat on day 1; a correction renames it (and moves the target in);
    release the renamed street: by label there is no history, by connection there is."""
    first = world.ask("UC11", days(1), areas=[street("Dorpsstraat")])
    with world.register.session() as s:
        for h in [*BY_STREET["Dorpsstraat"][:12], TARGET]:
            s.record_connection(
                h.ean,
                Commodity.ELECTRICITY,
                _attrs(h, "Dorpstraat", "5617AA"),
                D0 + timedelta(days=1),
            )
    world.restart()  # and the history survives a restart
    second = world.ask("UC11", days(1), areas=[street("Dorpstraat")])
    a, b = value(first, street("Dorpsstraat"), 1), value(second, street("Dorpstraat"), 1)
    guess = None if a is None or b is None else b - a
    report(
        "label_correction_after_restart",
        "history",
        "suppressed" if b is None else "released-safe",
        str(second)[:60],
        guess,
        truth(TARGET, 1, 1),
    )


# ---------------------------------------------------------------- what leaves


def test_the_release_object_holds_no_ids_or_withheld_values(world: World) -> None:
    out = world.ask("UC11", days(0), areas=[street(s) for s in BY_STREET])
    assert not isinstance(out, str)
    names = {f.name for f in fields(out)} | {f.name for f in fields(out.cells[0])}
    assert not names & {"connections", "members", "contributors", "merged", "withheld"}
    assert street("Molenweg") in {a for a, _ in out.suppressed}  # named, never its value
    assert json.dumps([c.value for c in out.cells]).count(str(truth(TARGET, 0, 1))) == 0
    report(
        "release_object_leak",
        "what leaves",
        "released-safe",
        "level, area, period, value, count",
        None,
        0,
    )


def test_summing_an_id_column(world: World) -> None:
    out = world.ask("UC11", days(0), column="connection", areas=[street("Dorpsstraat")])
    assert isinstance(out, str) and "PRV-6.column" in out
    report("sum_id_column", "attributes", "refused", out[:60], None, 0)


def test_a_count_shows_who_had_no_readings(world: World) -> None:
    """UC11 releases no count; UC14 counts members (not readings), rounded to 10."""
    out = world.ask("UC11", days(0), areas=[street("Dorpsstraat")])
    assert not isinstance(out, str) and all(c.count is None for c in out.cells)
    report(
        "count_reveals_no_readings",
        "attributes",
        "released-safe",
        "no count / rounded members",
        None,
        0,
    )


def test_an_opt_out_refusal_to_a_researcher(world: World) -> None:
    opted = BY_STREET["Dorpsstraat"][12]
    month = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
    out = world.ask("UC14", month, eans=[opted.ean], party=RESEARCHER)
    text = out if isinstance(out, str) else json.dumps([c.area for c in out.cells])
    assert opted.ean not in text and "opt_out" not in text
    report(
        "opt_out_refusal_names_ean",
        "attributes",
        "released-safe",
        "opt-out applied per cell, silently",
        None,
        0,
    )


def test_withheld_area_reveals_a_contract_type(world: World) -> None:
    """The researcher knows every contract but one in pc3 561; whether 561 is shown
    would say the last one's type. The population rule is decided on noisy counts with
    a margin, so 'shown' at the boundary has probability <= delta."""
    month = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
    out = world.ask("UC14", month, areas=["561"], party=RESEARCHER)
    assert not isinstance(out, str)
    report(
        "withheld_reveals_contract_type",
        "attributes",
        "suppressed" if not out.cells else "released-safe",
        "noisy population rule",
        None,
        0,
    )


# ---------------------------------------------------------------- coalitions


def test_two_solar_owners_learn_the_third(world: World) -> None:
    out = world.ask("UC11", days(0), column="export_wh", areas=[street("Kerkstraat")])
    total = value(out, street("Kerkstraat"))
    solar = BY_STREET["Kerkstraat"][:3]
    guess = (
        None
        if total is None
        else total - truth(solar[0], 0, 1, "export_wh") - truth(solar[1], 0, 1, "export_wh")
    )
    report(
        "coalition_zero_contributors",
        "coalitions",
        "suppressed" if total is None else "released-safe",
        "k counts contributors",
        guess,
        truth(solar[2], 0, 1, "export_wh"),
    )


def test_the_small_households_learn_the_big_consumer(world: World) -> None:
    """Ten small households know their own values; the street's sum would give the
    big consumer's: dominance and the p %-rule suppress it."""
    out = world.ask("UC11", days(0), areas=[street("Schoolstraat")])
    total = value(out, street("Schoolstraat"))
    small = BY_STREET["Schoolstraat"][:10]
    guess = None if total is None else total - sum(truth(h, 0, 1) for h in small)
    report(
        "coalition_dominance",
        "coalitions",
        "suppressed" if total is None else "released-safe",
        "dominance / p%",
        guess,
        truth(BY_STREET["Schoolstraat"][10], 0, 1),
    )


def test_all_other_members_collude_against_a_noisy_release(world: World) -> None:
    """Every member of the researcher's pc3 cell but the target pools its own values
    (the strongest coalition): the rest is the target plus the noise (UC14 is noisy)."""
    month = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
    out = world.ask("UC14", month, areas=["561"], party=RESEARCHER)
    total = value(out, "561", -6)  # the cell of July (1 July is day -6)
    members = [h for h in HOUSES if not h.opted_out and not h.joins]
    target = BY_STREET["Kerkstraat"][5]
    clip = 60_000 * 31  # the catalogue is public: the coalition clips as the gate does
    others = sum(min(truth(h, 0, 7), clip) for h in members if h is not target)
    guess = None if total is None else total - others
    note = "suppressed" if guess is None else f"off by {abs(guess - truth(target, 0, 7)):.0f} Wh"
    outcome = "suppressed" if guess is None else "released-safe"
    report("coalition_all_but_one_noisy", "coalitions", outcome, note, guess, truth(target, 0, 7))


# ---------------------------------------------------------------- own additions


def test_a_finer_level_than_the_purpose(world: World) -> None:
    month = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
    out = world.ask("UC13", month, areas=[street("Dorpsstraat")], level="street")
    assert isinstance(out, str) and "PRV-6.level" in out
    report("finer_level_than_purpose", "own", "refused", out[:60], None, 0)


def test_a_month_starting_on_the_second(world: World) -> None:
    out = world.ask("UC13", days(1, 31), areas=["5617"])
    assert isinstance(out, str) and "PRV-6.period_grid" in out
    report("month_off_the_grid", "own", "refused", out[:60], None, 0)


def test_averaging_repeated_noisy_releases(world: World) -> None:
    """Ask UC14 again and again to average the noise away: the budget runs out."""
    month = Period(local_midnight_utc(date(2025, 7, 1)), local_midnight_utc(date(2025, 8, 1)))
    rules: set[str] = set()
    for _ in range(30):
        out = world.ask("UC14", month, areas=["561"], party=RESEARCHER)
        if not isinstance(out, str):
            rules |= set(out.rules)
    assert "PRV-6.budget" in rules
    report(
        "average_noisy_repeats", "own", "refused", "PRV-6.budget after the yearly epsilon", None, 0
    )


def test_the_same_request_by_ean_lists_of_one(world: World) -> None:
    """Ask 'the area of this one EAN' for each EAN: each answer is the whole street."""
    answers = {
        world.ask("UC11", days(0), eans=[h.ean]).__repr__() for h in BY_STREET["Dorpsstraat"][:12]
    }
    values = {
        value(world.ask("UC11", days(0), eans=[h.ean]), street("Dorpsstraat"))
        for h in BY_STREET["Dorpsstraat"][:3]
    }
    assert len(values) == 1 and len(answers) >= 1
    report("single_ean_selectors", "own", "released-safe", "one fixed cell", None, 0)


# ---------------------------------------------------------------- the table


def test_zz_the_attack_table(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Print and write the per-attack table; zero recovered."""
    assert RESULTS, "run the whole module"
    path = tmp_path_factory.mktemp("attacks") / "attacks.json"
    path.write_text(json.dumps(RESULTS, indent=2), encoding="utf-8")
    lines = [f"{'attack':36} {'class':14} tried outcome"]
    lines += [
        f"{name:36} {r['class']:14} {r['tried']:5} {r['outcome']}"
        for name, r in sorted(RESULTS.items(), key=lambda i: i[1]["class"])
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines) + f"\n(table: {path})")
    assert not [n for n, r in RESULTS.items() if r["outcome"] == "recovered"]
