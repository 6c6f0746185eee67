"""DSMR P1 telegrams of the twin's smart meters (MTR-2 input; DSMR 5.0.2 / 4.2 P1 companion).

:func:`render_telegram` writes one telegram from a :class:`P1Snapshot`: the
identification line, the OBIS lines in the order of the companion standard's example
(docs/requirements.md, 'DSMR P1 objects') and ``!`` with the CRC16/ARC of everything from
``/`` to ``!`` inclusive as 4 uppercase hex digits. DSMR 4.2 has the same layout
without the instantaneous voltages and with the 0-0:96.13.1 message code line.
Timestamps are Europe/Amsterdam wall clock as ``YYMMDDhhmmssX``, ``X`` = ``S`` in
summer time and ``W`` in winter time; the failure log 1-0:99.97.0 lists the END of
each long failure and its duration (docs/requirements.md,
"DSMR P1 objects").

:func:`snapshots_for` builds snapshots from a :class:`~meetpunt.twin.meters.MeterData`
so that telegrams agree with the meter data tables to the watt-hour, and
:func:`captures` yields a serial capture (telegrams concatenated in byte order) for a
sample of meters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from meetpunt.domain.calendar import Tariff, to_local
from meetpunt.io.crc import crc16_arc  # the one CRC of meetpunt (MTR-2)
from meetpunt.twin.meters import MeterData
from meetpunt.twin.model import STEP_S, STEPS_PER_QUARTER, MeterKind, TimeAxis, TwinConnection

CRLF = "\r\n"
LOG_BUFFER_TYPE = "0-0:96.7.19"
MAX_LOG_ENTRIES = 10
_VERSIONS = {"5": "50", "5.0": "50", "5.0.2": "50", "50": "50", "4": "42", "4.2": "42", "42": "42"}
_PHASE_CODES = (("32", "52", "72"), ("31", "51", "71"), ("21", "41", "61"), ("22", "42", "62"))


@dataclass(frozen=True)
class GasReading:
    """An M-Bus gas meter on channel ``channel`` (0-n:24.2.1): register and capture time."""

    channel: int
    equipment_id: str
    captured_at: datetime
    reading_dm3: int
    """The register in dm3 (litres), i.e. m3 with 3 decimals."""


@dataclass(frozen=True)
class P1Snapshot:
    """The values of one telegram. Energy in Wh, power in W, voltages in V.

    Per-phase tuples hold one value for a single-phase meter (rendered as L1 only) and
    three for a three-phase meter. ``failure_log`` is ``(end, duration_s)`` per long
    failure, oldest first, at most 10.
    """

    identification: str
    timestamp: datetime
    equipment_id: str
    import_wh: tuple[int, int]
    export_wh: tuple[int, int]
    tariff: Tariff
    power_import_w: int
    power_export_w: int
    failures: int
    long_failures: int
    failure_log: tuple[tuple[datetime, int], ...]
    sags: tuple[int, ...]
    swells: tuple[int, ...]
    voltages_v: tuple[float, ...]
    currents_a: tuple[int, ...]
    phase_import_w: tuple[int, ...]
    phase_export_w: tuple[int, ...]
    gas: GasReading | None = None
    text_message: str = ""


def p1_timestamp(instant: datetime) -> str:
    """``YYMMDDhhmmssX`` in Amsterdam wall-clock time; X = S (summer) or W (winter)."""
    local = to_local(instant)
    return local.strftime("%y%m%d%H%M%S") + ("S" if local.dst() else "W")


def _kwh(wh: int) -> str:
    wh %= 10**9  # a 6-digit register rolls over
    return f"{wh // 1000:06d}.{wh % 1000:03d}*kWh"


def _kw(w: int) -> str:
    w = min(max(w, 0), 99_999)
    return f"{w // 1000:02d}.{w % 1000:03d}*kW"


def _count(n: int) -> str:
    return f"{min(max(n, 0), 99_999):05d}"


def _hex(text: str) -> str:
    return text.encode("ascii").hex().upper()


def render_telegram(snapshot: P1Snapshot, version: str = "5.0") -> bytes:
    """One P1 telegram (DSMR 5.0.2 or 4.2) with its CRC16/ARC, ending in CRLF."""
    code = _VERSIONS.get(version.strip())
    if code is None:
        raise ValueError(f"P1 version {version!r} is not rendered (5.0 or 4.2)")
    s = snapshot
    n_phase = len(s.voltages_v)
    per_phase = (s.sags, s.swells, s.currents_a, s.phase_import_w, s.phase_export_w)
    if n_phase not in (1, 3) or any(len(values) != n_phase for values in per_phase):
        raise ValueError("per-phase values need one entry (single-phase) or three")
    if s.gas is not None and not 1 <= s.gas.channel <= 4:
        raise ValueError(f"M-Bus channel {s.gas.channel} is not 1..4")
    log = s.failure_log[-MAX_LOG_ENTRIES:]
    log_text = "".join(f"({p1_timestamp(end)})({max(dur, 0):010d}*s)" for end, dur in log)
    lines = [
        f"1-3:0.2.8({code})",
        f"0-0:1.0.0({p1_timestamp(s.timestamp)})",
        f"0-0:96.1.1({_hex(s.equipment_id)})",
        f"1-0:1.8.1({_kwh(s.import_wh[0])})",
        f"1-0:1.8.2({_kwh(s.import_wh[1])})",
        f"1-0:2.8.1({_kwh(s.export_wh[0])})",
        f"1-0:2.8.2({_kwh(s.export_wh[1])})",
        f"0-0:96.14.0({s.tariff.p1_indicator})",
        f"1-0:1.7.0({_kw(s.power_import_w)})",
        f"1-0:2.7.0({_kw(s.power_export_w)})",
        f"0-0:96.7.21({_count(s.failures)})",
        f"0-0:96.7.9({_count(s.long_failures)})",
        f"1-0:99.97.0({len(log)})({LOG_BUFFER_TYPE}){log_text}",
    ]
    lines += [f"1-0:{_PHASE_CODES[0][i]}.32.0({_count(n)})" for i, n in enumerate(s.sags)]
    lines += [f"1-0:{_PHASE_CODES[0][i]}.36.0({_count(n)})" for i, n in enumerate(s.swells)]
    if code == "42":
        lines.append("0-0:96.13.1()")
    lines.append(f"0-0:96.13.0({_hex(s.text_message)})")
    if code == "50":
        lines += [
            f"1-0:{_PHASE_CODES[0][i]}.7.0({min(max(v, 0.0), 999.9):05.1f}*V)"
            for i, v in enumerate(s.voltages_v)
        ]
    lines += [
        f"1-0:{_PHASE_CODES[1][i]}.7.0({min(max(a, 0), 999):03d}*A)"
        for i, a in enumerate(s.currents_a)
    ]
    lines += [f"1-0:{_PHASE_CODES[2][i]}.7.0({_kw(w)})" for i, w in enumerate(s.phase_import_w)]
    lines += [f"1-0:{_PHASE_CODES[3][i]}.7.0({_kw(w)})" for i, w in enumerate(s.phase_export_w)]
    if s.gas is not None:
        n = s.gas.channel
        litres = s.gas.reading_dm3 % 10**8
        lines += [
            f"0-{n}:24.1.0(003)",
            f"0-{n}:96.1.0({_hex(s.gas.equipment_id)})",
            f"0-{n}:24.2.1({p1_timestamp(s.gas.captured_at)})"
            f"({litres // 1000:05d}.{litres % 1000:03d}*m3)",
        ]
    body = ("/" + s.identification + CRLF + CRLF + CRLF.join(lines) + CRLF + "!").encode("ascii")
    return body + f"{crc16_arc(body):04X}".encode("ascii") + CRLF.encode("ascii")


# --- snapshots from the meter simulation ------------------------------------------------


def meter_serial(conn: TwinConnection) -> str:
    """The meter's equipment identifier (ASCII, hex-encoded in 0-0:96.1.1), from its EAN."""
    maker = "45" if conn.meter is MeterKind.DSMR5 else "31"
    return f"E00{maker}{conn.ean[-12:]}"


def gas_serial(conn: TwinConnection) -> str:
    """The gas meter's M-Bus equipment identifier (0-n:96.1.0), from its gas EAN."""
    return f"G0032{(conn.gas_ean or conn.ean)[-12:]}"


def gas_channel(conn: TwinConnection) -> int:
    """The M-Bus channel the gas meter was installed on: mostly 1, sometimes 2 to 4."""
    bucket = int((conn.gas_ean or conn.ean)[-3:-1]) % 20
    return {17: 2, 18: 3, 19: 4}.get(bucket, 1)


def identification(conn: TwinConnection) -> str:
    """The identification line (without ``/``) the meter type sends."""
    if conn.meter is MeterKind.DSMR5:
        return f"XMX5LGF{conn.ean[-13:]}"
    return f"XMX5LGBBFG{conn.ean[-10:]}"


def snapshots_for(
    data: MeterData, connection: int, every_steps: int = STEPS_PER_QUARTER, first_step: int = 0
) -> list[P1Snapshot]:
    """Snapshots at every ``every_steps``-th step boundary of a smart meter's axis.

    No telegram while the meter has no supply. Registers, counters and the failure
    log come from the same state as the meter data tables; the instantaneous voltage
    is the physical voltage plus the sub-second fluctuation, 0.1 V resolution.
    """
    state = data.state
    conn = state.connections[connection]
    if not conn.meter.smart:
        raise ValueError(f"connection {connection} has a {conn.meter.value} meter: no P1 port")
    if every_steps < 1:
        raise ValueError("every_steps must be at least 1")
    axis, params = state.axis, state.params
    rng = np.random.default_rng([state.p1_seed, connection])
    regs = state.registers_mwh(connection) // 1000
    gas = state.gas_cm3(connection) if conn.gas_ean else None
    phases = conn.phases()
    outages = state.outages.get(connection, ())
    total = axis.n_steps * STEP_S
    ended = [(b, b - a) for a, b in outages if 0 < b <= total]
    long_limit = params.long_longer_than_s
    ev_phase, ev_kind, ev_start = state.events.get(
        connection, (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    )
    fail_start = state.failure_start[connection]
    history = state.failure_history.get(connection, ())
    out: list[P1Snapshot] = []
    for step in range(first_step, axis.n_steps, every_steps):
        t = step * STEP_S
        if any(a <= t < b for a, b in outages):
            continue
        at = axis.start_utc + timedelta(seconds=t)
        done = [(b, d) for b, d in ended if b <= t]
        long_done = [(b, d) for b, d in done if d > long_limit]
        log = tuple((axis.start_utc + timedelta(seconds=b), d) for b, d in [*history, *long_done])
        volts, amps, p_in, p_out = [], [], [], []
        net = 0.0
        for grid_phase in phases:
            raw = float(state.voltage_v[step, connection, grid_phase])
            v = raw + float(rng.normal(0.0, params.subsample_std_v))
            v = round(v, 1) if raw >= params.no_supply_below_v else 0.0
            p = float(state.consumption_w[step, connection, grid_phase]) - float(
                state.pv_w[step, connection, grid_phase]
            )
            net += p
            volts.append(v)
            amps.append(round(abs(p) / v) if v > 0 else 0)
            p_in.append(round(max(p, 0.0)))
            p_out.append(round(max(-p, 0.0)))
        counts = [
            tuple(
                int(base[j]) + int(np.sum((ev_kind == kind) & (ev_phase == j + 1) & (ev_start < t)))
                for j in range(len(phases))
            )
            for kind, base in ((0, state.sag_start[connection]), (1, state.swell_start[connection]))
        ]
        gas_reading = None
        if gas is not None:
            capture = step if conn.meter is MeterKind.DSMR5 else step - step % 12
            gas_reading = GasReading(
                gas_channel(conn),
                gas_serial(conn),
                axis.start_utc + timedelta(seconds=capture * STEP_S),
                int(gas[capture]) // 1000,
            )
        offpeak = bool(
            state.offpeak_quarters[min(step // STEPS_PER_QUARTER, len(state.offpeak_quarters) - 1)]
        )
        out.append(
            P1Snapshot(
                identification=identification(conn),
                timestamp=at,
                equipment_id=meter_serial(conn),
                import_wh=(int(regs[step, 0]), int(regs[step, 1])),
                export_wh=(int(regs[step, 2]), int(regs[step, 3])),
                tariff=Tariff.T1 if offpeak else Tariff.T2,
                power_import_w=round(max(net, 0.0)),
                power_export_w=round(max(-net, 0.0)),
                failures=int(fail_start[0]) + len(done),
                long_failures=int(fail_start[1]) + len(long_done),
                failure_log=log[-MAX_LOG_ENTRIES:],
                sags=counts[0],
                swells=counts[1],
                voltages_v=tuple(volts),
                currents_a=tuple(amps),
                phase_import_w=tuple(p_in),
                phase_export_w=tuple(p_out),
                gas=gas_reading,
            )
        )
    return out


def telegrams_for(
    data: MeterData,
    connection: int,
    every_steps: int = STEPS_PER_QUARTER,
    version: str | None = None,
) -> bytes:
    """A serial capture of one meter: its telegrams concatenated in time order.

    ``version`` defaults to the meter's own (DSMR 5.0 or 4.2).
    """
    conn = data.state.connections[connection]
    chosen = version or ("5.0" if conn.meter is MeterKind.DSMR5 else "4.2")
    return b"".join(
        render_telegram(snap, chosen) for snap in snapshots_for(data, connection, every_steps)
    )


def captures(
    data: MeterData,
    axis: TimeAxis | None = None,
    sample: int | Sequence[int] = 5,
    every_steps: int = STEPS_PER_QUARTER,
) -> Iterator[tuple[str, bytes]]:
    """``(ean, capture)`` for a sample of smart meters: the first ``sample`` or these indices."""
    if axis is not None and axis != data.state.axis:
        raise ValueError("the axis differs from the one the meters were simulated on")
    chosen = list(data.smart[:sample]) if isinstance(sample, int) else list(sample)
    for index in chosen:
        yield data.state.connections[index].ean, telegrams_for(data, index, every_steps)
