"""Building blocks the device models share.

Mean-1 lognormal factors (day levels, appliance noise, heat pump sizes) and power
blocks laid onto the 5-minute steps (appliance events, EV sessions, hot-water runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meetpunt.twin.model import Float64Array, IntArray
from meetpunt.twin.profiles.clock import STEP_H


def lognormal_unit(sigma: Any, z: Any) -> Any:
    """exp(sigma z - sigma^2/2): mean-1 lognormal factors from standard normals ``z``."""
    return np.exp(sigma * z - 0.5 * np.square(sigma))


def rasterise(
    column: IntArray,
    start: IntArray,
    steps: Float64Array,
    power: Float64Array,
    n_steps: int,
    n_cols: int,
) -> tuple[Float64Array, Float64Array]:
    """Blocks at ``power`` from ``start`` for ``steps`` (fractional last step) on a grid.

    Returns the ``(n_steps, n_cols)`` power grid and the energy (Wh) of each block that
    falls inside the grid. Vectorised with repeat + bincount.
    """
    grid = np.zeros((n_steps, n_cols))
    if len(start) == 0 or n_steps == 0:
        return grid, np.zeros(len(start))
    full = np.floor(steps).astype(np.int64)
    frac = steps - full
    lengths = full + (frac > 1e-9)
    block = np.repeat(np.arange(len(start)), lengths)
    first = np.cumsum(lengths) - lengths
    offset = np.arange(len(block)) - np.repeat(first, lengths)
    value = power[block] * np.where(offset < full[block], 1.0, frac[block])
    position = start[block] + offset
    inside = (position >= 0) & (position < n_steps)
    flat = position[inside] * n_cols + column[block[inside]]
    grid += np.bincount(flat, weights=value[inside], minlength=n_steps * n_cols).reshape(
        n_steps, n_cols
    )
    energy = np.bincount(block[inside], weights=value[inside], minlength=len(start)) * STEP_H
    return grid, np.asarray(energy, dtype=np.float64)
