"""Differential-privacy noise for aggregate cells (PRV-6.noise), through OpenDP.

A noisy purpose (``release = "noisy"`` in the catalogue) releases each cell's sum with
discrete Laplace noise (OpenDP ``make_laplace`` over integers: the discrete Laplace /
two-sided geometric mechanism, Ghosh, Roughgarden & Sundararajan 2009; Canonne, Kamath &
Steinke 2020) after clipping every connection's contribution to ``[0, clip]``, so
adding or removing one connection changes the sum by at most ``clip`` (the
sensitivity) and the release is epsilon-differentially private with scale
``clip / epsilon``. Each release spends epsilon of every member's budget (sequential
composition; cells of one release and level are disjoint, so a member spends once per
grid period and level).

UC14's population rule ("at least 10 dynamic and 10 non-dynamic contracts") is decided
on counts with discrete Laplace noise plus a margin, so that whether an area is shown
no longer gives away one contract's type: a count below the threshold passes with
probability at most ``delta`` (PRV-6.population_noise).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import opendp.prelude as dp

dp.enable_features("contrib")


@cache
def _mechanism(scale: float) -> Any:
    """OpenDP's discrete Laplace measurement on integers with ``scale``."""
    return dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)


def scale(sensitivity: int, epsilon: float) -> float:
    """The Laplace scale that makes a sum of sensitivity ``sensitivity`` epsilon-DP."""
    if sensitivity < 1 or epsilon <= 0:
        raise ValueError("sensitivity must be at least 1 and epsilon above 0")
    return sensitivity / epsilon


def laplace(value: int, sensitivity: int, epsilon: float) -> int:
    """``value`` with discrete Laplace noise calibrated to ``sensitivity`` and
    ``epsilon`` (OpenDP)."""
    measurement = _mechanism(scale(sensitivity, epsilon))
    return int(measurement(int(value)))


def privacy_loss(sensitivity: int, epsilon: float) -> float:
    """The epsilon OpenDP's privacy map gives the measurement at ``sensitivity``: a
    check that the calibration spends what the catalogue says."""
    return float(_mechanism(scale(sensitivity, epsilon)).map(int(sensitivity)))


def margin(epsilon: float, delta: float) -> int:
    """The smallest whole ``m`` with P(discrete Laplace(1/epsilon) >= m) <= ``delta``:
    P(Z >= m) = e^(-epsilon m) / (1 + e^(-epsilon)) <= e^(-epsilon m)."""
    return max(0, math.ceil(math.log(1 / delta) / epsilon))


def passes(count: int, threshold: int, epsilon: float, delta: float) -> bool:
    """Whether a population count may pass ``threshold``: it must, exactly, and its
    noisy value must exceed ``threshold`` by the margin (the exact test alone would
    say a boundary contract's type; with the margin a count at the boundary passes
    with probability at most ``delta``)."""
    if count < threshold:
        return False
    return laplace(count, 1, epsilon) >= threshold + margin(epsilon, delta)


def clip(value: float, bound: int) -> int:
    """A connection's contribution clipped to ``[0, bound]`` and rounded to Wh."""
    return int(min(max(round(value), 0), bound))
