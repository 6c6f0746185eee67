"""The sun's elevation, for telling whether PV can be feeding in (UC3).

NOAA's low-precision solar position (the "General Solar Position Calculations" of the
NOAA Global Monitoring Division): within about a degree, which puts sunrise within a few
minutes -- enough to say whether an inverter was awake. Pure numpy over UTC instants.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_DAY_US = 86_400_000_000


def sun_elevation_deg(
    utc_micros: npt.NDArray[np.int64], latitude: float, longitude: float
) -> npt.NDArray[np.float64]:
    """The sun's elevation in degrees above the horizon at each instant (UTC
    microseconds since 1970) seen from ``latitude``/``longitude`` (degrees, east
    positive); negative at night."""
    micros = np.asarray(utc_micros, dtype=np.int64)
    days = micros // _DAY_US
    hours = (micros - days * _DAY_US) / 3_600_000_000
    year_start = days.astype("datetime64[D]").astype("datetime64[Y]").astype("datetime64[D]")
    day_of_year = (days - year_start.astype(np.int64)).astype(np.float64)  # 0 on 1 January
    g = 2 * np.pi / 365 * (day_of_year + (hours - 12) / 24)
    eqtime_min = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    declination = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    solar_minutes = hours * 60 + eqtime_min + 4 * longitude
    hour_angle = np.radians(solar_minutes / 4 - 180)
    phi = np.radians(latitude)
    cos_zenith = np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.cos(
        hour_angle
    )
    return np.asarray(90 - np.degrees(np.arccos(np.clip(cos_zenith, -1, 1))), dtype=np.float64)
