"""Run every scenario of ``tests/scenarios/<purpose>/cases.toml`` through the gate.

The cases are data a privacy officer can read (see README.md); this file only builds
the scenario register, turns a case into a request and compares the decision.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from tests.unit.domain.factories import attributes, contract

from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import AdminSwitch, PhysicalStatus, RemoteReading
from meetpunt.domain.ean import ean_from_serial
from meetpunt.privacy import consent
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import Register
from meetpunt.register import schema as t

HERE = Path(__file__).parent
S1, S2 = "8710000000017", "8710000000024"
SINCE = date(2024, 1, 1)
MOVE = date(2025, 7, 5)
NAMES = (
    "normal",
    "neighbour",
    "switched",
    "contractless",
    "out_of_service",
    "out_of_service_off",
    "opted_out",
    "moved",
)
SUPPLIERS = {"S1": S1, "S2": S2}
EANS = {name: ean_from_serial("87168740", 500 + i) for i, name in enumerate(NAMES)}


def _cases() -> Iterator[Any]:
    for path in sorted(HERE.glob("*/cases.toml")):
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        for case in document["case"]:
            case.setdefault("purpose", document["purpose"])
            yield pytest.param(case, id=f"{path.parent.name}: {case['name']}")


def build(register: Register) -> None:
    """The scenario register of README.md."""
    on = attributes("1x35")
    with register.session() as s:
        for name, ean in EANS.items():
            attrs = on
            if name.startswith("out_of_service"):
                switch = AdminSwitch.OFF if name.endswith("_off") else AdminSwitch.ON
                attrs = replace(on, status=PhysicalStatus.OUT_OF_SERVICE, admin_switch=switch)
            if name == "opted_out":
                attrs = replace(on, remote_reading=RemoteReading.ADMINISTRATIVELY_OFF)
            s.record_connection(ean, Commodity.ELECTRICITY, attrs, date(2020, 1, 1))
        s.add_contract(contract(EANS["normal"], SINCE, supplier=S1, contract_holder="J. de Vries"))
        s.add_contract(contract(EANS["neighbour"], SINCE, supplier=S2, contract_holder="A. Jansen"))
        s.add_contract(contract(EANS["switched"], SINCE, date(2025, 7, 5), supplier=S1))
        s.add_contract(contract(EANS["switched"], date(2025, 7, 5), supplier=S2))
        s.add_contract(contract(EANS["opted_out"], SINCE, supplier=S1))
        moved = EANS["moved"]
        s.add_contract(contract(moved, SINCE, MOVE, supplier=S1, contract_holder="P. Bakker"))
        s.add_contract(contract(moved, MOVE, supplier=S2, contract_holder="K. Visser"))


def _period(start: date, days: float) -> Period:
    first = local_midnight_utc(start)
    return Period(first, first + timedelta(days=days))


def _prepare(register: Register, case: dict[str, Any], eans: list[str]) -> None:
    with register.session() as s:
        ids = {
            r.ean: r.id
            for r in s.db.execute(t.connection.select().where(t.connection.c.ean.in_(eans)))
        }
        for past in case.get("history", []):
            period = _period(past["start"], past["days"])
            for ean in eans:
                s.db.execute(
                    insert(t.privacy_grant).values(
                        audit_seq=0,
                        party="history",
                        purpose=past["purpose"],
                        connection_id=ids[ean],
                        kinds=json.dumps(sorted(past.get("kinds", case["kinds"]))),
                        period_start=period.start,
                        period_end=period.end,
                        granted_at=period.start,
                    )
                )
        given = case.get("consent")
        if given:
            for ean in eans:
                made = consent.give(
                    s.db,
                    SUPPLIERS.get(given["party"], given["party"]),
                    given.get("purpose", case["purpose"]),
                    ean,
                    given["kinds"],
                    _period(given["from"], (given["until"] - given["from"]).days),
                    "the customer",
                    datetime(2024, 12, 1, tzinfo=UTC),
                )
                if given.get("state", "given") != "given":
                    consent.change(s.db, made.id, given["state"], datetime(2024, 12, 2, tzinfo=UTC))


def _flag(gate: Gate, case: dict[str, Any], party_id: str, period: Period) -> int | None:
    """The id the request cites: ``cites`` as given, else the finding ``flag`` describes,
    stored through the gate (by default by the asking party, naming the requested
    connections the scenario register knows, opening the case's purpose, 90 days)."""
    if "cites" in case:
        return int(case["cites"])
    flag = case.get("flag")
    if flag is None:
        return None
    names = flag.get("names", case["connections"])
    return gate.flag(
        Party(flag.get("party", party_id), Role.GRID_OPERATOR),
        flag["usecase"],
        flag.get("step", "scenario"),
        flag.get("opens", case["purpose"]),
        [EANS[n] for n in names if n in EANS],
        period.start + timedelta(days=flag.get("valid_days", 90)),
        case["name"],
    )


@pytest.mark.parametrize("case", list(_cases()))
def test_scenario(register: Register, case: dict[str, Any]) -> None:
    build(register)
    eans = [EANS.get(c, c) for c in case["connections"]]
    _prepare(register, case, eans)
    period = _period(case["start"], case["days"])
    role = Role(case["party"])
    party_id = SUPPLIERS.get(case.get("party_id", ""), case.get("party_id", role.value))
    request = AccessRequest(
        party=Party(party_id, role),
        purpose=case["purpose"],
        connections=tuple(eans),
        kinds=frozenset(case["kinds"]),
        period=period,
        at=local_midnight_utc(case["asked_on"]) if "asked_on" in case else period.start,
        justification=case["name"],
        trigger=case.get("trigger"),
    )
    gate = Gate(register, None, load_catalogue(), clock=lambda: period.start)
    decision = gate.request(replace(request, cites=_flag(gate, case, party_id, period)))
    rules = decision.rules if isinstance(decision, Decision) else ()
    if case["expect"] == "granted":
        assert rules == (), f"refused: {rules}"
    else:
        assert sorted(rules) == sorted(case["expect"])
