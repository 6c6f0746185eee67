"""Which phase a device draws from, and the main fuse that limits a household.

Single-phase connections put everything on their phase; three-phase ones split load
evenly, a 3x11 kW charger evenly and a single-phase charger on L1, and a small PV
inverter on L1. The household's own load (base and heat pump) is scaled down in the
5 minutes where, with the EV charger, it would take a phase above what the main fuse
holds: people on a 1x25 A connection do not run oven, dryer and car at once. The
topology already sizes chargers to the fuse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from meetpunt.twin.model import EvCharger, FloatArray, TwinConnection
from meetpunt.twin.profiles.calibration import Calibration

PHASE_V = 230.0
"""Nominal phase voltage (V) at which a fuse's amperes become watts."""
FUSE_HOLDS = 1.25
"""A gG main fuse carries 1.25 x its rating for at least an hour without blowing
(IEC 60269-1 conventional non-fusing current, 16-63 A) and blows within the hour at
1.6 x, the limit the hub checks (MTR-5.capacity)."""


def _phase_weights(conn: TwinConnection, single_phase_device: bool) -> tuple[float, float, float]:
    """How a device's power splits over L1..L3 on this connection."""
    if conn.phase is not None:
        one_hot = [0.0, 0.0, 0.0]
        one_hot[conn.phase] = 1.0
        return one_hot[0], one_hot[1], one_hot[2]
    return (1.0, 0.0, 0.0) if single_phase_device else (1 / 3, 1 / 3, 1 / 3)


def _device_weights(
    conns: Sequence[TwinConnection], cal: Calibration
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per connection, how load (base, heat pump), EV and PV split over L1..L3:
    single-phase connections put everything on their phase; three-phase connections
    split load evenly, a 3x11 kW charger evenly and a single-phase charger on L1, and a
    PV inverter up to ``single_phase_max_kwp`` on L1."""

    def weights(single: Sequence[bool]) -> FloatArray:
        rows = [_phase_weights(c, one) for c, one in zip(conns, single, strict=True)]
        return np.array(rows, dtype=np.float32).reshape(-1, 3)

    small = cal.pv.single_phase_max_kwp
    return (
        weights([False] * len(conns)),
        weights([c.ev is not EvCharger.THREE_11 for c in conns]),
        weights([c.pv_kwp <= small for c in conns]),
    )


def within_fuse(
    conns: Sequence[TwinConnection],
    base: FloatArray,
    heat: FloatArray,
    ev: FloatArray,
    cal: Calibration,
) -> None:
    """Scale, in place, a connection's own load (``base`` and ``heat``) by one factor
    per step wherever a phase would otherwise draw more than its main fuse holds
    (:data:`FUSE_HOLDS` x amperes x 230 V) together with the EV charger, which is left
    whole so its sessions keep their energy. A household that blew its fuse would sit
    in the dark; the twin's households stay where the fuse holds."""
    load_w, ev_w, _ = _device_weights(conns, cal)
    amperes = [c.capacity.amperes * FUSE_HOLDS * PHASE_V for c in conns]
    limit = np.array(amperes, dtype=np.float32)
    house = base + heat
    scale = np.ones_like(house)
    for phase in range(3):
        on = house * load_w[:, phase]
        room = np.maximum(limit - ev * ev_w[:, phase], np.float32(0.0))
        fits = np.where(on > room, room / np.maximum(on, np.float32(1.0)), np.float32(1.0))
        np.minimum(scale, fits, out=scale)
    base *= scale
    heat *= scale


def on_phases(
    conns: Sequence[TwinConnection],
    base: FloatArray,
    ev: FloatArray,
    heat: FloatArray,
    pv: FloatArray,
    cal: Calibration,
) -> tuple[FloatArray, FloatArray]:
    """Spread the totals over the phases of each connection (consumption, PV), as
    :func:`_device_weights` says."""
    load_w, ev_w, pv_w = _device_weights(conns, cal)
    n_s, n_c = base.shape
    consumption = np.empty((n_s, n_c, 3), dtype=np.float32)
    generation = np.empty((n_s, n_c, 3), dtype=np.float32)
    load = base + heat
    for phase in range(3):  # one strided 2-D write per phase: far faster than broadcasting
        np.multiply(load, load_w[:, phase], out=consumption[:, :, phase])
        np.multiply(pv, pv_w[:, phase], out=generation[:, :, phase])
    cols = np.array([j for j, c in enumerate(conns) if c.ev is not EvCharger.NONE], dtype=np.int64)
    if len(cols):
        consumption[:, cols, :] += ev[:, cols, None] * ev_w[None, cols, :]
    return consumption, generation
