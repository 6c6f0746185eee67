"""UC10 Approval of a mechanic's manual readings against the smart meter's daily readings.

Use-case list UC10: before a manual reading enters the register it is compared "met de
nieuwste dagstanden van de slimme meter"; a sample showed that at least 70 % of the
readings the old check flagged were right. Ours flags a reading only when no honest
reading fits the smart meter:

* a register never runs back: each reported register lies at or above the newest daily
  reading before the visit (less :attr:`Uc10Rules.tolerance_kwh` for the mechanic's whole
  kWh);
* with a daily reading after the visit (the next midnight) each register also lies at or
  below it: the true value is bracketed exactly; a register that the off-peak calendar
  (MKT-2) keeps idle from the midnight before to the visit still shows that midnight's
  reading, and one idle from the visit to the next midnight already shows that one (a
  margin of :attr:`Uc10Rules.clock_margin_minutes` either side for the meter's clock and
  the mechanic's note of the time);
* without one (the meter was offline, or the visit is today), the consumption since the
  newest daily reading lies in the band the connection's OWN history allows: at most
  :attr:`Uc10Rules.history_spread` x its largest day read, per started day, and never
  more than its capacity (phases x A x 230 V) over the hours since; not a fixed %.

A flagged reading is explained: if swapping T1/T2, swapping import/export or undoing one
digit slip (two adjacent digits transposed, a 1 read as 7 or a 7 as 1) makes it fit,
that is the suspected misread and the fitted values are proposed; otherwise it is
"other_meter" (a neighbour's meter, or a reading of nothing we can explain).

Reads: each reading is one gate request (purpose UC10, trigger the reading) for the two
local days from the visit's midnight (the midnights before and after it); when that
holds no daily reading before the visit, or no history for a band, earlier 2-day
windows are asked, each its own request, at most :attr:`Uc10Rules.lookback_days` back.
:func:`check_reading` and :func:`naive_flag` are pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from meetpunt import rulebook
from meetpunt.domain.calendar import OffPeakCalendar, Tariff, local_midnight_utc, to_local
from meetpunt.domain.capacity import ElectricityCapacity
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period
from meetpunt.usecases.common import ask

PURPOSE = "UC10"
KIND = "daily_readings"
REGISTERS = ("import_t1", "import_t2", "export_t1", "export_t2")
HUB_COLUMNS = tuple(f"{r}_wh" for r in REGISTERS)
MISREADS = ("tariff_swap", "direction_swap", "digit_slip", "other_meter")
"""What a flagged reading is suspected of (the kinds the twin's truth names are finer:
``transposition`` and ``misread_1_7`` are both a ``digit_slip``)."""
WINDOW_DAYS = 2


class Uc10Error(MeetpuntError):
    """UC10 could not check a reading (the gate refused, or the reading is unusable)."""


@dataclass(frozen=True)
class Uc10Rules:
    """The ``[uc10]`` section of the ``uc10_uc15`` rule file."""

    tolerance_kwh: float = 1.0
    history_spread: float = 2.0
    lookback_days: int = 8
    naive_share: float = 0.5
    clock_margin_minutes: float = 30.0

    @classmethod
    def load(cls) -> Uc10Rules:
        body = rulebook.load_rules("uc10_uc15").body.get("uc10", {})
        try:
            rules = cls(
                float(body["tolerance_kwh"]),
                float(body["history_spread"]),
                int(body["lookback_days"]),
                float(body["naive_share"]),
                float(body["clock_margin_minutes"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Uc10Error(
                f"uc10_uc15.toml [uc10]: missing or bad value ({exc}); fix the rule file"
            ) from exc
        if (
            rules.tolerance_kwh < 0
            or rules.history_spread < 1
            or rules.lookback_days < 0
            or rules.clock_margin_minutes < 0
        ):
            raise Uc10Error(
                "uc10_uc15.toml [uc10]: need tolerance_kwh >= 0, history_spread >= 1, "
                "lookback_days >= 0, clock_margin_minutes >= 0; fix the rule file"
            )
        return rules


@dataclass(frozen=True)
class ManualReading:
    """A mechanic's reading as written: whole kWh per register (export may be absent)."""

    reading_id: str
    ean: str
    taken_at: datetime
    values: tuple[float | None, float | None, float | None, float | None]

    def value(self, i: int) -> float:
        v = self.values[i]
        return 0.0 if v is None else v


@dataclass(frozen=True)
class DailyReading:
    """One smart-meter daily reading: its moment and the four registers in kWh."""

    at: datetime
    kwh: tuple[float, float, float, float]


@dataclass(frozen=True)
class Verdict:
    """UC10's answer for one reading: approved, or flagged with the suspected misread."""

    reading_id: str
    ean: str
    approved: bool
    basis: str
    """``bracket`` (daily readings before and after), ``band`` (before and history),
    ``none`` (no daily reading found: not approved, to the mechanic for review)."""
    suspected: str | None = None
    proposal: tuple[float, float, float, float] | None = None
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    naive_flagged: bool = False
    reads: int = 0
    rules: tuple[str, ...] = ()
    """The gate's rules when it refused a read for this reading (``basis`` ``refused``
    when nothing could be read: the reading waits, it is not approved)."""

    @property
    def flagged(self) -> bool:
        return not self.approved

    def as_dict(self) -> dict[str, Any]:
        return {
            "reading_id": self.reading_id,
            "ean": self.ean,
            "approved": self.approved,
            "basis": self.basis,
            "suspected": self.suspected,
            "proposal": None if self.proposal is None else list(self.proposal),
            "low_kwh": [round(v, 3) for v in self.low],
            "high_kwh": [round(v, 3) for v in self.high],
            "naive_flagged": self.naive_flagged,
            "gate_reads": self.reads,
            "refused_rules": list(self.rules),
        }


@dataclass(frozen=True)
class Uc10Result:
    """All verdicts of one run."""

    verdicts: tuple[Verdict, ...]
    audit_seqs: tuple[int, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "use_case": PURPOSE,
            "readings": len(self.verdicts),
            "approved": sum(v.approved for v in self.verdicts),
            "flagged": sum(v.flagged for v in self.verdicts),
            "naive_flagged": sum(v.naive_flagged for v in self.verdicts),
            "verdicts": [v.as_dict() for v in self.verdicts],
        }


# --- the pure check ----------------------------------------------------------------------


def _around(
    taken_at: datetime, dailies: Sequence[DailyReading]
) -> tuple[DailyReading | None, DailyReading | None, list[DailyReading]]:
    ordered = sorted(dailies, key=lambda d: d.at)
    before = [d for d in ordered if d.at <= taken_at]
    after = [d for d in ordered if d.at > taken_at]
    return (before[-1] if before else None, after[0] if after else None, before)


def _largest_days(history: Sequence[DailyReading]) -> tuple[float, float] | None:
    """The largest import and export per day between consecutive daily readings."""
    imp: list[float] = []
    exp: list[float] = []
    for a, b in itertools.pairwise(history):
        days = max((b.at - a.at).total_seconds() / 86_400, 1 / 24)
        imp.append(max(0.0, (b.kwh[0] + b.kwh[1] - a.kwh[0] - a.kwh[1]) / days))
        exp.append(max(0.0, (b.kwh[2] + b.kwh[3] - a.kwh[2] - a.kwh[3]) / days))
    if not imp:
        return None
    return max(imp), max(exp)


SAMPLE = timedelta(minutes=15)


def _runs(calendar: OffPeakCalendar, tariff: Tariff, first: datetime, last: datetime) -> bool:
    """Whether ``tariff``'s register may count at some moment from ``first`` to ``last``
    (the calendar's tariff checked every quarter-hour and at both ends; the windows
    change on whole quarter-hours)."""
    at = first
    while at < last:
        if calendar.tariff_at(at) is tariff:
            return True
        at += SAMPLE
    return calendar.tariff_at(last) is tariff


def _idle_sides(
    taken_at: datetime,
    before: DailyReading,
    after: DailyReading,
    calendar: OffPeakCalendar,
    margin: timedelta,
) -> list[tuple[bool, bool]]:
    """Per register: (idle from the midnight before to the visit, idle from the visit to
    the next midnight) by the off-peak calendar (MKT-2), with ``margin`` around the
    visit. T1 is off-peak (dal), T2 normal; import and export alike."""
    out: list[tuple[bool, bool]] = []
    for tariff in (Tariff.T1, Tariff.T2, Tariff.T1, Tariff.T2):
        first = not _runs(calendar, tariff, before.at, min(taken_at + margin, after.at))
        last = not _runs(calendar, tariff, max(taken_at - margin, before.at), after.at)
        out.append((first, last))
    return out


def bounds(
    taken_at: datetime,
    dailies: Sequence[DailyReading],
    max_kw: float | None,
    rules: Uc10Rules,
    calendar: OffPeakCalendar | None = None,
) -> tuple[str, tuple[float, ...], tuple[float, ...], DailyReading | None]:
    """``(basis, low, high, before)``: the range each register's honest reading may take
    (UC10). ``none`` when no daily reading lies at or before the visit. With the
    ``calendar``, a register idle on one side of the visit is held to that side's
    midnight reading."""
    before, after, history = _around(taken_at, dailies)
    tol = rules.tolerance_kwh
    if before is None:
        return "none", (), (), None
    low = tuple(v - tol for v in before.kwh)
    if after is not None:
        high = tuple(v + tol for v in after.kwh)
        if calendar is not None and (after.at - before.at) <= timedelta(hours=25):
            margin = timedelta(minutes=rules.clock_margin_minutes)
            sides = _idle_sides(taken_at, before, after, calendar, margin)
            high = tuple(
                min(h, b + tol) if idle_before else h
                for h, b, (idle_before, _) in zip(high, before.kwh, sides, strict=True)
            )
            low = tuple(
                max(lo, a - tol) if idle_after else lo
                for lo, a, (_, idle_after) in zip(low, after.kwh, sides, strict=True)
            )
        return "bracket", low, high, before
    hours = max((taken_at - before.at).total_seconds() / 3600, 0.0)
    physical = math.inf if max_kw is None else max_kw * hours
    largest = _largest_days(history)
    if largest is None:
        cap_imp = cap_exp = physical
    else:
        started = max(1, math.ceil(hours / 24))
        cap_imp = min(physical, largest[0] * rules.history_spread * started)
        cap_exp = min(physical, largest[1] * rules.history_spread * started)
    caps = (cap_imp, cap_imp, cap_exp, cap_exp)
    high = tuple(v + c + tol for v, c in zip(before.kwh, caps, strict=True))
    return "band", low, high, before


def _fits(
    values: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    before: DailyReading,
    basis: str = "band",
) -> bool:
    if not all(lo <= v <= hi for v, lo, hi in zip(values, low, high, strict=True)):
        return False
    if basis != "band":
        return True  # a bracket bounds each register exactly
    # in a band the two registers of a direction share one consumption since the reading
    imp_cap = max(high[0] - before.kwh[0], high[1] - before.kwh[1])
    exp_cap = max(high[2] - before.kwh[2], high[3] - before.kwh[3])
    imp = values[0] + values[1] - before.kwh[0] - before.kwh[1]
    exp = values[2] + values[3] - before.kwh[2] - before.kwh[3]
    return imp <= imp_cap and exp <= exp_cap


def digit_slips(value: float) -> list[float]:
    """Every value one digit slip away from ``value`` (whole kWh): two adjacent digits
    transposed, or one 1 read as 7 or 7 as 1 (UC10's typical misreads)."""
    if value < 0 or value != int(value):
        return []
    digits = list(str(int(value)))
    found: set[float] = set()
    for i in range(len(digits) - 1):
        if digits[i] != digits[i + 1]:
            d = digits.copy()
            d[i], d[i + 1] = d[i + 1], d[i]
            found.add(float("".join(d)))
    for i, c in enumerate(digits):
        if c in "17":
            d = digits.copy()
            d[i] = "7" if c == "1" else "1"
            found.add(float("".join(d)))
    found.discard(value)
    return sorted(found)


def explain(
    values: tuple[float, float, float, float],
    low: Sequence[float],
    high: Sequence[float],
    before: DailyReading,
    basis: str = "band",
) -> tuple[str, tuple[float, float, float, float] | None]:
    """The misread that makes a flagged reading fit, and the fitted values (UC10)."""
    t1, t2, e1, e2 = values
    swaps: list[tuple[str, tuple[float, float, float, float]]] = [
        ("tariff_swap", (t2, t1, e1, e2)),
        ("tariff_swap", (t1, t2, e2, e1)),
        ("tariff_swap", (t2, t1, e2, e1)),
        ("direction_swap", (e1, e2, t1, t2)),
        ("direction_swap", (e2, e1, t2, t1)),
    ]
    for name, candidate in swaps:
        if candidate != values and _fits(candidate, low, high, before, basis):
            return name, candidate
    for i in range(4):
        for slip in digit_slips(values[i]):
            fixed = list(values)
            fixed[i] = slip
            candidate4 = (fixed[0], fixed[1], fixed[2], fixed[3])
            if _fits(candidate4, low, high, before, basis):
                return "digit_slip", candidate4
    return "other_meter", None


def check_reading(
    reading: ManualReading,
    dailies: Sequence[DailyReading],
    max_kw: float | None = None,
    rules: Uc10Rules | None = None,
    calendar: OffPeakCalendar | None = None,
) -> Verdict:
    """UC10 for one reading over the daily readings read for it (pure); with the
    off-peak ``calendar`` the bracket also holds idle registers (MKT-2)."""
    rules = rules or Uc10Rules()
    basis, low, high, before = bounds(reading.taken_at, dailies, max_kw, rules, calendar)
    naive = naive_flag(reading, dailies, rules)
    if before is None:
        return Verdict(reading.reading_id, reading.ean, False, basis, None, naive_flagged=naive)
    values = (reading.value(0), reading.value(1), reading.value(2), reading.value(3))
    if _fits(values, low, high, before, basis):
        return Verdict(reading.reading_id, reading.ean, True, basis, None, None, low, high, naive)
    suspected, proposal = explain(values, low, high, before, basis)
    return Verdict(
        reading.reading_id, reading.ean, False, basis, suspected, proposal, low, high, naive
    )


def naive_flag(
    reading: ManualReading, dailies: Sequence[DailyReading], rules: Uc10Rules | None = None
) -> bool:
    """The naive baseline: extrapolate each direction's total (T1 + T2) from the newest
    daily reading before the visit at the last day's rate (the visit's own day when
    that is all that was read) and flag a difference above
    ``naive_share`` of the extrapolated consumption (and above the tolerance). Flags
    when nothing is known."""
    rules = rules or Uc10Rules()
    _, after, history = _around(reading.taken_at, dailies)
    if len(history) >= 2:
        a, b = history[-2], history[-1]
        rate_of = (a, b)
    elif history and after is not None:  # the day's own rate, the most the reads give
        b = history[-1]
        rate_of = (b, after)
    else:
        return True
    first, second = rate_of
    days = max((second.at - first.at).total_seconds() / 86_400, 1 / 24)
    since = (reading.taken_at - b.at).total_seconds() / 86_400
    for pair in ((0, 1), (2, 3)):  # per direction: T1 + T2
        last = sum(b.kwh[i] for i in pair)
        grown = sum(second.kwh[i] for i in pair) - sum(first.kwh[i] for i in pair)
        rate = max(0.0, grown / days)
        expected = rate * since
        diff = abs(sum(reading.value(i) for i in pair) - (last + expected))
        if diff > rules.tolerance_kwh and diff > rules.naive_share * expected:
            return True
    return False


# --- tables and the gate -----------------------------------------------------------------


def dailies_from(table: pa.Table, connection: int) -> list[DailyReading]:
    """The daily readings of one connection in a granted table (Wh -> kWh)."""
    rows = table.filter(pc.equal(table.column("connection"), connection)).to_pylist()
    out: list[DailyReading] = []
    for row in rows:
        regs = tuple(float(row.get(c) or 0) / 1000 for c in HUB_COLUMNS)
        out.append(DailyReading(row["at"], (regs[0], regs[1], regs[2], regs[3])))
    return sorted(out, key=lambda d: d.at)


def _window(day: date, back: int) -> Period:
    first = day - timedelta(days=back)
    return Period(
        local_midnight_utc(first), local_midnight_utc(first + timedelta(days=WINDOW_DAYS))
    )


def _enough(taken_at: datetime, dailies: Sequence[DailyReading]) -> bool:
    before, after, history = _around(taken_at, dailies)
    return before is not None and (after is not None or len(history) >= 2)


def max_kw_of(gate: Gate, eans: Iterable[str], on: date) -> dict[str, float]:
    """Each electricity connection's capacity in kW (phases x A x 230 V) on ``on``,
    from the register (one query)."""
    wanted = set(eans)
    out: dict[str, float] = {}
    for ean, (_, _, _, capacity) in gate.register_view.states_on(on).items():
        if ean not in wanted:
            continue
        phases, _, amperes = capacity.partition("x")
        if phases.isdigit() and amperes.isdigit():
            out[ean] = ElectricityCapacity(int(phases), int(amperes)).apparent_power_kva
    return out


def approve_readings(
    gate: Gate,
    party: Party,
    readings: Sequence[ManualReading],
    at: datetime,
    rules: Uc10Rules | None = None,
) -> Uc10Result:
    """UC10 for each reading: ask the gate for the daily readings around it (each read its
    own request with the reading as trigger), then :func:`check_reading`. A refusal of the
    read that no reading may have (the party, an unknown purpose) raises
    :class:`Uc10Error` with the gate's rules; a refusal for one reading's connection (not
    in the register then, say) is that reading's verdict (``refused``, not approved) and
    the others go on."""
    rules = rules or Uc10Rules.load()
    calendar = rulebook.offpeak_calendar()
    newest = max((to_local(r.taken_at).date() for r in readings), default=None)
    caps = {} if newest is None else max_kw_of(gate, [r.ean for r in readings], newest)
    verdicts: list[Verdict] = []
    seqs: list[int] = []
    for reading in readings:
        day = to_local(reading.taken_at).date()
        dailies: list[DailyReading] = []
        reads = 0
        back = 0
        refused: tuple[str, ...] = ()
        while True:
            request = AccessRequest(
                party,
                PURPOSE,
                (reading.ean,),
                frozenset({KIND}),
                _window(day, back),
                at,
                justification="UC10 approval of a manual meter reading",
                trigger=f"manual reading {reading.reading_id}",
            )
            try:
                grant = ask(gate, request, Uc10Error)
            except Uc10Error as exc:
                if any(r.endswith(".party") or r.startswith("PRV-2") for r in exc.rules):
                    raise  # nothing of the batch may be read: say so at once
                refused = exc.rules  # this reading's connection only: the others go on
                break
            reads += 1
            if grant.decision.audit_seq is not None:
                seqs.append(grant.decision.audit_seq)
            table = grant.read(KIND)
            dailies.extend(dailies_from(table, grant.connection_ids[reading.ean]))
            if _enough(reading.taken_at, dailies) or back + WINDOW_DAYS > rules.lookback_days:
                break
            back += WINDOW_DAYS
        if refused and not dailies:
            verdicts.append(
                Verdict(
                    reading.reading_id, reading.ean, False, "refused", reads=reads, rules=refused
                )
            )
            continue
        verdict = check_reading(reading, dailies, caps.get(reading.ean), rules, calendar)
        verdicts.append(
            Verdict(
                verdict.reading_id,
                verdict.ean,
                verdict.approved,
                verdict.basis,
                verdict.suspected,
                verdict.proposal,
                verdict.low,
                verdict.high,
                verdict.naive_flagged,
                reads,
                refused,
            )
        )
    return Uc10Result(tuple(verdicts), tuple(seqs))


def readings_from_rows(rows: Iterable[Mapping[str, str]], source: str) -> list[ManualReading]:
    """Manual readings from an operator CSV's rows (``reading_id, ean, taken_at,
    import_t1_kwh, import_t2_kwh, export_t1_kwh, export_t2_kwh``; times ISO 8601 with
    offset). Raises :class:`Uc10Error` naming the row and what to fix."""
    out: list[ManualReading] = []
    for n, row in enumerate(rows, start=2):
        try:
            taken = datetime.fromisoformat(row["taken_at"])
            if taken.tzinfo is None:
                raise ValueError("taken_at needs a UTC offset (e.g. +01:00)")
            vals = [
                None if not (row.get(f"{r}_kwh") or "").strip() else float(row[f"{r}_kwh"])
                for r in REGISTERS
            ]
            if vals[0] is None or vals[1] is None:
                raise ValueError("import_t1_kwh and import_t2_kwh are required")
            if any(v is not None and (v < 0 or not math.isfinite(v)) for v in vals):
                raise ValueError("a register is negative or not a number")
            out.append(
                ManualReading(
                    row.get("reading_id") or str(n - 1),
                    row["ean"].strip(),
                    taken,
                    (vals[0], vals[1], vals[2], vals[3]),
                )
            )
        except (KeyError, ValueError) as exc:
            raise Uc10Error(
                f"{source} row {n}: {exc}; correct the row (columns reading_id, ean, taken_at, "
                "import_t1_kwh, import_t2_kwh, export_t1_kwh, export_t2_kwh) and run again"
            ) from exc
    return out
