"""UC5 Effectiveness of an intervention: voltages before and after, at equal conditions.

Use-case list UC5: the operator reads the voltages of a group of smart meters twice,
"telkens voor maximaal 10 dagen, met een pauze van minimaal 1 dag om de ingreep te
kunnen uitvoeren" -- once before and once after a tap change, a cable reinforcement or a
feeder split -- and compares them. The gate holds the limits (``UC5.window``,
``UC5.frequency``, ``UC5.pause``, ``UC5.trigger``); each read is its own request.

The two windows differ in more than the intervention: the weather (PV feed-in, heat
pumps), the load and the MV voltage move the meters' voltages by volts. UC5 therefore
does not compare the windows' means. Per meter phase it fits the voltage on the
conditions the operator measures itself at the substation
(``operator/substation_measurements``) in the BEFORE window, predicts what the voltage
would have been in the AFTER window without the intervention, and takes the effect as
the mean of after minus that prediction: the effect at the after window's conditions,
as the twin's truth defines it.

The fit is in per unit of the group's SUPPLY VOLTAGE: the voltage the operator
measures just upstream of the intervention, which the intervention does not move --
the busbar phase voltage for a feeder's group (a reinforcement or a split changes the
cable, not the busbar), the MV voltage for a substation's (a tap change moves the
busbar itself, so the busbar would absorb the effect). A meter's voltage is that
voltage times the no-load ratio less the drop of the currents downstream, so
``V / V_supply = b0 + b . P / V_supply**2`` (P the group's power per phase and the
rest of the substation's). The supply voltage thus enters with the coefficient physics
gives it, not a fitted one: the MV voltage moves little within a window and can move
3 % between two (seed 5: a mean of 10.50 kV before, 10.15 after, below the before
window's lowest 10.21), and a fitted coefficient extrapolated that far, in a fit
that adds what physics multiplies (the same power draws more current at a lower
voltage), was off by 0.5 V, each phase differently (UC5). Per phase it also reports
the distributions, the time outside 207-253 V and the excursions (runs of 10-minute
values outside the band) of both windows.

:func:`estimate_effect` and :func:`compare_windows` are pure functions over Arrow
tables for one group (a substation or a feeder); :func:`assess_intervention` asks the
gate twice and calls them.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meetpunt import rulebook
from meetpunt.domain.calendar import local_day_bounds_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import ConnectionVersion, MeterType, PhysicalStatus
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period
from meetpunt.usecases.common import ask
from meetpunt.usecases.grid import Neighbour, street_feeders

PURPOSE = "UC5"
KIND = "voltages_10min"
WINDOW_DAYS = 10
PHASES = ("L1", "L2", "L3")
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TEN_MIN_S = 600


class Uc05Error(MeetpuntError):
    """UC5 cannot run: the gate refused, or the operator's files are not usable."""


@dataclass(frozen=True)
class Uc05Rules:
    """The band and UC5's thresholds (``data/grid_checks.toml``)."""

    low_v: float = 207.0
    high_v: float = 253.0
    min_values: int = 288
    values_per_regressor: int = 20

    @classmethod
    def load(cls) -> Uc05Rules:
        body = rulebook.load_rules("grid_checks").body
        return cls(
            low_v=float(body["band"]["low_v"]),
            high_v=float(body["band"]["high_v"]),
            min_values=int(body["uc05"]["min_values"]),
            values_per_regressor=int(body["uc05"]["values_per_regressor"]),
        )


@dataclass(frozen=True)
class InterventionNote:
    """What the operator did, where and when (its own records: operator/interventions.csv)."""

    kind: str
    substation: str
    feeder: str | None
    day: date
    at: datetime

    def windows(self, days: int = WINDOW_DAYS) -> tuple[Period, Period]:
        """The before window (the ``days`` local days up to the intervention's day) and
        the after window (``days`` local days from the day after it): the day of the
        work is the pause UC5 needs."""
        before = Period(
            local_day_bounds_utc(self.day - timedelta(days=days))[0],
            local_day_bounds_utc(self.day)[0],
        )
        after = Period(
            local_day_bounds_utc(self.day + timedelta(days=1))[0],
            local_day_bounds_utc(self.day + timedelta(days=days + 1))[0],
        )
        return before, after

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "substation": self.substation,
            "feeder": self.feeder,
            "day": self.day.isoformat(),
            "at": self.at.isoformat(),
        }


def read_interventions(path: Path) -> list[InterventionNote]:
    """The operator's interventions file; a bad line refuses the file, naming the line."""
    notes: list[InterventionNote] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                notes.append(
                    InterventionNote(
                        row["kind"],
                        row["substation"],
                        row["feeder"] or None,
                        date.fromisoformat(row["day"]),
                        datetime.fromisoformat(row["at"]),
                    )
                )
            except (KeyError, ValueError) as exc:
                raise Uc05Error(
                    f"{path}:{line}: not an intervention (kind,substation,feeder,day,at): "
                    f"{exc}; fix the line and run UC5 again",
                    [Finding("UC5.intervention_file", f"{path}:{line}")],
                ) from exc
    return notes


@dataclass(frozen=True)
class Series:
    """One meter phase of the group: its EAN, the meter's phase number and the grid
    phase it is counted under (the register's phase of a single-phase connection)."""

    ean: str
    meter_phase: int
    grid_phase: str


@dataclass(frozen=True)
class SeriesEffect:
    """UC5's estimate for one meter phase: the effect at the after window's conditions."""

    series: Series
    effect_v: float
    naive_v: float
    before_values: int
    after_values: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.series.ean,
            "meter_phase": self.series.meter_phase,
            "grid_phase": self.series.grid_phase,
            "effect_v": round(self.effect_v, 3),
            "naive_v": round(self.naive_v, 3),
            "before_values": self.before_values,
            "after_values": self.after_values,
        }


@dataclass(frozen=True)
class WindowStats:
    """One phase in one window: the distribution, minutes outside the band, excursions."""

    values: int
    quantiles: tuple[float, ...]
    minutes_above: int
    minutes_below: int
    excursions: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "quantiles": {
                f"p{round(q * 100)}": round(v, 2)
                for q, v in zip(QUANTILES, self.quantiles, strict=True)
            },
            "minutes_above": self.minutes_above,
            "minutes_below": self.minutes_below,
            "excursions": self.excursions,
        }


@dataclass(frozen=True)
class PhaseComparison:
    """One grid phase of the group: before, after and the estimated effect."""

    phase: str
    series: int
    effect_v: float | None
    effect_se_v: float | None
    naive_v: float | None
    before: WindowStats
    after: WindowStats

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "phase": self.phase,
            "series": self.series,
            "effect_v": r(self.effect_v),
            "effect_se_v": r(self.effect_se_v),
            "naive_v": r(self.naive_v),
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
        }


@dataclass(frozen=True)
class Uc05Result:
    """UC5's answer for one intervention."""

    intervention: InterventionNote
    before: Period
    after: Period
    connections: int
    phases: tuple[PhaseComparison, ...]
    effects: tuple[SeriesEffect, ...]
    left_out: tuple[str, ...] = ()
    samples: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)
    """Per phase the before and after 10-minute values (for the pictures only)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "intervention": self.intervention.as_dict(),
            "before": {"start": self.before.start.isoformat(), "end": self.before.end.isoformat()},
            "after": {"start": self.after.start.isoformat(), "end": self.after.end.isoformat()},
            "connections": self.connections,
            "phases": [p.as_dict() for p in self.phases],
            "left_out": list(self.left_out),
            "series": [e.as_dict() for e in self.effects],
        }


def _seconds(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
    return np.asarray(pc.cast(column, pa.timestamp("s", tz="UTC")).cast(pa.int64()), np.int64)


def conditions(stations: pa.Table, substation: str, feeder: str | None) -> pa.Table:
    """The group's conditions per 10 minutes from the operator's substation
    measurements: ``mv`` (the MV voltage, kV), ``p1..p3`` (the group's power per phase,
    kW: the feeder's, or the substation's for a substation group), ``p_rest`` (the
    rest of the substation's power) and ``supply_l1..l3``, the group's supply voltage
    per phase (UC5): the busbar's for a feeder, the MV voltage for a substation (a tap
    change moves the busbar). 5-minute values are averaged to the meters' 10."""
    sub = stations.filter(pc.equal(stations["substation"], substation))
    if sub.num_rows == 0:
        raise Uc05Error(
            f"the substation measurements hold nothing for {substation}",
            [Finding("UC5.conditions", f"no measurements of {substation}")],
        )
    t = _seconds(sub["start"]) // TEN_MIN_S * TEN_MIN_S
    keys, inverse = np.unique(t, return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)

    def mean(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.bincount(inverse, weights=values) / counts

    in_group = (
        np.ones(sub.num_rows, bool)
        if feeder is None
        else np.asarray(pc.equal(sub["feeder"], feeder).to_numpy(zero_copy_only=False), bool)
    )
    feeders = len(np.unique(np.asarray(sub["feeder"].to_numpy(zero_copy_only=False))))
    out: dict[str, Any] = {"t": keys, "mv": mean(np.asarray(sub["mv_kv"], np.float64))}
    total = np.zeros(len(keys))
    for ph in (1, 2, 3):
        p = np.asarray(sub[f"power_kw_l{ph}"], np.float64)
        # each 10 minutes holds two 5-minute rows per feeder: mean over time, sum over feeders
        out[f"p{ph}"] = mean(np.where(in_group, p, 0.0)) * feeders
        total += mean(p) * feeders
    out["p_rest"] = total - out["p1"] - out["p2"] - out["p3"]
    for ph in (1, 2, 3):
        # the busbar is measured on every feeder's row: their mean has the least noise
        busbar = mean(np.asarray(sub[f"busbar_v_l{ph}"], np.float64))
        out[f"supply_l{ph}"] = out["mv"] if feeder is None else busbar
    return pa.table(out)


def _runs(outside: npt.NDArray[np.bool_]) -> int:
    """Excursions: runs of consecutive outside values."""
    if outside.size == 0:
        return 0
    return int(outside[0]) + int(np.count_nonzero(outside[1:] & ~outside[:-1]))


def window_stats(values: Mapping[Series, npt.NDArray[np.float64]], rules: Uc05Rules) -> WindowStats:
    """Distribution, minutes outside the band and excursions over the series given
    (each series in time order)."""
    every = np.concatenate(list(values.values())) if values else np.zeros(0)
    quantiles = tuple(float(q) for q in np.quantile(every, QUANTILES)) if every.size else ()
    above = sum(int(np.count_nonzero(v > rules.high_v)) for v in values.values())
    below = sum(int(np.count_nonzero(v < rules.low_v)) for v in values.values())
    runs = sum(_runs((v > rules.high_v) | (v < rules.low_v)) for v in values.values())
    return WindowStats(int(every.size), quantiles, above * 10, below * 10, runs)


def _series(
    table: pa.Table, ids: Mapping[int, str], phase_of: Mapping[str, str | None]
) -> dict[Series, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Per meter phase its (time, voltage) in time order; 0 V and unknown rows left out."""
    conn = np.asarray(table["connection"], np.int64)
    phase = np.asarray(table["phase"], np.int64)
    t = _seconds(table["start"])
    v = np.asarray(table["voltage_v"], np.float64)
    keep = v > 100.0
    conn, phase, t, v = conn[keep], phase[keep], t[keep], v[keep]
    order = np.lexsort((t, phase, conn))
    conn, phase, t, v = conn[order], phase[order], t[order], v[order]
    out: dict[Series, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
    if conn.size == 0:
        return out
    cut = np.nonzero((np.diff(conn) != 0) | (np.diff(phase) != 0))[0] + 1
    for a, b in zip(np.r_[0, cut], np.r_[cut, conn.size], strict=True):
        ean = ids.get(int(conn[a]))
        if ean is None:
            continue
        registered = phase_of.get(ean)
        grid = registered if registered is not None else f"L{int(phase[a])}"
        out[Series(ean, int(phase[a]), grid)] = (t[a:b], v[a:b])
    return out


LOADS = ("p1", "p2", "p3", "p_rest")


def _design(
    cond: pa.Table, times: npt.NDArray[np.int64], series: Series, control: bool, per_unit: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """The regressors at ``times`` and the scale of the voltage there (None where a time
    has no conditions). Per unit (UC5): ``1, P / V_supply**2`` and the series' supply
    voltage as the scale; otherwise ``1, mv, P`` and scale 1 (the earlier fit, kept to
    show why it is not used); without ``control`` the constant only."""
    keys = np.asarray(cond["t"], np.int64)
    pos = np.searchsorted(keys, times)
    pos = np.clip(pos, 0, max(len(keys) - 1, 0))
    if len(keys) == 0 or not np.array_equal(keys[pos], times):
        return None
    ones = np.ones(len(times))
    if not control:
        return ones[:, None], ones
    loads = [np.asarray(cond[name], np.float64)[pos] for name in LOADS]
    if not per_unit:
        mv = np.asarray(cond["mv"], np.float64)[pos]
        return np.column_stack([ones, mv, *loads]), ones
    supply = np.asarray(cond[f"supply_l{series.grid_phase[1]}"], np.float64)[pos]
    return np.column_stack([ones, *(p / supply**2 for p in loads)]), supply


def _with_conditions(
    cond: pa.Table, series: Series, t: npt.NDArray[np.int64], v: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The values at times with conditions and a measured supply voltage."""
    keys = np.asarray(cond["t"], np.int64)
    supplied = np.asarray(cond[f"supply_l{series.grid_phase[1]}"], np.float64) > 0
    found = np.isin(t, keys[supplied])
    return t[found], v[found]


def estimate_effect(
    before: pa.Table,
    after: pa.Table,
    cond: pa.Table,
    ids: Mapping[int, str],
    phase_of: Mapping[str, str | None],
    rules: Uc05Rules | None = None,
    *,
    control: bool = True,
    per_unit: bool = True,
) -> tuple[list[SeriesEffect], list[str]]:
    """Per meter phase the intervention's effect at the after window's conditions
    (UC5): fit ``V / V_supply = b0 + b . P / V_supply**2`` on the before window,
    predict the after window without the intervention, effect = mean(after -
    prediction). ``per_unit=False`` fits ``V = b0 + b . (mv, P)`` instead (the MV
    coefficient then extrapolates; kept to show the error); ``control=False`` leaves
    the regressors out: the difference of the means, which the weather and the load
    move. Returns the effects and the EANs left out (too few values in a window)."""
    rules = rules or Uc05Rules()
    b_series = _series(before, ids, phase_of)
    a_series = _series(after, ids, phase_of)
    effects: list[SeriesEffect] = []
    left_out: list[str] = []
    for s in sorted(set(b_series) | set(a_series), key=lambda x: (x.ean, x.meter_phase)):
        if s not in b_series or s not in a_series:
            left_out.append(s.ean)
            continue
        tb, vb = _with_conditions(cond, s, *b_series[s])
        ta, va = _with_conditions(cond, s, *a_series[s])
        db = _design(cond, tb, s, control, per_unit)
        da = _design(cond, ta, s, control, per_unit)
        if (
            db is None
            or da is None
            or len(vb) < max(rules.min_values, rules.values_per_regressor * db[0].shape[1])
            or len(va) < rules.min_values
        ):
            left_out.append(s.ean)
            continue
        (xb, unit_b), (xa, unit_a) = db, da
        scale = np.maximum(np.abs(xb).max(axis=0), 1e-9)
        beta, *_ = np.linalg.lstsq(xb / scale, vb / unit_b, rcond=None)
        predicted = (xa / scale) @ beta * unit_a
        effects.append(
            SeriesEffect(
                s, float(np.mean(va - predicted)), float(va.mean() - vb.mean()), len(vb), len(va)
            )
        )
    return effects, sorted(set(left_out))


def compare_windows(
    before: pa.Table,
    after: pa.Table,
    cond: pa.Table,
    ids: Mapping[int, str],
    phase_of: Mapping[str, str | None],
    rules: Uc05Rules | None = None,
    *,
    control: bool = True,
    per_unit: bool = True,
) -> tuple[
    list[PhaseComparison],
    list[SeriesEffect],
    list[str],
    dict[str, tuple[tuple[float, ...], tuple[float, ...]]],
]:
    """Per grid phase: the before and after statistics and the mean effect over the
    phase's meter phases with its standard error (UC5), for one group."""
    rules = rules or Uc05Rules()
    effects, left_out = estimate_effect(
        before, after, cond, ids, phase_of, rules, control=control, per_unit=per_unit
    )
    b_series = {s: v for s, (_t, v) in _series(before, ids, phase_of).items()}
    a_series = {s: v for s, (_t, v) in _series(after, ids, phase_of).items()}
    out: list[PhaseComparison] = []
    samples: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
    for ph in PHASES:
        mine = [e for e in effects if e.series.grid_phase == ph]
        b = {s: v for s, v in b_series.items() if s.grid_phase == ph}
        a = {s: v for s, v in a_series.items() if s.grid_phase == ph}
        if not mine and not b and not a:
            continue
        values = np.array([e.effect_v for e in mine])
        naive = np.array([e.naive_v for e in mine])
        out.append(
            PhaseComparison(
                ph,
                len(mine),
                float(values.mean()) if mine else None,
                float(values.std(ddof=1) / np.sqrt(len(mine))) if len(mine) > 1 else None,
                float(naive.mean()) if mine else None,
                window_stats(b, rules),
                window_stats(a, rules),
            )
        )
        samples[ph] = (
            tuple(float(x) for x in np.concatenate(list(b.values()))) if b else (),
            tuple(float(x) for x in np.concatenate(list(a.values()))) if a else (),
        )
    return out, effects, left_out, samples


def group_connections(
    versions: Sequence[ConnectionVersion], note: InterventionNote
) -> dict[str, str | None]:
    """The group's smart electricity meters in service and the register's phase of each
    (None for three-phase): the substation's for a tap change, else the feeder's, placed
    by UC1's street rule (a registration error does not move a meter out of the group)."""
    smart = [
        v
        for v in versions
        if v.commodity is Commodity.ELECTRICITY
        and v.attributes.status is PhysicalStatus.IN_SERVICE
        and v.attributes.meter_type is MeterType.SMART
        and v.attributes.grid.substation == note.substation
    ]
    if note.feeder is not None:
        placed = street_feeders(Neighbour.of(v) for v in smart)
        smart = [v for v in smart if placed.get(v.ean) == note.feeder]
    return {
        v.ean: None if v.attributes.grid.phase is None else v.attributes.grid.phase.value
        for v in smart
    }


def assess_intervention(
    gate: Gate,
    party: Party,
    note: InterventionNote,
    stations: pa.Table,
    rules: Uc05Rules | None = None,
    *,
    days: int = WINDOW_DAYS,
    trigger: str | None = None,
    asked_at: datetime | None = None,
) -> Uc05Result:
    """UC5 end to end: two gate requests (before, asked when the work starts; after,
    asked when its window has ended, or at ``asked_at``), then :func:`compare_windows`
    for the group. An ``asked_at`` before the after window ends is refused
    (``UC5.asked_early``): the window would be read before it is complete."""
    rules = rules or Uc05Rules.load()
    before, after = note.windows(days)
    if asked_at is not None and asked_at < after.end:
        raise Uc05Error(
            f"asked at {asked_at.isoformat()}, before the after window ends "
            f"({after.end.isoformat()}); ask again from then on",
            [Finding("UC5.asked_early", note.feeder or note.substation)],
        )
    versions = gate.register_view.connection_versions(before.end.date() - timedelta(days=1))
    phase_of = group_connections(versions, note)
    if not phase_of:
        raise Uc05Error(
            f"no smart meters in service on {note.feeder or note.substation}",
            [Finding("UC5.group", note.feeder or note.substation)],
        )
    why = trigger or f"intervention: {note.kind} {note.feeder or note.substation} {note.day}"
    eans = tuple(sorted(phase_of))
    tables: list[pa.Table] = []
    ids: dict[int, str] = {}
    for window, at in ((before, note.at), (after, asked_at or after.end)):
        request = AccessRequest(
            party, PURPOSE, eans, frozenset({KIND}), window, at, "UC5 before/after", why
        )
        grant = ask(gate, request, Uc05Error)
        tables.append(grant.read(KIND))
        ids.update({cid: ean for ean, cid in grant.connection_ids.items()})
        grant.finish()
    cond = conditions(stations, note.substation, note.feeder)
    phases, effects, left_out, samples = compare_windows(
        tables[0], tables[1], cond, ids, phase_of, rules
    )
    return Uc05Result(
        note, before, after, len(eans), tuple(phases), tuple(effects), tuple(left_out), samples
    )
