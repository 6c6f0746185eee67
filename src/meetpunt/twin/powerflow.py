"""Per-phase voltages from asymmetric power flow (power-grid-model), with inverter trips.

One power-grid-model per substation: MV source -> Dyn5 transformer -> LV busbar ->
feeder backbones -> service cables -> one asymmetric load per connection. Each
5-minute step is one power flow in a batch (iterative current method). The MV
voltage wanders slowly per substation, so feeders do not all see the same background.

Inverter trips: a PV inverter disconnects when the 10-minute mean voltage on one of its
phases exceeds the operator's configured limit (EN 50549-1's 10-minute mean over-voltage
protection, set to the operator's inverter limit from the ``voltage_quality`` rule file:
Enexis 248 V, Stedin 249 V, Liander 250 V) and stays off for a reconnect delay; each
step whose feed-in a trip changed is solved again once, right before a later decision
reads it (issue 18). The trips are kept for the truth (UC3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from power_grid_model import (
    BranchSide,
    CalculationMethod,
    ComponentType,
    DatasetType,
    LoadGenType,
    PowerGridModel,
    WindingType,
    initialize_array,
)
from power_grid_model.errors import PowerGridError  # type: ignore[attr-defined]

from meetpunt.errors import TwinError
from meetpunt.rulebook import voltage_quality
from meetpunt.twin.interventions import TAP_STEP, Intervention
from meetpunt.twin.model import (
    STEP_S,
    FloatArray,
    Interruption,
    TimeAxis,
)
from meetpunt.twin.topology import BACKBONE, SERVICE_1PH, SERVICE_3PH, Region, Substation

CT = ComponentType
DT = DatasetType
STEPS_PER_DAY = 86400 // STEP_S
MV_VOLTAGE = 10.5e3
LV_VOLTAGE = 400.0
THREADS = 0  # all cores: measured 3.3 s -> 1.9 s for 1,000 connections x 3 days on 2 cores
RESOLVE_STEPWISE_UP_TO = 4
"""A trip re-solve of at most this many steps solves them one by one on the kept model
(:meth:`_SubstationModel.solve_step`), a larger one as a batch."""
RESOLVE_THREADS_FROM = 16
"""A trip re-solve of fewer steps runs sequentially: 3 steps took 2.1 ms so, 2.7 ms on
two threads (1,000-connection region, 179-connection substation)."""


@dataclass(frozen=True)
class PhysicsSettings:
    """Limits and behaviour of the physics run."""

    inverter_trip_v: float = field(default_factory=lambda: voltage_quality().inverter.limit_v)
    """The 10-minute mean over-voltage setting of every PV inverter (EN 50549-1): the
    operator's inverter limit from the rule file."""
    reconnect_steps: int = 3
    """Steps (5 min) an inverter stays off after a trip before it feeds in again."""
    reactive_share: float = 0.1
    broken_neutral_r0_factor: float = 40.0


@dataclass
class InverterTrip:
    """A PV inverter that disconnected on overvoltage (truth for UC3): ``step`` is its
    first step off, ``voltage_v`` the 10-minute mean voltage (of ``phase``) that tripped
    it, over the two steps before ``step``."""

    index: int
    phase: int
    step: int
    voltage_v: float


@dataclass
class PhysicsResult:
    """Voltages per connection and phase, transformer power, trips."""

    voltage_v: FloatArray
    pv_w: FloatArray
    transformer_p_w: FloatArray
    load_p_w: FloatArray
    trips: list[InverterTrip] = field(default_factory=list)
    power_flows: int = 0
    seconds_in_solver: float = 0.0
    busbar_v: FloatArray | None = None
    """Busbar phase voltages (steps, substations, 3): the operator's own measurement."""
    mv_pu: FloatArray | None = None
    """The MV voltage per substation (steps, substations), p.u."""
    effect_v: FloatArray | None = None
    """UC5 truth: ``V_with - V_without`` the intervention from its step on, for the
    intervention substation's connections (steps after, connections, 3); NaN unsupplied."""
    effect_from: int = 0
    """The first step of :attr:`effect_v`."""
    trip_power_flows: int = 0
    """Of :attr:`power_flows`, the steps solved again after inverter trips."""
    trip_seconds_in_solver: float = 0.0
    """Of :attr:`seconds_in_solver`, the seconds of those trip re-solves."""
    trip_solves: int = 0
    """Solver calls (batches) of those trip re-solves."""


def _mv_profile(axis: TimeAxis, n_subs: int, rng: np.random.Generator) -> FloatArray:
    """Per-substation MV voltage in p.u.: a daily swing plus a slow random walk."""
    hours = (np.arange(axis.n_steps) * STEP_S / 3600.0) % 24.0
    daily = 0.006 * np.cos((hours - 4.0) / 24.0 * 2 * np.pi)
    walk = np.cumsum(rng.normal(0.0, 0.0006, size=(axis.n_steps, n_subs)), axis=0)
    walk -= np.linspace(0, 1, axis.n_steps)[:, None] * walk[-1:, :]  # no drift over the run
    base = rng.uniform(0.995, 1.01, size=n_subs)
    return (base[None, :] + daily[:, None] + walk).astype(np.float32)


def _transformer(sub: Substation, component_id: int, rng: np.random.Generator) -> np.ndarray:
    """The substation's Dyn5 MV/LV transformer (400 or 630 kVA, typical losses)."""
    transformer = initialize_array(DT.input, CT.transformer, 1)
    transformer["id"] = component_id
    transformer["from_node"] = sub.mv_node
    transformer["to_node"] = sub.busbar_node
    transformer["from_status"] = 1
    transformer["to_status"] = 1
    transformer["u1"] = MV_VOLTAGE
    transformer["u2"] = float(rng.uniform(400.0, 408.0))  # 231-236 V phase at no load
    transformer["sn"] = sub.sn_va
    transformer["uk"] = 0.04
    transformer["pk"] = 4.6e3 if sub.sn_va <= 400e3 else 6.5e3
    transformer["i0"] = 0.003
    transformer["p0"] = 610.0 if sub.sn_va <= 400e3 else 860.0
    transformer["winding_from"] = WindingType.delta
    transformer["winding_to"] = WindingType.wye_n
    transformer["clock"] = 5
    transformer["tap_side"] = BranchSide.from_side
    transformer["tap_pos"] = 0
    transformer["tap_min"] = -2
    transformer["tap_max"] = 2
    transformer["tap_nom"] = 0
    transformer["tap_size"] = 250.0
    return transformer


class _SubstationModel:
    """The power-grid-model of one substation and the index maps around it."""

    def __init__(  # noqa: PLR0915 - the model's components are built best in one place
        self,
        region: Region,
        sub: Substation,
        broken_neutral: set[int],
        settings: PhysicsSettings,
        rng: np.random.Generator,
        intervention: Intervention | None = None,
    ) -> None:
        feeders = [region.feeders[f] for f in sub.feeders]
        here = intervention if intervention and intervention.substation == sub.id else None
        conns = [region.connections[i] for f in feeders for i in f.connections]
        self.name = sub.id
        self.indices = np.array([c.index for c in conns], dtype=np.int64)
        lv_nodes = (
            [sub.busbar_node] + [n for f in feeders for n in f.nodes] + [c.node for c in conns]
        )
        node_ids = [sub.mv_node, *lv_nodes]
        self.node_row = {n: i for i, n in enumerate(node_ids)}
        next_id = max(node_ids) + 1

        def ids(count: int) -> np.ndarray:
            nonlocal next_id
            out = np.arange(next_id, next_id + count)
            next_id += count
            return out

        node = initialize_array(DT.input, CT.node, len(node_ids))
        node["id"] = node_ids
        node["u_rated"] = [MV_VOLTAGE] + [LV_VOLTAGE] * len(lv_nodes)
        source = initialize_array(DT.input, CT.source, 1)
        source["id"] = ids(1)
        source["node"] = sub.mv_node
        source["status"] = 1
        source["u_ref"] = 1.0
        source["sk"] = 200e6
        self.source_id = int(source["id"][0])
        transformer = _transformer(sub, int(ids(1)[0]), rng)
        segments = [s for f in feeders for s in f.segments]
        extra = self._intervention_lines(region, sub, here)
        new_lines = [e for e in extra if not e[3]]
        n_lines = len(segments) + len(conns) + len(new_lines)
        line = initialize_array(DT.input, CT.line, n_lines)
        line["id"] = ids(n_lines)
        line["from_status"] = 1
        line["to_status"] = 1
        for row, seg in enumerate(segments):
            self._set_line(line, row, seg.from_node, seg.to_node, seg.length_km, seg.cable, 1.0)
        self.switches = self._switch(line, segments, len(conns), extra)
        self.tap_after = TAP_STEP if here is not None and here.kind == "tap_change" else 0
        self.transformer_id = int(transformer["id"][0])
        for k, conn in enumerate(conns):
            cable = SERVICE_3PH if conn.three_phase else SERVICE_1PH
            factor = settings.broken_neutral_r0_factor if conn.index in broken_neutral else 1.0
            backbone = int(conn.extra["backbone_node"])
            length = region.service_length_km[conn.index]
            self._set_line(line, len(segments) + k, backbone, conn.node, length, cable, factor)
        load = initialize_array(DT.input, CT.asym_load, len(conns))
        load["id"] = ids(len(conns))
        load["node"] = [c.node for c in conns]
        load["status"] = 1
        # A broken neutral (UC12) leaves its appliances on a floating star point: their
        # voltage swings far from 230 V, where they draw like the resistances they are,
        # not constant power (constant power has no solution there under a heavy
        # single-phase load; seed 4 of 1,000 x 30 met it). Every other load is
        # constant power.
        load["type"] = [
            LoadGenType.const_impedance if c.index in broken_neutral else LoadGenType.const_power
            for c in conns
        ]
        load["p_specified"] = 0.0
        load["q_specified"] = 0.0
        self.load_ids = load["id"].copy()
        self.conn_nodes = np.array([self.node_row[c.node] for c in conns], dtype=np.int64)
        self.busbar_row = self.node_row[sub.busbar_node]
        self.model = PowerGridModel(
            {
                CT.node: node,
                CT.source: source,
                CT.transformer: transformer,
                CT.line: line,
                CT.asym_load: load,
            }
        )
        self._stepper: PowerGridModel | None = None

    def _switch(
        self,
        line: np.ndarray,
        segments: Sequence[object],
        n_conns: int,
        extra: list[tuple[int, int, float, bool]],
    ) -> list[tuple[int, int, int]]:
        """UC5: the lines an intervention switches as (line id, status before, after);
        the status is a batch update, so one model holds both states."""
        switches: list[tuple[int, int, int]] = []
        opened = {(a, b) for a, b, _km, on_before in extra if on_before}
        for row, seg in enumerate(segments):
            if (seg.from_node, seg.to_node) in opened:  # type: ignore[attr-defined]
                switches.append((int(line["id"][row]), 1, 0))
        base = len(segments) + n_conns
        for k, (a, b, km, _off) in enumerate(e for e in extra if not e[3]):
            self._set_line(line, base + k, a, b, km, BACKBONE, 1.0)
            line["from_status"][base + k] = 0
            line["to_status"][base + k] = 0
            switches.append((int(line["id"][base + k]), 0, 1))
        return switches

    @staticmethod
    def _intervention_lines(
        region: Region, sub: Substation, here: Intervention | None
    ) -> list[tuple[int, int, float, bool]]:
        """Lines (from, to, km, a backbone segment opened by it) of an intervention:
        a reinforcement lays a second backbone beside each segment of the feeder; a
        split lays a cable from the busbar to the feeder's middle node and opens the
        segment into it (UC5). A backbone segment opened is listed with its nodes and
        ``True``; a new cable with ``False`` (off before, on after)."""
        if here is None or here.feeder is None:
            return []
        feeder = region.feeders[here.feeder]
        if here.kind == "reinforcement":
            return [(g.from_node, g.to_node, g.length_km, False) for g in feeder.segments]
        mid = len(feeder.segments) // 2
        seg = feeder.segments[mid]
        reach = sum(g.length_km for g in feeder.segments[:mid])
        return [
            (seg.from_node, seg.to_node, seg.length_km, True),
            (sub.busbar_node, seg.to_node, max(0.05, 0.6 * reach), False),
        ]

    @staticmethod
    def _set_line(
        line: np.ndarray, row: int, a: int, b: int, km: float, cable: object, r0_factor: float
    ) -> None:
        line["from_node"][row] = a
        line["to_node"][row] = b
        line["r1"][row] = cable.r1 * km  # type: ignore[attr-defined]
        line["x1"][row] = cable.x1 * km  # type: ignore[attr-defined]
        line["r0"][row] = cable.r0 * km * r0_factor  # type: ignore[attr-defined]
        line["x0"][row] = cable.x0 * km  # type: ignore[attr-defined]
        line["c1"][row] = 250e-9 * km
        line["c0"][row] = 150e-9 * km
        line["tan1"][row] = 0.0
        line["tan0"][row] = 0.0
        line["i_n"][row] = cable.i_n  # type: ignore[attr-defined]

    def solve_step(
        self, p_w: FloatArray, q_var: FloatArray, u_ref: float
    ) -> tuple[FloatArray, float, FloatArray] | None:
        """One step as :meth:`solve` gives it, on a kept copy of the model updated in
        place: no batch to set up, so about 0.7 ms for a step that costs 1.1 ms as a batch
        of one (issue 18, the trip re-solves). ``None`` where the iterative current method
        gives up; :meth:`solve` then takes the step to Newton-Raphson. The kept model is
        in the state before an intervention (UC5): steps after it need :meth:`solve`."""
        if self._stepper is None:
            self._stepper = self.model.copy()
        update = initialize_array(DT.update, CT.asym_load, len(self.load_ids))
        update["id"] = self.load_ids
        update["status"] = 1
        update["p_specified"] = p_w
        update["q_specified"] = q_var
        source = initialize_array(DT.update, CT.source, 1)
        source["id"] = self.source_id
        source["status"] = 1
        source["u_ref"] = u_ref
        self._stepper.update(update_data={CT.asym_load: update, CT.source: source})
        try:
            result = self._stepper.calculate_power_flow(
                symmetric=False,
                calculation_method=CalculationMethod.iterative_current,
                output_component_types={CT.node: ["u"], CT.transformer: ["p_from"]},
            )
        except PowerGridError:
            return None
        u = result[CT.node]["u"][self.conn_nodes, :].astype(np.float32)
        p = result[CT.transformer]["p_from"][0, :].sum().astype(np.float32)
        bus = result[CT.node]["u"][self.busbar_row, :].astype(np.float32)
        return u, float(p), bus

    def solve(
        self,
        p_w: FloatArray,
        q_var: FloatArray,
        u_ref: FloatArray,
        after: npt.NDArray[np.bool_] | None = None,
        threads: int = THREADS,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Voltages (steps, conns, 3) at the service nodes, transformer P (steps,) and
        busbar voltages (steps, 3); ``after`` marks the steps with the intervention;
        ``threads`` as power-grid-model's ``threading`` (-1: sequential, cheaper for a
        few steps than starting threads; the result is the same)."""
        steps = p_w.shape[0]
        update = initialize_array(DT.update, CT.asym_load, (steps, len(self.load_ids)))
        update["id"] = self.load_ids
        update["status"] = 1
        update["p_specified"] = p_w
        update["q_specified"] = q_var
        source = initialize_array(DT.update, CT.source, (steps, 1))
        source["id"] = self.source_id
        source["status"] = 1
        source["u_ref"] = u_ref[:, None]
        updates: dict[ComponentType, np.ndarray] = {CT.asym_load: update, CT.source: source}
        if after is not None and (self.switches or self.tap_after):
            tap = initialize_array(DT.update, CT.transformer, (steps, 1))
            tap["id"] = self.transformer_id
            tap["tap_pos"] = np.where(after, self.tap_after, 0)[:, None]
            updates[CT.transformer] = tap
            if self.switches:
                lines = initialize_array(DT.update, CT.line, (steps, len(self.switches)))
                for k, (line_id, before_on, after_on) in enumerate(self.switches):
                    status = np.where(after, after_on, before_on)
                    lines["id"][:, k] = line_id
                    lines["from_status"][:, k] = status
                    lines["to_status"][:, k] = status
                updates[CT.line] = lines
        result = self.model.calculate_power_flow(
            symmetric=False,
            update_data=updates,
            calculation_method=CalculationMethod.iterative_current,
            output_component_types={CT.node: ["u"], CT.transformer: ["p_from"]},
            threading=threads,
            continue_on_batch_error=True,
        )
        failed = self.model.batch_error
        if failed is not None:  # heavy steps: iterative current gave up; Newton-Raphson next
            rows = np.asarray(failed.failed_scenarios, dtype=np.int64)
            retry = self.model.calculate_power_flow(
                symmetric=False,
                update_data={k: v[rows] for k, v in updates.items()},
                calculation_method=CalculationMethod.newton_raphson,
                max_iterations=50,
                output_component_types={CT.node: ["u"], CT.transformer: ["p_from"]},
                continue_on_batch_error=True,
            )
            if self.model.batch_error is not None:
                raise TwinError(
                    f"power flow of substation {self.name} did not converge in "
                    f"{len(self.model.batch_error.failed_scenarios)} step(s): the load is "
                    "beyond what the grid can carry; lower the load or raise the capacity"
                )
            result[CT.node]["u"][rows] = retry[CT.node]["u"]
            result[CT.transformer]["p_from"][rows] = retry[CT.transformer]["p_from"]
        u = result[CT.node]["u"][:, self.conn_nodes, :].astype(np.float32)
        p = result[CT.transformer]["p_from"][:, 0, :].sum(axis=1).astype(np.float32)
        bus = result[CT.node]["u"][:, self.busbar_row, :].astype(np.float32)
        return u, p, bus


def _without_intervention(
    model: _SubstationModel,
    cons: FloatArray,
    gen: FloatArray,
    u: FloatArray,
    on: npt.NDArray[np.bool_],
    phases: npt.NDArray[np.bool_],
    u_ref: FloatArray,
    after: npt.NDArray[np.bool_],
    settings: PhysicsSettings,
    effect: FloatArray | None,
    where: tuple[int, int, int],
) -> FloatArray:
    """UC5 truth: the day's steps with the intervention solved again without it, at the
    same load, weather (PV after trips) and MV voltage; ``V_with - V_without`` into
    ``effect`` (NaN where unsupplied or no such phase)."""
    n_steps, from_step, day_start = where
    rows = np.nonzero(after)[0]
    u_without, _p, _b = model.solve(
        cons[rows] - gen[rows],
        cons[rows] * settings.reactive_share,
        u_ref[rows],
        np.zeros(len(rows), dtype=bool),
    )
    if effect is None:
        effect = np.full((n_steps - from_step, len(model.indices), 3), np.nan, np.float32)
    mask = on[rows] & phases[None, :, :]
    effect[day_start + rows - from_step] = np.where(mask, u[rows] - u_without, np.nan)
    return effect


def _trip(
    u: FloatArray,
    gen: FloatArray,
    voltage: FloatArray,
    day_start: int,
    idx: npt.NDArray[np.int64],
    phases: npt.NDArray[np.bool_],
    settings: PhysicsSettings,
    trips: list[InverterTrip],
    resolve: Callable[[npt.NDArray[np.int64]], None],
) -> None:
    """EN 50549-1 10-minute mean over-voltage protection over a day of one substation,
    in time order: an inverter still feeding in at step ``t + 1`` whose phase's mean over
    steps ``t - 1`` and ``t`` exceeds ``settings.inverter_trip_v`` goes off from ``t + 1``
    for ``settings.reconnect_steps``. A later decision sees the voltage without the
    tripped feed-in (the first inverter to trip lowers its neighbours' voltage).

    A step's voltage changes only through trips decided before it, so each step whose
    feed-in a trip changed is solved again (``resolve``) once, lazily: right before the
    first decision that reads it (one at ``t`` reads steps ``t - 1`` and ``t`` and only
    matters if an inverter feeds in at ``t + 1``), else with the rest at the day's end.
    Same decisions and voltages as re-solving the ``reconnect_steps`` after every trip
    (a power flow's result does not depend on its batch), at fewer power flows (issue 18).
    Zeroes ``gen`` while off and appends to ``trips``."""
    n = u.shape[0]
    limit = settings.inverter_trip_v
    lagged = np.concatenate(
        [(voltage[day_start - 1, idx, :] if day_start > 0 else u[0])[None], u[:-1]]
    )
    mean10 = np.where((u > 0) & phases[None, :, :], (lagged + u) / 2.0, 0.0)
    hot: npt.NDArray[np.bool_] = np.asarray((mean10 > limit).any(axis=2))
    feeding: npt.NDArray[np.bool_] = np.asarray(gen.sum(axis=2) > 0)
    dirty = np.zeros(n, dtype=bool)  # feed-in changed since the step was solved
    cursor = 0
    while True:
        stale = dirty[:-1].copy()
        stale[1:] |= dirty[:-2]
        wanted = feeding[1:].any(axis=1)
        due = ((hot[:-1] & feeding[1:]).any(axis=1) | stale) & wanted
        due[:cursor] = False
        hits = np.flatnonzero(due)
        if not hits.size:
            break
        t = int(hits[0])
        if stale[t]:  # its feed-in is final: every trip that can change it is decided
            rows = np.flatnonzero(dirty[: t + 1])
            _refresh(rows, u, lagged, mean10, hot, phases, limit, resolve)
            dirty[rows] = False
            continue
        first, end = t + 1, min(t + 1 + settings.reconnect_steps, n)
        for k in np.flatnonzero(hot[t] & feeding[t + 1]).tolist():
            ph = int(np.argmax(mean10[t, k]))
            trips.append(InverterTrip(int(idx[k]), ph, day_start + first, float(mean10[t, k, ph])))
            dirty[first:end] |= (gen[first:end, k, :] != 0).any(axis=1)
            gen[first:end, k, :] = 0.0
            feeding[first:end, k] = False
        cursor = t + 1
    rows = np.flatnonzero(dirty)
    if rows.size:  # no decision reads them, the day's voltages do
        resolve(rows)


def _refresh(
    rows: npt.NDArray[np.int64],
    u: FloatArray,
    lagged: FloatArray,
    mean10: FloatArray,
    hot: npt.NDArray[np.bool_],
    phases: npt.NDArray[np.bool_],
    limit: float,
    resolve: Callable[[npt.NDArray[np.int64]], None],
) -> None:
    """Solve ``rows`` again (``resolve`` writes ``u``) and update the 10-minute means of
    the steps that read them, as :func:`_trip` first computed them."""
    resolve(rows)
    nxt = rows[rows + 1 < len(u)] + 1
    lagged[nxt] = u[nxt - 1]
    touched = np.union1d(rows, nxt)
    mean10[touched] = np.where(
        (u[touched] > 0) & phases[None, :, :], (lagged[touched] + u[touched]) / 2.0, 0.0
    )
    hot[touched] = (mean10[touched] > limit).any(axis=2)


def simulate_physics(  # noqa: PLR0915 - the walk over substations and days reads best in one place
    region: Region,
    axis: TimeAxis,
    consumption_w: FloatArray,
    pv_w: FloatArray,
    interruptions: Sequence[Interruption],
    rng: np.random.Generator,
    broken_neutral: set[int] | None = None,
    settings: PhysicsSettings | None = None,
    progress: Callable[[int], None] | None = None,
    intervention: Intervention | None = None,
) -> PhysicsResult:
    """Solve every step for every substation; return voltages and the trips.

    Interrupted connections draw nothing and see 0 V. ``pv_w`` is copied: the result
    holds the PV output after inverter trips. ``progress`` is called with the number
    of power flows done after each day of each substation.
    """
    import time

    settings = settings or PhysicsSettings()
    broken = broken_neutral or set()
    n_steps, n_conn, _ = consumption_w.shape
    supplied = np.ones((n_steps, n_conn), dtype=bool)
    for cut in interruptions:
        a, b = axis.step_of(cut.start), axis.step_of(cut.end)
        supplied[a : max(b, a + 1), cut.index] = False
    pv = pv_w.copy()
    voltage = np.zeros_like(consumption_w)
    transformer = np.zeros((n_steps, len(region.substations)), dtype=np.float32)
    busbar = np.zeros((n_steps, len(region.substations), 3), dtype=np.float32)
    u_ref = _mv_profile(axis, len(region.substations), rng)
    from_step = axis.step_of(intervention.at) if intervention is not None else n_steps
    after_all = np.arange(n_steps) >= from_step
    effect: FloatArray | None = None
    phase_mask = np.zeros((n_conn, 3), dtype=bool)
    for conn in region.connections:
        phase_mask[conn.index, list(conn.phases())] = True
    trips: list[InverterTrip] = []
    redo_stats = [0.0, 0, 0]  # seconds in the solver, power flows and calls of trip re-solves
    flows = 0
    solver_s = 0.0
    for s_no, sub in enumerate(region.substations):
        model = _SubstationModel(region, sub, broken, settings, rng, intervention)
        idx = model.indices
        for day_start in range(0, n_steps, STEPS_PER_DAY):
            day = slice(day_start, min(day_start + STEPS_PER_DAY, n_steps))
            on = supplied[day][:, idx][:, :, None]
            cons = consumption_w[day][:, idx, :] * on
            gen = pv[day][:, idx, :] * on
            started = time.perf_counter()
            after = after_all[day]
            u, p_tr, bus = model.solve(
                cons - gen, cons * settings.reactive_share, u_ref[day, s_no], after
            )
            solver_s += time.perf_counter() - started
            flows += cons.shape[0]

            def resolve(
                rows: npt.NDArray[np.int64],
                model: _SubstationModel = model,
                cons: FloatArray = cons,
                gen: FloatArray = gen,
                u: FloatArray = u,
                p_tr: FloatArray = p_tr,
                bus: FloatArray = bus,
                ref: FloatArray = u_ref[day, s_no],
                after: npt.NDArray[np.bool_] = after,
            ) -> None:
                started = time.perf_counter()
                redo_stats[1] += len(rows)
                if len(rows) <= RESOLVE_STEPWISE_UP_TO:
                    switched = bool(model.switches or model.tap_after)
                    left = []
                    for r in rows.tolist():
                        one = (
                            None
                            if switched and after[r]
                            else model.solve_step(
                                cons[r] - gen[r], cons[r] * settings.reactive_share, float(ref[r])
                            )
                        )
                        if one is None:
                            left.append(r)
                        else:
                            u[r], p_tr[r], bus[r] = one
                            redo_stats[2] += 1
                    rows = np.asarray(left, dtype=np.int64)
                if rows.size:
                    u_redo, p_redo, bus_redo = model.solve(
                        cons[rows] - gen[rows],
                        cons[rows] * settings.reactive_share,
                        ref[rows],
                        after[rows],
                        threads=-1 if len(rows) < RESOLVE_THREADS_FROM else THREADS,
                    )
                    u[rows], p_tr[rows], bus[rows] = u_redo, p_redo, bus_redo
                    redo_stats[2] += 1
                redo_stats[0] += time.perf_counter() - started

            _trip(u, gen, voltage, day_start, idx, phase_mask[idx], settings, trips, resolve)
            pv[day][:, idx, :] = np.where(on > 0, gen, pv[day][:, idx, :])
            voltage[day][:, idx, :] = u * on * phase_mask[idx][None, :, :]
            transformer[day, s_no] = p_tr
            busbar[day, s_no] = bus
            if after.any() and (model.switches or model.tap_after):
                effect = _without_intervention(
                    model,
                    cons,
                    gen,
                    u,
                    on,
                    phase_mask[idx],
                    u_ref[day, s_no],
                    after,
                    settings,
                    effect,
                    (n_steps, from_step, day_start),
                )
                flows += int(after.sum())
            if progress is not None:
                progress(cons.shape[0])
    solver_s += redo_stats[0]
    flows += int(redo_stats[1])
    load = (consumption_w - pv) * supplied[:, :, None]
    return PhysicsResult(
        voltage,
        pv,
        transformer,
        load.sum(axis=2),
        trips,
        flows,
        solver_s,
        busbar_v=busbar,
        mv_pu=u_ref,
        effect_v=effect,
        effect_from=from_step,
        trip_power_flows=int(redo_stats[1]),
        trip_seconds_in_solver=redo_stats[0],
        trip_solves=int(redo_stats[2]),
    )
