"""Score use-case results against the grid twin's truth (the demo's accuracy column).

The twin writes what really happened to ``truth/`` (see :mod:`meetpunt.twin.truth`);
the use cases only ever see the register, the operator's own files and the meter data
through the privacy gate. These functions compare the two and name every miss, so the
demo's summary says how right each use case was, not just what it found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from meetpunt.usecases.uc01_outage_localisation import (
    NONE_FOUND,
    PART,
    REVIEW,
    SINGLE,
    SUBSTATION,
    WHOLE,
    Uc01Result,
)
from meetpunt.usecases.uc04_outage_compensation import Uc04Result
from meetpunt.usecases.uc09_interruption_registration import Outage, Uc09Result

EXTENT = {  # the twin's extent names (twin/faults.py) -> UC1's classifications
    "single_connection": SINGLE,
    "part_of_feeder": PART,
    "whole_feeder": WHOLE,
    "whole_substation": SUBSTATION,
}
GIS_FLAG = "GIS feeder error"
#: The class of a scored item that no truth outage explains (a report or payment
#: without an outage).
NO_OUTAGE = "no_outage"


def tally(by_case: dict[str, dict[str, float]], cases: Iterable[str], **counts: float) -> None:
    """Add ``counts`` to every class in ``cases`` (a metric per fault class, issue 16)."""
    for case in cases:
        row = by_case.setdefault(case, {})
        for key, value in counts.items():
            row[key] = row.get(key, 0) + value


@dataclass(frozen=True)
class Truth:
    """The truth tables the scores need, as rows (a twin's ``truth/`` folder)."""

    connections: list[dict[str, Any]]
    outages: list[dict[str, Any]]
    interruptions: list[dict[str, Any]]
    interruptions_seen: list[dict[str, Any]]
    gis_errors: list[dict[str, Any]]

    @classmethod
    def read(cls, folder: Path) -> Truth:
        """Read the truth of the twin in ``folder`` (the folder holding ``truth/``)."""

        def rows(name: str) -> list[dict[str, Any]]:
            rows_: list[dict[str, Any]] = pq.read_table(
                folder / "truth" / f"{name}.parquet"
            ).to_pylist()
            return rows_

        return cls(
            rows("connections"),
            rows("outages"),
            rows("interruptions"),
            rows("interruptions_seen"),
            rows("gis_errors"),
        )

    def ean_of(self) -> dict[int, str]:
        return {int(c["connection"]): str(c["ean"]) for c in self.connections}

    def cases_of(self, outage_ids: Iterable[str], ean: str | None = None) -> set[str]:
        """The hard-case classes of these truth outages (issue 16; ``plain`` for a twin
        written before outages carried their classes), and with ``ean`` also what
        happened to that meter in them (the meter realities: ``clock_drift``,
        ``meter_offline``, ``log_overflow``, ``meter_replaced``)."""
        wanted = set(outage_ids)
        found: set[str] = set()
        for o in self.outages:
            if o["outage_id"] in wanted:
                found.update(o.get("cases") or ("plain",))
        if ean is not None:
            for outage_id in wanted:
                found.update(self._meter_cases.get((ean, outage_id), ()))
        return found or {NO_OUTAGE}

    @cached_property
    def _meter_cases(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """Per (EAN, outage) the meter classes of ``interruptions_seen`` (issue 16; none
        for a twin written before meters had realities)."""
        return {
            (str(r["ean"]), str(r["outage_id"])): tuple(r["meter_cases"])
            for r in self.interruptions_seen
            if r.get("meter_cases")
        }


@dataclass(frozen=True)
class Score:
    """How one use case did against the truth: ``correct`` of ``total`` checks, what it
    found (one line), the accuracy line and every miss, named."""

    use_case: str
    found: str
    accuracy: str
    correct: int
    total: int
    misses: tuple[str, ...] = field(default_factory=tuple)
    counts: dict[str, float] = field(default_factory=dict)
    """What was found, as numbers (``meetpunt demo --json``: ``found``)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The accuracy figures against the truth the console shows, as numbers."""
    by_case: dict[str, dict[str, float]] = field(default_factory=dict)
    """The same figures per hard-case class of the truth outages involved (issue 16),
    so a weak class shows; an item in several classes counts in each."""

    @property
    def perfect(self) -> bool:
        return self.correct == self.total and not self.misses


def truth_outage_of(truth: Truth, ean: str, at: datetime) -> dict[str, Any] | None:
    """The truth outage that cut ``ean`` off at ``at``, if any: of overlapping ones the
    one that started first (the customer's interruption starts with it, issue 16)."""
    rows = [r for r in truth.interruptions if r["ean"] == ean and r["start"] <= at < r["end"]]
    if not rows:
        return None
    first = min(rows, key=lambda r: (r["start"], r["outage_id"]))
    return next(o for o in truth.outages if o["outage_id"] == first["outage_id"])


def score_uc1(results: Sequence[Uc01Result], truth: Truth) -> Score:
    """UC1: every report's classification against the extent of the outage the truth
    says cut the reporter off at the report's time; a report from a connection no
    outage cut off (its own breaker tripped) is right as "no outage found". A report UC1
    put on review (the meters cannot decide, issue 16) is not right, but no wrong guess
    either: counted as ``on_review``, apart from ``wrong``."""
    misses: list[str] = []
    correct = review = 0
    counts: dict[str, int] = {}
    by_case: dict[str, dict[str, float]] = {}
    for r in results:
        counts[r.classification] = counts.get(r.classification, 0) + 1
        outage = truth_outage_of(truth, r.ean, r.at)
        # no grid outage cut the reporter off: its own installation failed (issue 16)
        expected = EXTENT[str(outage["extent"])] if outage else NONE_FOUND
        right = r.classification == expected
        held = r.classification == REVIEW
        cases = truth.cases_of([outage["outage_id"]] if outage else [], r.ean)
        tally(
            by_case,
            cases,
            reports=1,
            classified_right=int(right),
            on_review=int(held),
            wrong=int(not right and not held),
        )
        correct += int(right)
        review += int(held)
        if not right:
            name = outage["outage_id"] if outage else "no truth outage (own installation)"
            why = [line for line in r.verdict.evidence if line.startswith("review:")]
            said = f"on review ({(why or ['no reason'])[0]})" if held else r.classification
            misses.append(
                f"{r.ean} at {r.at:%Y-%m-%d %H:%M}Z: {said}, {name} is {expected.replace('_', ' ')}"
            )
    found = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in sorted(counts.items()))
    wrong = len(results) - correct - review
    return Score(
        "UC1",
        f"{len(results)} report(s): {found or 'none'}",
        f"{correct}/{len(results)} classified as the truth's extent, {review} on review, "
        f"{wrong} wrong",
        correct,
        len(results),
        tuple(misses),
        counts={"reports": len(results), **counts},
        metrics={
            "reports": len(results),
            "classified_right": correct,
            "on_review": review,
            "wrong": wrong,
        },
        by_case=by_case,
    )


def owed_by_truth(truth: Truth) -> dict[str, Decimal]:
    """What the truth says each connection is owed in total (unplanned, over the
    threshold, from the packaged scheme): once per interruption the customer had
    (overlapping outages are one), for those that ended within the period."""
    owed: dict[str, Decimal] = {}
    for row in truth.interruptions:
        if row.get("owed_in_period") is False:  # still going at the end: next period's
            continue
        amount = Decimal(str(row["compensation_eur"]))
        if amount > 0:
            owed[str(row["ean"])] = owed.get(str(row["ean"]), Decimal(0)) + amount
    return owed


def faulted_gis_errors(truth: Truth) -> list[str]:
    """EANs of the injected GIS feeder errors that touch a feeder an unplanned outage
    darkened within the period: the ones UC4 must put on its review list. An outage
    still running at the period's end is not in this period's logs (issue 16): UC4
    sees it, and flags its GIS errors, in the next period's run."""
    ended = {
        str(r["outage_id"]) for r in truth.interruptions if r.get("owed_in_period") is not False
    }
    unplanned = [o for o in truth.outages if not o["planned"] and o["outage_id"] in ended]
    faulted = {o["feeder"] for o in unplanned if o["feeder"]}
    faulted |= {
        c["feeder"]
        for o in unplanned
        if not o["feeder"]
        for c in truth.connections
        if c["substation"] == o["substation"]
    }
    eans = truth.ean_of()
    return sorted(
        eans[int(g["connection"])]
        for g in truth.gis_errors
        if g["kind"] == "feeder" and {g["true"], g["registered"]} & faulted
    )


def review_explained(truth: Truth) -> set[str]:
    """EANs an owed payment may rightly wait on review for: no contract holder
    (contractless), registered out of service while in use, a GIS feeder error, or an
    interruption that mixes planned work with a fault (the meters log one interruption
    and cannot tell which part was planned, issue 16)."""
    eans = truth.ean_of()
    out = {
        str(c["ean"])
        for c in truth.connections
        if c["contractless"] or c["out_of_service_consuming"]
    }
    out |= {eans[int(g["connection"])] for g in truth.gis_errors if g["kind"] == "feeder"}
    kinds: dict[tuple[str, Any], set[bool]] = {}
    for row in truth.interruptions:
        span = (str(row["ean"]), row.get("customer_start"))
        kinds.setdefault(span, set()).add(bool(row["planned"]))
    out |= {ean for (ean, _), planned in kinds.items() if planned == {True, False}}
    return out | unread_or_drifted(truth)


UNREAD_CASES = frozenset({"meter_offline", "log_overflow", "meter_replaced"})


def unread_or_drifted(truth: Truth) -> set[str]:
    """EANs whose interruption the head-end never read (``read`` false, or the meter
    offline, its log overflowed or the meter replaced) or whose clock drifted (issue 16,
    the meter realities): UC4 may rightly hold their payment for review ("log entry
    missing", "clock unconfirmed") when the meters cannot settle it."""
    out: set[str] = set()
    for row in truth.interruptions_seen:
        cases = set(row.get("meter_cases") or ())
        unread = row.get("logged") and row.get("read") is False
        if unread or cases & (UNREAD_CASES | {"clock_drift"}):
            out.add(str(row["ean"]))
    return out


AGREEING_PEERS = 2
"""A drifted meter's interruption can be settled when at least this many other meters
of its outage read the same true interruption with a right clock (UC9's rule: two or
more meters agreeing make the times a drifted clock is corrected to)."""


def expected_log(truth: Truth, population: set[str]) -> dict[tuple[str, str], tuple[Any, Any]]:
    """Per read interruption (EAN, outage) the END and duration UC9 must register
    (issue 16): the true ones where the outage has other meters to compare with (at
    least :data:`AGREEING_PEERS` others read the same interruption with a right clock),
    the meter's own (drifted) times for a meter alone, which nothing can correct."""
    rows = [
        r
        for r in truth.interruptions_seen
        if r["logged"] and r.get("read") is not False and r["ean"] in population
    ]
    right: dict[tuple[str, Any, Any], set[str]] = {}
    for r in rows:
        meter_end = r.get("meter_log_end") or r["log_end"]
        meter_duration = r.get("meter_log_duration_s") or r["log_duration_s"]
        if meter_end == r["log_end"] and meter_duration == r["log_duration_s"]:
            key = (str(r["outage_id"]), r["log_end"], r["log_duration_s"])
            right.setdefault(key, set()).add(str(r["ean"]))
    out: dict[tuple[str, str], tuple[Any, Any]] = {}
    for r in rows:
        peers = right.get((str(r["outage_id"]), r["log_end"], r["log_duration_s"]), set())
        if len(peers - {str(r["ean"])}) >= AGREEING_PEERS:
            out[(str(r["ean"]), str(r["outage_id"]))] = (r["log_end"], r["log_duration_s"])
        else:
            out[(str(r["ean"]), str(r["outage_id"]))] = (
                r.get("meter_log_end") or r["log_end"],
                r.get("meter_log_duration_s") or r["log_duration_s"],
            )
    return out


def score_uc4(result: Uc04Result, truth: Truth) -> Score:
    """UC4: paid against owed per connection. Exact pays, and owed connections on the
    review list that the truth explains (:func:`review_explained`), count as right; a
    missed, overpaid or needlessly reviewed connection and an unflagged GIS feeder
    error are misses."""
    owed = owed_by_truth(truth)
    paid: dict[str, Decimal] = {}
    for p in result.payments:
        paid[p.ean] = paid.get(p.ean, Decimal(0)) + p.amount
    reviewed: dict[str, list[str]] = {}
    for r in result.reviews:
        reviewed.setdefault(r.ean, []).append(r.reason)
    misses: list[str] = []
    exact = sum(1 for e, a in paid.items() if owed.get(e) == a)
    for ean, amount in sorted(paid.items()):
        if owed.get(ean) != amount:
            misses.append(f"{ean} overpaid: EUR {amount}, owed EUR {owed.get(ean, 0)}")
    on_review = 0
    explained = review_explained(truth)
    for ean, amount in sorted(owed.items()):
        if ean in paid:
            continue
        if ean in reviewed and ean in explained:
            on_review += 1
        elif ean in reviewed:
            why = "; ".join(reviewed[ean])
            misses.append(f"{ean} owed EUR {amount}, on review for no reason in the truth: {why}")
        else:
            misses.append(f"{ean} missed: owed EUR {amount}, neither paid nor reviewed")
    gis = faulted_gis_errors(truth)
    flagged = [e for e in gis if any(GIS_FLAG in why for why in reviewed.get(e, []))]
    misses.extend(f"{e} GIS feeder error not flagged" for e in gis if e not in flagged)
    overpaid = sum(1 for e, a in paid.items() if owed.get(e) != a)
    missed = sum(1 for e in owed if e not in paid and e not in reviewed)
    by_case = _uc4_by_case(truth, owed, paid, reviewed, explained)
    return Score(
        "UC4",
        f"{len(result.payments)} payment(s), EUR {result.total}; {len(result.reviews)} on review",
        f"{exact}/{len(owed)} owed paid exactly, {on_review} owed on review "
        "(contractless, out of service or a GIS error in the truth), "
        f"{missed} missed, {overpaid} overpaid; {len(flagged)}/{len(gis)} GIS errors flagged",
        exact + on_review + len(flagged),
        len(owed) + len(gis),
        tuple(misses),
        counts={
            "payments": len(result.payments),
            "total_eur": float(result.total),
            "reviews": len(result.reviews),
            "outages": len(result.outages),
        },
        metrics={
            "owed": len(owed),
            "paid_exactly": exact,
            "owed_on_review": on_review,
            "missed": missed,
            "overpaid": overpaid,
            "gis_flagged": len(flagged),
            "gis_errors": len(gis),
        },
        by_case=by_case,
    )


def _uc4_by_case(
    truth: Truth,
    owed: dict[str, Decimal],
    paid: dict[str, Decimal],
    reviewed: dict[str, list[str]],
    explained: set[str],
) -> dict[str, dict[str, float]]:
    """UC4's figures per class of the outages that interrupted each connection."""
    outages_of: dict[str, list[str]] = {}
    for row in truth.interruptions:
        outages_of.setdefault(str(row["ean"]), []).append(str(row["outage_id"]))
    by_case: dict[str, dict[str, float]] = {}
    for ean in sorted(set(owed) | set(paid)):
        cases = truth.cases_of(outages_of.get(ean, []), ean)
        if ean not in owed:
            tally(by_case, cases, overpaid=1)
            continue
        tally(
            by_case,
            cases,
            owed=1,
            paid_exactly=int(paid.get(ean) == owed[ean]),
            overpaid=int(ean in paid and paid[ean] != owed[ean]),
            owed_on_review=int(ean not in paid and ean in reviewed and ean in explained),
            missed=int(ean not in paid and ean not in reviewed),
        )
    return by_case


def _registered_by_ean(outages: Iterable[Outage]) -> dict[str, list[Outage]]:
    out: dict[str, list[Outage]] = {}
    for o in outages:
        for c in o.customers:
            out.setdefault(c.ean, []).append(o)
    return out


def score_uc9(result: Uc09Result, truth: Truth, asked: Iterable[str]) -> Score:
    """UC9: every interruption a meter of the population (``asked``) logged and the
    head-end read (issue 16: an entry never read cannot be registered) must be in
    exactly one registered outage with the end and duration of :func:`expected_log`,
    to the second (a meter interrupted twice is in two outages, one entry each; a
    drifted clock corrected where other meters agree), planned or not as the truth says
    (planned interruptions are counted apart)."""
    population = set(asked)
    expected = expected_log(truth, population)
    seen = [
        r
        for r in truth.interruptions_seen
        if r["logged"] and r.get("read") is not False and r["ean"] in population
    ]
    by_ean = _registered_by_ean(result.outages)
    misses: list[str] = []
    correct = 0
    by_case: dict[str, dict[str, float]] = {}
    for row in seen:
        # a meter may be in several registered outages (repeated interruptions): its
        # logged interruption is the entry with the expected end, in exactly one outage
        end, duration = expected[(str(row["ean"]), str(row["outage_id"]))]
        entries = [
            (o, c)
            for o in by_ean.get(str(row["ean"]), [])
            for c in o.customers
            if c.ean == row["ean"] and c.end == end
        ]
        exact = False
        if len(entries) != 1:
            ended = f"{end:%Y-%m-%d %H:%M:%S}"
            misses.append(
                f"{row['ean']} of {row['outage_id']} (logged end {ended}) in "
                f"{len(entries)} registered outages"
            )
        elif (customer := entries[0][1]).duration_s != duration:
            misses.append(
                f"{row['ean']} of {row['outage_id']}: {customer.duration_s} s ending "
                f"{customer.end:%H:%M:%S}, expected {duration} s"
            )
        elif (entries[0][0].planned is not None) != bool(row["planned"]):
            said = "planned" if entries[0][0].planned is not None else "unplanned"
            misses.append(f"{row['ean']} of {row['outage_id']} registered as {said}")
        else:
            correct += 1
            exact = True
        cases = truth.cases_of([str(row["outage_id"])], str(row["ean"]))
        tally(by_case, cases, interruptions_truth=1, interruptions_exact=int(exact))
    logged_outages = {str(r["outage_id"]) for r in seen}
    f = result.figures
    return Score(
        "UC9",
        f"{len(result.outages)} outage(s), {f.customer_interruptions} customer interruptions; "
        f"SAIDI {f.saidi_min or 0:.1f} min",
        f"{correct}/{len(seen)} logged interruptions to the second; "
        f"{len(result.outages)} registered for {len(logged_outages)} logged truth outages",
        correct + (1 if len(result.outages) == len(logged_outages) else 0),
        len(seen) + 1,
        counts={
            "outages": len(result.outages),
            "customer_interruptions": f.customer_interruptions,
            "saidi_min": round(f.saidi_min or 0.0, 3),
        },
        metrics={
            "interruptions_truth": len(seen),
            "interruptions_exact": correct,
            "outages_registered": len(result.outages),
            "outages_truth": len(logged_outages),
        },
        by_case=by_case,
        misses=tuple(misses)
        + (
            ()
            if len(result.outages) == len(logged_outages)
            else (f"{len(result.outages)} outages registered, truth has {len(logged_outages)}",)
        ),
    )
