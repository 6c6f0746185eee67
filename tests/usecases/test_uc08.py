"""UC8 VZC invoices (issue 20): pure spans on constructed readings, and one small twin
crossing 1 July through the gate, scored against the twin's truth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from meetpunt.app.hub import hub_store, ingest_paths
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.market.rules import market_tariffs
from meetpunt.privacy import audit
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period, Role
from meetpunt.register import open_register
from meetpunt.register.csvio import import_file
from meetpunt.twin.generate import TwinSettings, generate
from meetpunt.usecases.uc08_vzc import (
    Reading,
    Uc08Result,
    gas_readings_of,
    gas_spans,
    invoice_contractless,
    invoices_of,
    spans,
)

OPERATOR = Party("8716874000009", Role.GRID_OPERATOR, "Meetnet")
START, DAYS = date(2025, 6, 26), 8


def at(day: str) -> datetime:
    return local_midnight_utc(date.fromisoformat(day))


def test_spans_open_on_the_first_daily_reading_and_close_on_each_month() -> None:
    period = Period(at("2025-06-10"), at("2025-08-05"))
    daily = {"A": [Reading(at("2025-06-10"), 1000, 0), Reading(at("2025-06-11"), 1010, 0)]}
    monthly = {
        "A": [Reading(at("2025-07-01"), 1500, 0), Reading(at("2025-08-01"), 1900, 0)],
        "B": [Reading(at("2025-07-01"), 800, 0)],  # one reading: nothing to invoice yet
    }
    found = spans(daily, monthly, period)
    assert list(found) == ["A"]
    assert [(o.import_wh, c.import_wh) for o, c in found["A"]] == [(1000, 1500), (1500, 1900)]
    made, aside = invoices_of(found, market_tariffs())
    # 500 Wh = 0.5 kWh and 400 Wh = 0.4 kWh at the VZC price of market_tariffs
    price = market_tariffs().vzc_electricity_per_kwh
    assert [i.invoice.lines[0].amount for i in made] == [
        (Decimal("0.5") * price).quantize(Decimal("0.01")),
        (Decimal("0.4") * price).quantize(Decimal("0.01")),
    ]
    assert aside == []


def test_registers_going_back_are_set_aside_not_invoiced() -> None:
    period = Period(at("2025-06-10"), at("2025-07-05"))
    found = spans(
        {"A": [Reading(at("2025-06-10"), 9000, 0)]},
        {"A": [Reading(at("2025-07-01"), 200, 0)]},  # a replaced meter starts near zero
        period,
    )
    made, aside = invoices_of(found, market_tariffs())
    assert made == [] and aside and "go back" in aside[0][1]


def test_gas_is_invoiced_from_the_register_at_the_start_and_at_the_month_boundary() -> None:
    """UC8 gas (the use-case list: "Klanten die gas en stroom afnemen ..."): hours of 30
    June 23:00 and 1 July 00:00 local (21:00 and 22:00 UTC). The period opens on the
    first hour's start: 5000 - 40 = 4960 dm3; 1 July 00:00 is that hour's end, 5000 dm3.
    40 dm3 = 0.04 m³ at the VZC gas price."""
    first_hour = at("2025-07-01") - timedelta(hours=1)
    table = pa.table(
        {
            "connection": [7, 7, 9],
            "start": [first_hour, at("2025-07-01"), first_hour],
            "volume_dm3": [40, 55, 10],
            "reading_dm3": [5000, 5055, 10],
        }
    )
    period = Period(first_hour, at("2025-07-01") + timedelta(hours=1))
    found = gas_spans(gas_readings_of(table, {7: "G"}), period)  # 9 not asked for
    [(opening, closing)] = found["G"]
    assert (opening.at, opening.import_wh) == (first_hour, 4960)
    assert (closing.at, closing.import_wh) == (at("2025-07-01"), 5000)
    made, aside = invoices_of(found, market_tariffs(), Commodity.GAS)
    price = market_tariffs().vzc_gas_per_m3
    [inv] = made
    assert inv.commodity is Commodity.GAS and inv.invoice.lines[0].unit == "m³"
    assert inv.invoice.lines[0].amount == (Decimal("0.04") * price).quantize(Decimal("0.01"))
    assert inv.as_dict()["import_m3"] == 0.04 and aside == []


@pytest.fixture(scope="module")
def twin_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Uc08Result, list[audit.AuditRecord]]]:
    folder = tmp_path_factory.mktemp("uc8")
    generate(TwinSettings(200, DAYS, START, 3), folder / "twin")
    register = open_register(f"sqlite:///{folder / 'register.sqlite'}")
    for name in ("connections", "secondary_allocation_points", "contracts"):
        with register.session() as session:
            import_file(session, folder / "twin" / "register" / f"{name}.csv")
    period = Period(local_midnight_utc(START), local_midnight_utc(START + timedelta(days=DAYS)))
    now = period.end + timedelta(hours=8)
    with hub_store(folder / "meterdata.duckdb") as store:
        ingest_paths(store, register, [folder / "twin" / "meterdata"])
        gate = Gate(register, store, load_catalogue(), clock=lambda: now)
        result = invoice_contractless(gate, OPERATOR, period, now, "monthly VZC run")
    with register.session() as session:
        records = audit.records(session.db)
    yield folder / "twin", result, records
    register.dispose()


def test_uc8_invoices_every_contractless_smart_meter_with_the_true_kwh(
    twin_run: tuple[Path, Uc08Result, list[audit.AuditRecord]],
) -> None:
    twin, result, records = twin_run
    truth = pq.read_table(twin / "truth" / "connections.parquet").to_pylist()
    contractless = {r["ean"] for r in truth if r["contractless"] and r["meter"] != "ferraris"}
    assert contractless, "the twin must have contractless smart meters for this test"
    invoiced = {i.ean for i in result.invoices if i.commodity is Commodity.ELECTRICITY}
    assert invoiced == contractless
    # the invoiced kWh are the twin's quarter-hour consumption between the two readings
    quarters = pq.read_table(twin / "meterdata" / "quarter_hours.parquet")
    for inv in (i for i in result.invoices if i.commodity is Commodity.ELECTRICITY):
        rows = quarters.filter(
            pc.and_(
                pc.equal(quarters["ean"], inv.ean),
                pc.and_(
                    pc.greater_equal(quarters["start"], inv.opening.at),
                    pc.less(quarters["start"], inv.closing.at),
                ),
            )
        )
        true_wh = sum(int(v) for v in rows["import_wh"].to_pylist())
        assert abs(inv.import_wh - true_wh) <= 1, inv.ean
    # one decision and one read per kind, all audited as UC8
    uc8 = [(r.entry.event, r.entry.outcome) for r in records if r.entry.purpose == "UC8"]
    assert uc8.count(("decision", "granted")) == 2 and uc8.count(("read", "read")) == 3
    # nobody with a contract was asked for
    asked = next(r.entry.connections for r in records if r.entry.purpose == "UC8")
    assert set(asked) <= {r["ean"] for r in truth if r["contractless"]} | {
        r["ean"] for r in truth if r["out_of_service_consuming"]
    }


def test_uc8_invoices_every_contractless_gas_meter_with_the_true_m3(
    twin_run: tuple[Path, Uc08Result, list[audit.AuditRecord]],
) -> None:
    """UC8 gas: every contractless gas connection behind a smart meter gets its VZC
    invoice of the twin's hourly gas between the two registers (within 1 dm3)."""
    twin, result, _ = twin_run
    truth = pq.read_table(twin / "truth" / "connections.parquet").to_pylist()
    # an out-of-service house's gas connection stays in service without a contract (twin)
    contractless = {
        r["gas_ean"]
        for r in truth
        if (r["contractless"] or r["out_of_service_consuming"])
        and r["meter"] != "ferraris"
        and r["gas_ean"]
    }
    assert contractless, "the twin must have contractless smart gas connections for this test"
    gas = [i for i in result.invoices if i.commodity is Commodity.GAS]
    assert {i.ean for i in gas} == contractless == set(result.gas_population)
    hours = pq.read_table(twin / "meterdata" / "gas_hourly.parquet")
    for inv in gas:
        rows = hours.filter(
            pc.and_(
                pc.equal(hours["gas_ean"], inv.ean),
                pc.and_(
                    pc.greater_equal(hours["start"], inv.opening.at),
                    pc.less(hours["start"], inv.closing.at),
                ),
            )
        )
        true_dm3 = sum(float(v) for v in rows["volume_m3"].to_pylist()) * 1000
        assert abs(inv.import_wh - true_dm3) <= 1, inv.ean
        assert inv.invoice.lines[0].unit == "m³"
