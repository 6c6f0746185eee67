"""VEE checks on incoming rows, as pure functions over NumPy arrays (MTR-5).

Each check has a rule ID (listed with its meaning in ``docs/meterdata.md``); a row that
fails one is refused with the first failing rule and a message that says what was
wrong and what to do. The checks that need the store (duplicates against stored
values, counters against stored neighbours, gaps) live in
:mod:`meetpunt.meterdata.ingest`; the counter walk and the gap estimate are here
because they are pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from meetpunt.domain.vee import VeeRules
from meetpunt.meterdata.kinds import Kind

US = 1_000_000
NO_TIME = np.iinfo(np.int64).min
"""Marks an empty time cell in microsecond arrays."""

ROW_RULES = (
    "",
    "MTR-5.unknown_connection",
    "MTR-5.missing_value",
    "MTR-5.negative",
    "MTR-5.interval",
    "MTR-5.clock",
    "MTR-5.capacity",
    "MTR-5.range",
    "MTR-5.implausible_time",
    "MTR-5.implausible_duration",
    "MTR-5.implausible_register",
)
"""Row checks in the order they are applied; code 0 = passed."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RowInput:
    """The columns the row checks look at."""

    connection: npt.NDArray[np.int32]
    time_us: IntArray
    values: dict[str, npt.NDArray[Any]]
    """Value columns; float64 with NaN for empty cells when a column has any."""
    capacity_w: FloatArray | None
    """Phases x amperes x phase voltage of the connection on the row's date; NaN if none."""


def durations(kind: Kind) -> tuple[str, ...]:
    """Value columns that are durations in seconds (the failure log's ``duration_s``)."""
    return tuple(n for n in kind.value_names if n.endswith("_s"))


def counter_limits(
    kind: Kind, rules: VeeRules, seconds: FloatArray, capacity_w: FloatArray | None
) -> dict[str, FloatArray]:
    """Per counter column: the most it can rise in ``seconds`` (MTR-5.implausible_register,
    MTR-5.implausible_jump). Energy registers (Wh): the connection's fusing power times
    the time; gas (dm3): the largest meter's flow times the time; event counters: one
    event per ``event_min_interval_s``; each plus its rule-file slack. NaN (no limit)
    where the capacity is unknown."""
    out: dict[str, FloatArray] = {}
    hours = seconds / 3600.0
    for name in kind.counters:
        if name.endswith("_wh"):
            cap = capacity_w if capacity_w is not None else np.full(len(seconds), np.nan)
            out[name] = cap * rules.capacity_tolerance * hours + rules.register_slack_wh
        elif name.endswith("_dm3"):
            out[name] = rules.gas_max_m3_per_h * 1000.0 * hours + rules.gas_slack_dm3
        else:
            out[name] = seconds / rules.event_min_interval_s + rules.event_slack
    return out


def life_start_us(rules: VeeRules) -> int:
    """The start of any meter's life in microseconds since the epoch (UTC midnight)."""
    return (rules.meter_life_start.toordinal() - _EPOCH_ORDINAL) * 86_400 * US


_EPOCH_ORDINAL = 719_163
"""``date(1970, 1, 1).toordinal()``."""


def row_codes(kind: Kind, rows: RowInput, rules: VeeRules, now_us: int) -> npt.NDArray[np.int8]:
    """The first failing row check per row (index into :data:`ROW_RULES`), 0 = passed."""
    n = len(rows.time_us)
    checks: list[BoolArray] = [rows.connection < 0]
    required = [c for c in kind.value_names if c not in kind.optional]
    missing = rows.time_us == NO_TIME
    for name in required:
        if rows.values[name].dtype.kind == "f":
            missing |= np.isnan(rows.values[name])
    checks.append(missing)
    negative = np.zeros(n, dtype=bool)
    for name in kind.value_names:
        if name not in kind.voltage:
            negative |= rows.values[name] < 0
    checks.append(negative)
    if kind.interval_s:
        checks.append(rows.time_us % (kind.interval_s * US) != 0)
    else:
        checks.append(np.zeros(n, dtype=bool))
    checks.append(rows.time_us > now_us + rules.future_tolerance_s * US)
    over = np.zeros(n, dtype=bool)
    if kind.energy and kind.interval_s and rows.capacity_w is not None:
        limit = np.floor(rows.capacity_w * kind.interval_s / 3600.0 * rules.capacity_tolerance)
        for name in kind.energy:
            over |= rows.values[name] > limit  # NaN limit (no capacity) compares False
    checks.append(over)
    out_of_range = np.zeros(n, dtype=bool)
    for name in kind.voltage:
        v = rows.values[name]
        out_of_range |= (v < rules.voltage_min_v) | (v > rules.voltage_max_v)
    checks.append(out_of_range)
    checks += _plausibility(kind, rows, rules)
    codes = np.zeros(n, dtype=np.int8)
    for code in range(len(checks), 0, -1):
        codes[checks[code - 1]] = code
    return codes


def _plausibility(kind: Kind, rows: RowInput, rules: VeeRules) -> list[BoolArray]:
    """MTR-5.implausible_time, implausible_duration, implausible_register: what no meter
    can have measured since its life began (``meter_life_start`` in the rule file)."""
    life = life_start_us(rules)
    n = len(rows.time_us)
    too_early = rows.time_us < life  # an empty time is MTR-5.missing_value, checked first
    too_long = np.zeros(n, dtype=bool)
    too_high = np.zeros(n, dtype=bool)
    names = durations(kind)
    if not names and not kind.counters:
        return [too_early, too_long, too_high]
    lived_s = np.maximum(rows.time_us - life, 0) // US  # whole seconds since the life start
    for name in names:
        too_long |= rows.values[name] > lived_s  # NaN compares False
    if kind.counters:
        limits = counter_limits(kind, rules, lived_s.astype(np.float64), rows.capacity_w)
        for name, limit in limits.items():
            too_high |= rows.values[name] > limit  # NaN limit (unknown capacity): no check
    return [too_early, too_long, too_high]


def row_message(kind: Kind, code: int, rules: VeeRules) -> str:
    """Plain-language reason and remedy for a row check; the values themselves are in
    the raw record kept beside it in the quarantine."""
    rule = ROW_RULES[code]
    if rule == "MTR-5.unknown_connection":
        return (
            f"{kind.ean_column} is not a {kind.commodity.value} connection in the register; "
            "import the register first (meetpunt register import) or correct the EAN"
        )
    if rule == "MTR-5.missing_value":
        required = [c for c in kind.value_names if c not in kind.optional]
        return f"{kind.time} or one of {', '.join(required)} is empty; send the record complete"
    if rule == "MTR-5.negative":
        return "a value is below zero; energy, counters and durations cannot be negative"
    if rule == "MTR-5.interval":
        return (
            f"{kind.time} is not on the {kind.interval_s} s grid; interval values start on "
            "whole intervals (check the meter clock)"
        )
    if rule == "MTR-5.clock":
        return (
            f"{kind.time} lies more than {rules.future_tolerance_s} s after the moment of "
            "ingestion; the meter clock is wrong"
        )
    if rule == "MTR-5.capacity":
        return (
            f"{' or '.join(kind.energy)} in one interval is more than the connection's main "
            f"fuse lets through (phases x amperes x {rules.phase_voltage_v:g} V x "
            f"{rules.capacity_tolerance:g}, the capacity the register held that day); check "
            "the meter or the capacity in the register"
        )
    if rule == "MTR-5.range":
        return (
            f"{', '.join(kind.voltage)} is outside {rules.voltage_min_v:g}.."
            f"{rules.voltage_max_v:g} V, impossible on a 230 V connection"
        )
    life = rules.meter_life_start.isoformat()
    if rule == "MTR-5.implausible_time":
        return (
            f"{kind.time} lies before {life}, before any smart meter measured anything "
            "(a meter that lost its clock writes 1970 or 1999); set the meter clock and "
            "read it again"
        )
    if rule == "MTR-5.implausible_duration":
        return (
            f"{', '.join(durations(kind))} is longer than the time since {life}: the "
            "failure would have started before the meter existed; the log entry is "
            "corrupt, read the log again"
        )
    if rule == "MTR-5.implausible_register":
        return (
            f"a counter of {', '.join(kind.counters)} is higher than the meter could have "
            f"counted since {life} (energy: phases x A x {rules.phase_voltage_v:g} V x "
            f"{rules.capacity_tolerance:g} x time; gas: {rules.gas_max_m3_per_h:g} m3/h; "
            f"events: one per {rules.event_min_interval_s:g} s); misread, check the meter"
        )
    return rule


# --- counters ----------------------------------------------------------------------------


@dataclass
class CounterPoint:
    """One reading in a connection's sequence: stored (``index`` -1) or incoming."""

    time_us: int
    registers: tuple[float, ...]
    index: int


def _not_below(later: Sequence[float], earlier: Sequence[float]) -> bool:
    """True when no register went down (empty registers, NaN, are not compared)."""
    return all(not (a < b) for a, b in zip(later, earlier, strict=True))


def walk_counters(
    points: Sequence[CounterPoint], rules: VeeRules
) -> tuple[dict[int, str], set[int]]:
    """Check one connection's readings in time order (MTR-5.counter_backwards/meter_swap).

    Returns the incoming rows refused (index -> message) and the incoming rows accepted
    as the first reading of a new meter. A reading below the one before it is a meter
    swap when every register restarted near zero; otherwise, when the one before was an
    incoming reading that sticks out above its neighbours (a misread digit), that one is
    refused; otherwise the lower reading is.
    """
    refused: dict[int, str] = {}
    swaps: set[int] = set()
    kept: list[CounterPoint] = []
    for point in points:
        if not kept or _not_below(point.registers, kept[-1].registers):
            kept.append(point)
            continue
        last = kept[-1]
        if rules.is_meter_swap(point.registers):
            if point.index >= 0:
                swaps.add(point.index)
            kept.append(point)
            continue
        spike = (
            len(kept) >= 2 and last.index >= 0 and _not_below(point.registers, kept[-2].registers)
        )
        if spike or (point.index < 0 and last.index >= 0):
            refused[last.index] = (
                f"registers {_show(last.registers)} are above the later reading "
                f"{_show(point.registers)}; counters only go up (misread or wrong meter?)"
            )
            kept.pop()
            kept.append(point)
            continue
        if point.index >= 0:
            refused[point.index] = (
                f"registers {_show(point.registers)} are below the earlier reading "
                f"{_show(last.registers)}; counters only go up (misread or wrong meter?)"
            )
    return refused, swaps


def implausible_jumps(
    kind: Kind,
    rules: VeeRules,
    times_us: IntArray,
    regs: FloatArray,
    group: IntArray,
    rows: IntArray,
    capacity_w: FloatArray,
) -> dict[int, str]:
    """Incoming readings whose counters rose more than physically possible since the
    reading before them (MTR-5.implausible_jump; limits from :func:`counter_limits`).

    Points are in series, then time order (``group`` = series, ``rows`` = incoming row or
    -1 for stored). A refused reading is not the next one's reference: the walk compares
    with the last reading kept, so one spike refuses one reading.
    """
    if len(rows) < 2:
        return {}
    names = list(kind.counters)
    dt = (times_us[1:] - times_us[:-1]).astype(np.float64) / US
    limits = counter_limits(kind, rules, dt, capacity_w[1:])
    rise = regs[1:] - regs[:-1]
    over = np.zeros(len(dt), dtype=bool)
    for j, name in enumerate(names):
        over |= rise[:, j] > limits[name]
    over &= (group[1:] == group[:-1]) & (rows[1:] >= 0)
    if not over.any():
        return {}
    refused: dict[int, str] = {}
    for g in np.unique(group[1:][over]):
        members = np.flatnonzero(group == g)
        last = int(members[0])
        for i in members[1:].tolist():
            seconds = np.array([(times_us[i] - times_us[last]) / US], dtype=np.float64)
            lim = counter_limits(kind, rules, seconds, capacity_w[i : i + 1])
            jumped = [n for j, n in enumerate(names) if regs[i, j] - regs[last, j] > lim[n][0]]
            if jumped and rows[i] >= 0:
                refused[int(rows[i])] = (
                    f"registers {_show(regs[i])} rose from {_show(regs[last])} in "
                    f"{int(seconds[0])} s, more than the meter can count "
                    f"({', '.join(jumped)}); misread, check the meter"
                )
                continue
            last = i
    return refused


def _show(registers: Sequence[float]) -> str:
    return "/".join("-" if np.isnan(r) else str(int(r)) for r in registers)


# --- estimation --------------------------------------------------------------------------


def spread(total: int, weights: FloatArray) -> IntArray:
    """Split a whole number over weights so the parts are whole and add up exactly
    (largest remainder; MTR-5: estimates add up to the register difference)."""
    n = len(weights)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0)
    if w.sum() <= 0:
        w = np.ones(n)
    exact = total * w / w.sum()
    parts = np.floor(exact).astype(np.int64)
    short = int(total - parts.sum())
    if short > 0:
        order = np.argsort(-(exact - parts), kind="stable")
        parts[order[:short]] += 1
    return np.asarray(parts, dtype=np.int64)
