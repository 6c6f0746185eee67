"""Where a connection hangs in the LV grid, and UC1's street rule that corrects it.

The register's feeder is sometimes wrong (a GIS registration error). UC1, UC4 and UC9
therefore place a meter on the feeder whose home street is the meter's own street
(UC1/UC4 of the use-case list: "check the surrounding meters"); a meter placed elsewhere than its
registration says is a suspected GIS feeder error. The rule assumes one home street per
feeder, as in the twin and in most Dutch LV streets.

Where UC7 has measured a connection's cable and a person confirmed and applied the
correction (``uc07-apply``, a ``gis_correction`` row whose values the register still
holds), that registration IS the grid position: the street rule never overrides it and
is only the fallback for connections without such a result (issue 19;
``RegisterView.gis_confirmed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import ConnectionVersion, MeterType, PhysicalStatus


@dataclass(frozen=True)
class GridSpot:
    """Where a connection hangs in the grid: substation and feeder (the register's, or
    the one the street rule puts it on)."""

    substation: str
    feeder: str


@dataclass(frozen=True)
class Neighbour:
    """One electricity connection of the substation, from the register."""

    ean: str
    spot: GridSpot
    street: str
    smart: bool

    @classmethod
    def of(cls, version: ConnectionVersion) -> Neighbour:
        """The connection's registered spot, street and meter type."""
        a = version.attributes
        spot = GridSpot(a.grid.substation, a.grid.feeder)
        return cls(version.ean, spot, a.address.street, a.meter_type is MeterType.SMART)


def on_the_grid(version: ConnectionVersion) -> bool:
    """An electricity connection that hangs on a cable: in or out of service (not in
    construction, not demolished). The street rule judges over all of them."""
    return version.commodity is Commodity.ELECTRICITY and version.attributes.status in (
        PhysicalStatus.IN_SERVICE,
        PhysicalStatus.OUT_OF_SERVICE,
    )


def home_streets(meters: Iterable[Neighbour]) -> dict[str, str]:
    """Each registered feeder's home street (the street most of its connections are on);
    a street that is home to two feeders is nobody's home street."""
    streets: dict[str, Counter[str]] = {}
    for m in meters:
        streets.setdefault(m.spot.feeder, Counter())[m.street] += 1
    homes = {f: c.most_common(1)[0][0] for f, c in streets.items() if c}
    taken = Counter(homes.values())
    return {f: s for f, s in homes.items() if taken[s] == 1}


def probable_feeders(
    meters: Iterable[Neighbour], confirmed: Collection[str] = frozenset()
) -> dict[str, str]:
    """The feeder each meter of ONE substation most likely hangs on: its registered
    feeder when that is a confirmed UC7 correction (``confirmed`` EANs, issue 19), else
    the feeder whose home street is the meter's street, else its registered feeder."""
    listed = list(meters)
    by_street = {s: f for f, s in home_streets(listed).items()}
    return {
        m.ean: m.spot.feeder if m.ean in confirmed else by_street.get(m.street, m.spot.feeder)
        for m in listed
    }


def street_feeders(
    meters: Iterable[Neighbour], confirmed: Collection[str] = frozenset()
) -> dict[str, str]:
    """:func:`probable_feeders` over meters of any number of substations, each
    substation on its own (a street rule never moves a meter to another substation)."""
    by_substation: dict[str, list[Neighbour]] = {}
    for m in meters:
        by_substation.setdefault(m.spot.substation, []).append(m)
    out: dict[str, str] = {}
    for group in by_substation.values():
        out.update(probable_feeders(group, confirmed))
    return out
