"""Consumption and generation profiles of the grid twin (issue 3).

What the households, shops and offices of the twin consume and what their PV systems
produce, on the twin's 5-minute :class:`~meetpunt.twin.model.TimeAxis`, with the parts
kept apart for the truth. No NEDU/MFFBAS profile ships on PyPI and demandlib breaks on
pandas 3, so this is our own stochastic model, calibrated on public Dutch figures kept
as data in ``meetpunt/data/twin_calibration.toml``. One module per concern:

* ``calibration``: the rule file read and typed.
* ``clock``: local time of day, local days and day types (holidays count as Sunday).
* ``weather``: daily temperature and 5-minute clear-sky index at De Bilt; degree days.
* ``pv``: pvlib per orientation times the clear-sky index.
* ``base_load``: households, shops and offices without EV and heat pump.
* ``ev``: home charging sessions.
* ``heat_pumps``: degree-day heating with cycling plus a daily hot-water block.
* ``gas``: hourly m3 from degree days plus hot water.
* ``phases``: how devices spread over L1..L3, and the main fuse that caps a household.
* ``series``: the building blocks those share (lognormal factors, power blocks).
* ``simulate``: one run of all of them, each from its own child generator.
* ``annual``: annualised figures of a run, for the calibration note.

Everything is vectorised with numpy and every draw comes from the generator handed
in, so the same seed gives the same arrays.
"""

from meetpunt.twin.profiles.annual import annual_equivalents
from meetpunt.twin.profiles.base_load import HOUSEHOLD_TYPE_KEY, draw_annual_kwh
from meetpunt.twin.profiles.calibration import Calibration, load_calibration
from meetpunt.twin.profiles.ev import EvSession
from meetpunt.twin.profiles.gas import draw_gas_m3
from meetpunt.twin.profiles.simulate import PowerProfiles, simulate_profiles
from meetpunt.twin.profiles.weather import Weather

__all__ = [
    "HOUSEHOLD_TYPE_KEY",
    "Calibration",
    "EvSession",
    "PowerProfiles",
    "Weather",
    "annual_equivalents",
    "draw_annual_kwh",
    "draw_gas_m3",
    "load_calibration",
    "simulate_profiles",
]
