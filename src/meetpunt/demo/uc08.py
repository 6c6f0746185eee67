"""The demo's UC8 stage (issue 20): VZC invoices for the twin's contractless meters,
run the morning after the month through the gate, scored against the twin's truth.

``invoices``: how many were made; ``energy_exact``: the share whose invoiced kWh equal
the twin's consumption between the two readings (the meter's quarter-hour import of
the twin's own files, within 1 Wh); ``found``: the contractless smart meters of the
truth that got an invoice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from meetpunt.demo.score import Score, Truth
from meetpunt.domain.calendar import local_date_of
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period
from meetpunt.usecases.uc08_vzc import Uc08Result, invoice_contractless


def run_uc08(gate: Gate, party: Party, period: Period, at: datetime) -> Uc08Result:
    """UC8 over the demo's month, as the operator runs it the morning after."""
    trigger = f"monthly VZC invoicing, {period.start:%B %Y}"
    return invoice_contractless(gate, party, period, at, trigger)


def expected_audit(result: Uc08Result) -> dict[tuple[str, str, str], int]:
    """What UC8 leaves in the audit log: one decision and a read per kind, or nothing."""
    if not result.population:
        return {}
    return {("UC8", "decision", "granted"): 1, ("UC8", "read", "read"): 2}


def _true_import_wh(twin: Path, result: Uc08Result) -> dict[tuple[str, datetime], int]:
    """The twin's quarter-hour import per invoice (ean, opening), summed over its span."""
    wanted: dict[str, list[tuple[datetime, datetime]]] = {i.ean: [] for i in result.invoices}
    for inv in result.invoices:
        wanted[inv.ean].append((inv.opening.at, inv.closing.at))
    table = pq.read_table(
        twin / "meterdata" / "quarter_hours.parquet",
        columns=["ean", "start", "import_wh"],
        filters=[("ean", "in", sorted(wanted))] if wanted else None,
    )
    sums: dict[tuple[str, datetime], int] = defaultdict(int)
    for ean, start, wh in zip(
        table["ean"].to_pylist(), table["start"].to_pylist(), table["import_wh"].to_pylist(),
        strict=True,
    ):  # fmt: skip
        for opening, closing in wanted.get(ean, ()):
            if opening <= start < closing and wh is not None:
                sums[(ean, opening)] += int(wh)
    return sums


def score_uc08(result: Uc08Result, truth: Truth, twin: Path) -> Score:
    """UC8 against the truth: every contractless smart meter invoiced when the period
    holds a month's end (a monthly reading), kWh exact, no one with a contract invoiced."""
    first = local_date_of(result.period.start)
    last = local_date_of(result.period.end - timedelta(microseconds=1))
    month_ends = any(
        (first + timedelta(days=d)).day == 1 for d in range(1, (last - first).days + 1)
    )
    contractless = {
        str(c["ean"])
        for c in truth.connections
        if month_ends and c["contractless"] and c["meter"] != "ferraris"
    }
    invoiced = {i.ean for i in result.invoices}
    true_wh = _true_import_wh(twin, result)
    exact = [i for i in result.invoices if abs(i.import_wh - true_wh[(i.ean, i.opening.at)]) <= 1]
    misses = [f"{e}: contractless, no VZC invoice" for e in sorted(contractless - invoiced)]
    misses += [
        f"{e}: invoiced but has a contract in the truth" for e in sorted(invoiced - contractless)
    ]
    misses += [
        f"{i.ean}: invoiced {i.import_wh} Wh, the twin used {true_wh[(i.ean, i.opening.at)]} Wh"
        for i in result.invoices
        if i not in exact
    ]
    misses += [f"{e}: set aside ({why})" for e, why in result.set_aside]
    n = len(result.invoices)
    return Score(
        "UC8",
        f"{n} VZC invoice(s), {sum(i.import_wh for i in result.invoices) / 1000:.1f} kWh",
        f"{len(invoiced & contractless)}/{len(contractless)} contractless smart meters "
        f"invoiced; {len(exact)}/{n} invoices with the twin's exact kWh",
        len(invoiced & contractless) + len(exact) + (0 if invoiced - contractless else 1),
        len(contractless) + n + 1,
        tuple(misses),
        counts={"invoices": n, "set_aside": len(result.set_aside)},
        metrics={
            "contractless_truth": len(contractless),
            "contractless_found": len(invoiced & contractless),
            "energy_exact": round(len(exact) / n, 4) if n else 0.0,
        },
    )
