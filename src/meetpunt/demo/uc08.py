"""The demo's UC8 stage (issue 20): VZC invoices for the twin's contractless meters,
run the morning after the month through the gate, scored against the twin's truth.

``invoices``: how many were made; ``energy_exact``: the share whose invoiced kWh equal
the twin's consumption between the two readings (the meter's quarter-hour import of
the twin's own files, within 1 Wh); ``found``: the contractless smart meters of the
truth that got an invoice. Gas (a request of its own): ``gas_invoices``,
``gas_exact`` (the invoiced dm3 equal the twin's hourly gas volume between the two
registers, within 1 dm3), ``gas_contractless_truth`` / ``gas_contractless_found``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from meetpunt.demo.score import Score, Truth
from meetpunt.domain.calendar import local_date_of
from meetpunt.domain.capacity import Commodity
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period
from meetpunt.usecases.uc08_vzc import Uc08Result, VzcInvoice, invoice_contractless


def run_uc08(gate: Gate, party: Party, period: Period, at: datetime) -> Uc08Result:
    """UC8 over the demo's month, as the operator runs it the morning after."""
    trigger = f"monthly VZC invoicing, {period.start:%B %Y}"
    return invoice_contractless(gate, party, period, at, trigger)


def expected_audit(result: Uc08Result) -> dict[tuple[str, str, str], int]:
    """What UC8 leaves in the audit log: per commodity with a population one decision and
    a read per kind (electricity daily and monthly readings, gas hourly values)."""
    decisions = (1 if result.population else 0) + (1 if result.gas_population else 0)
    if not decisions:
        return {}
    reads = (2 if result.population else 0) + (1 if result.gas_population else 0)
    return {("UC8", "decision", "granted"): decisions, ("UC8", "read", "read"): reads}


def _true_import_wh(
    twin: Path, invoices: Sequence[VzcInvoice], gas: bool = False
) -> dict[tuple[str, datetime], float]:
    """The twin's quarter-hour import (gas: hourly dm3) per invoice (ean, opening),
    summed over its span."""
    wanted: dict[str, list[tuple[datetime, datetime]]] = {i.ean: [] for i in invoices}
    for inv in invoices:
        wanted[inv.ean].append((inv.opening.at, inv.closing.at))
    ean, name, value, scale = (
        ("gas_ean", "gas_hourly", "volume_m3", 1000.0)
        if gas
        else ("ean", "quarter_hours", "import_wh", 1.0)
    )
    table = pq.read_table(
        twin / "meterdata" / f"{name}.parquet",
        columns=[ean, "start", value],
        filters=[(ean, "in", sorted(wanted))] if wanted else None,
    )
    sums: dict[tuple[str, datetime], float] = defaultdict(float)
    for key, start, amount in zip(
        table[ean].to_pylist(), table["start"].to_pylist(), table[value].to_pylist(),
        strict=True,
    ):  # fmt: skip
        for opening, closing in wanted.get(key, ()):
            if opening <= start < closing and amount is not None:
                sums[(key, opening)] += float(amount) * scale
    return sums


def _contract_starts_in(twin: Path, first: date, last: date) -> set[str]:
    """EANs whose new supply contract starts inside the period (a move-in, which UC8 does
    not invoice; the twin gives some contractless connections one, ``twin.watch``)."""
    with (twin / "register" / "contracts.csv").open(newline="", encoding="utf-8") as f:
        return {
            row["ean"]
            for row in csv.DictReader(f)
            if first < date.fromisoformat(row["start_date"]) <= last
        }


def score_uc08(result: Uc08Result, truth: Truth, twin: Path) -> Score:
    """UC8 against the truth: every contractless smart meter invoiced when the period
    holds a month's end (a monthly reading), kWh exact, no one with a contract invoiced."""
    first = local_date_of(result.period.start)
    last = local_date_of(result.period.end - timedelta(microseconds=1))
    month_ends = any(
        (first + timedelta(days=d)).day == 1 for d in range(1, (last - first).days + 1)
    )
    moved_in = _contract_starts_in(twin, first, last)  # issue 20 UC15 case: not for moves
    contractless = {
        str(c["ean"])
        for c in truth.connections
        if month_ends
        and c["contractless"]
        and c["meter"] != "ferraris"
        and str(c["ean"]) not in moved_in
    }
    power = [i for i in result.invoices if i.commodity is Commodity.ELECTRICITY]
    gas = [i for i in result.invoices if i.commodity is Commodity.GAS]
    invoiced = {i.ean for i in power}
    true_wh = _true_import_wh(twin, power)
    exact = [i for i in power if abs(i.import_wh - true_wh[(i.ean, i.opening.at)]) <= 1]
    misses = [f"{e}: contractless, no VZC invoice" for e in sorted(contractless - invoiced)]
    misses += [
        f"{e}: invoiced but has a contract in the truth" for e in sorted(invoiced - contractless)
    ]
    misses += [
        f"{i.ean}: invoiced {i.import_wh} Wh, the twin used {true_wh[(i.ean, i.opening.at)]} Wh"
        for i in power
        if i not in exact
    ]
    # the twin takes only the electricity connection of an out-of-service house out of
    # service: its gas connection stays in service without a contract, contractless gas
    gas_truth = {
        str(c["gas_ean"])
        for c in truth.connections
        if month_ends
        and (c["contractless"] or c["out_of_service_consuming"])
        and c["meter"] != "ferraris"
        and c["gas_ean"]
    }
    gas_invoiced = {i.ean for i in gas}
    true_dm3 = _true_import_wh(twin, gas, gas=True)
    gas_exact = [i for i in gas if abs(i.import_wh - true_dm3[(i.ean, i.opening.at)]) <= 1]
    misses += [f"{e}: contractless gas, no VZC invoice" for e in sorted(gas_truth - gas_invoiced)]
    misses += [f"{e}: gas invoiced but has a contract" for e in sorted(gas_invoiced - gas_truth)]
    misses += [
        f"{i.ean}: invoiced {i.import_wh} dm3 gas, the twin used "
        f"{true_dm3[(i.ean, i.opening.at)]:.0f} dm3"
        for i in gas
        if i not in gas_exact
    ]
    misses += [f"{e}: set aside ({why})" for e, why in result.set_aside]
    n = len(power)
    return Score(
        "UC8",
        f"{n} VZC invoice(s), {sum(i.import_wh for i in power) / 1000:.1f} kWh; "
        f"{len(gas)} gas, {sum(i.import_wh for i in gas) / 1000:.1f} m³",
        f"{len(invoiced & contractless)}/{len(contractless)} contractless smart meters "
        f"invoiced; {len(exact)}/{n} invoices with the twin's exact kWh; gas "
        f"{len(gas_invoiced & gas_truth)}/{len(gas_truth)}, {len(gas_exact)}/{len(gas)} exact",
        len(invoiced & contractless)
        + len(exact)
        + (0 if invoiced - contractless else 1)
        + len(gas_invoiced & gas_truth)
        + len(gas_exact)
        + (0 if gas_invoiced - gas_truth else 1),
        len(contractless) + n + 1 + len(gas_truth) + len(gas) + 1,
        tuple(misses),
        counts={"invoices": n, "gas_invoices": len(gas), "set_aside": len(result.set_aside)},
        metrics={
            "contractless_truth": len(contractless),
            "contractless_found": len(invoiced & contractless),
            "energy_exact": round(len(exact) / n, 4) if n else 0.0,
            "gas_contractless_truth": len(gas_truth),
            "gas_contractless_found": len(gas_invoiced & gas_truth),
            "gas_exact": round(len(gas_exact) / len(gas), 4) if gas else 0.0,
        },
    )
