"""The twin's region: substations, LV feeders, streets, connections (REG-2..8 truth).

A region is a set of MV/LV substations (Dyn5 transformers). Each substation feeds a
few LV feeders; a feeder is a backbone cable along one street, and every backbone node
carries the service cables of the two houses opposite each other (odd and even house
numbers), so house numbers run in street order along the cable. Postcodes follow the
street: a new PC6 every 12-24 houses, PC4 per neighbourhood (substation), one PC3.
A few shops and offices sit on three-phase connections; some of them host secondary
allocation points (a charge point operator, a solar cooperative). What each
connection really has (phase, PV, EV, heat pump, meter) is the truth; what the
register is told may differ and is set by :mod:`meetpunt.twin.faults`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meetpunt.domain.capacity import ElectricityCapacity
from meetpunt.domain.ean import ean_from_serial
from meetpunt.twin.model import ConnectionKind, EvCharger, MeterKind, TwinConnection
from meetpunt.twin.profiles import draw_annual_kwh, draw_gas_m3

ELECTRICITY_PREFIX = "87168740"
GAS_PREFIX = "87168741"
SAP_PREFIX = "87168742"
STREETS = (
    "Dorpsstraat",
    "Kerkstraat",
    "Molenweg",
    "Schoolstraat",
    "Julianastraat",
    "Beatrixlaan",
    "Wilhelminastraat",
    "Stationsweg",
    "Eikenlaan",
    "Beukenlaan",
    "Lindelaan",
    "Nieuwstraat",
    "Tuinstraat",
    "Parallelweg",
    "Sportlaan",
    "Irenestraat",
    "Prins Bernhardstraat",
    "Oranjestraat",
    "Emmastraat",
    "Populierenlaan",
    "Berkenlaan",
    "Esdoornstraat",
    "Acacialaan",
    "Meidoornstraat",
    "Vlierstraat",
    "Hazelaarstraat",
    "Kastanjelaan",
    "Wilgenstraat",
    "Rozenstraat",
    "Tulpstraat",
)
PC_LETTERS = [
    a + b
    for a in "ABCDEFGHJKLMNPRTVWXZ"
    for b in "ABCDEFGHJKLMNPRSTVWXZ"
    if a + b not in ("SA", "SD", "SS")
]
MUNICIPALITY = "Meetdorp"


@dataclass(frozen=True)
class CableType:
    """Per-km sequence impedances of an LV cable (positive and zero sequence)."""

    name: str
    r1: float
    x1: float
    r0: float
    x0: float
    i_n: float


BACKBONE = CableType("4x150Al", 0.206, 0.080, 0.94, 0.36, 270.0)
SERVICE_1PH = CableType("2x16Cu", 1.15, 0.085, 4.6, 0.34, 80.0)
SERVICE_3PH = CableType("4x25Cu", 0.727, 0.085, 2.9, 0.34, 110.0)


@dataclass
class Segment:
    """A backbone cable piece between two nodes of a feeder."""

    from_node: int
    to_node: int
    length_km: float
    cable: CableType = BACKBONE


@dataclass
class Feeder:
    """An LV cable from a substation's busbar along one street."""

    id: str
    substation: str
    street: str
    nodes: list[int] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)


@dataclass
class Substation:
    """An MV/LV substation with one Dyn5 transformer and its busbar node."""

    id: str
    name: str
    pc4: str
    sn_va: float
    mv_node: int
    busbar_node: int
    feeders: list[str] = field(default_factory=list)


@dataclass
class SecondaryPoint:
    """A secondary allocation point behind a connection (REG-5) in the twin."""

    ean: str
    primary_index: int
    capacity: ElectricityCapacity
    purpose: str


@dataclass
class Region:
    """The whole simulated region: topology plus connections (the truth)."""

    substations: list[Substation]
    feeders: dict[str, Feeder]
    connections: list[TwinConnection]
    service_length_km: dict[int, float]
    secondary_points: list[SecondaryPoint]
    n_nodes: int

    def substations_feeders(self, substation: str) -> list[str]:
        """The feeders of ``substation``."""
        return next(s.feeders for s in self.substations if s.id == substation)

    def connections_on(self, feeder: str) -> list[TwinConnection]:
        """The connections really fed by ``feeder``, in street order."""
        return [self.connections[i] for i in self.feeders[feeder].connections]


def _household_capacity(rng: np.random.Generator) -> ElectricityCapacity:
    phases, amperes = [(1, 25), (1, 35), (1, 35), (1, 40), (3, 25), (3, 25), (3, 25)][
        int(rng.integers(0, 7))
    ]
    return ElectricityCapacity(phases, amperes)


def build_region(n_connections: int, rng: np.random.Generator) -> Region:  # noqa: PLR0915 - one walk down the streets reads best in one place
    """Lay out a region of about ``n_connections`` electricity connections.

    Feeders carry 16-60 connections; a substation feeds 3-6 feeders (about 200
    connections, 400 or 630 kVA). Node ids are unique in the region; the power flow
    builds one model per substation.
    """
    connections: list[TwinConnection] = []
    feeders: dict[str, Feeder] = {}
    substations: list[Substation] = []
    service_length: dict[int, float] = {}
    next_node = 0
    street_iter = 0
    pc4_base = 5600 + int(rng.integers(10, 80))
    pc6_index = 0

    def new_node() -> int:
        nonlocal next_node
        next_node += 1
        return next_node - 1

    while len(connections) < n_connections:
        sub_no = len(substations)
        remaining = n_connections - len(connections)
        sub_size = remaining if remaining < 260 else int(rng.integers(150, 240))
        sub = Substation(
            id=f"OS{sub_no + 1:03d}",
            name=f"Station {STREETS[sub_no % len(STREETS)].split()[0]} {sub_no + 1}",
            pc4=str(pc4_base + sub_no),
            sn_va=630e3 if sub_size > 180 else 400e3,
            mv_node=new_node(),
            busbar_node=new_node(),
        )
        substations.append(sub)
        placed = 0
        feeder_no = 0
        while placed < sub_size:
            left = sub_size - placed
            size = left if left < 24 else min(left, int(rng.integers(16, 61)))
            feeder_no += 1
            street = STREETS[street_iter % len(STREETS)]
            if street_iter >= len(STREETS):
                street = f"{street} {street_iter // len(STREETS) + 1}e"
            street_iter += 1
            feeder = Feeder(id=f"{sub.id}-K{feeder_no}", substation=sub.id, street=street)
            feeders[feeder.id] = feeder
            sub.feeders.append(feeder.id)
            previous = sub.busbar_node
            pc6_left = 0
            house = 0
            for pair in range((size + 1) // 2):
                node = new_node()
                length = (
                    float(rng.uniform(0.012, 0.030)) if pair else float(rng.uniform(0.05, 0.25))
                )
                feeder.segments.append(Segment(from_node=previous, to_node=node, length_km=length))
                feeder.nodes.append(node)
                previous = node
                for side in (1, 2):
                    if house >= size:
                        break
                    if pc6_left == 0:
                        pc6_index += 1
                        pc6_left = int(rng.integers(12, 25))
                    pc6_left -= 1
                    number = 2 * pair + side
                    conn = _make_connection(
                        len(connections),
                        sub,
                        feeder,
                        number,
                        f"{sub.pc4}{PC_LETTERS[pc6_index % len(PC_LETTERS)]}",
                        rng,
                    )
                    service_node = new_node()
                    conn.node = service_node
                    service_length[conn.index] = float(rng.uniform(0.008, 0.030))
                    conn.extra["backbone_node"] = str(node)
                    connections.append(conn)
                    feeder.connections.append(conn.index)
                    house += 1
            placed += size
    saps = _secondary_points(connections, rng)
    return Region(substations, feeders, connections, service_length, saps, next_node)


def _make_connection(
    index: int,
    sub: Substation,
    feeder: Feeder,
    number: int,
    postcode: str,
    rng: np.random.Generator,
) -> TwinConnection:
    roll = float(rng.random())
    if roll < 0.02:
        kind, capacity = (
            ConnectionKind.SHOP,
            ElectricityCapacity(3, [35, 50, 63][int(rng.integers(0, 3))]),
        )
    elif roll < 0.035:
        kind, capacity = (
            ConnectionKind.OFFICE,
            ElectricityCapacity(3, [50, 63, 80][int(rng.integers(0, 3))]),
        )
    else:
        kind, capacity = ConnectionKind.HOUSEHOLD, _household_capacity(rng)
    label, annual = draw_annual_kwh(kind, rng)
    meter_roll = float(rng.random())
    meter = (
        MeterKind.DSMR5
        if meter_roll < 0.86
        else MeterKind.DSMR4
        if meter_roll < 0.95
        else MeterKind.FERRARIS
    )
    phase = None if capacity.phases == 3 else int(rng.integers(0, 3))
    conn = TwinConnection(
        index=index,
        ean=ean_from_serial(ELECTRICITY_PREFIX, index + 1),
        kind=kind,
        capacity=capacity,
        phase=phase,
        substation=sub.id,
        feeder=feeder.id,
        node=-1,
        street=feeder.street,
        house_number=number,
        postcode=postcode,
        woz_object_id=f"{int(sub.pc4):04d}{index + 1:08d}",
        meter=meter,
        annual_kwh=annual,
    )
    conn.extra["household_type"] = label
    if kind is ConnectionKind.HOUSEHOLD:
        if rng.random() < 0.42:
            conn.pv_kwp = float(np.round(rng.uniform(1.6, 8.0), 2))
            conn.pv_tilt_deg = float(rng.choice([15.0, 30.0, 35.0, 45.0]))
            conn.pv_azimuth_deg = float(rng.choice([90.0, 135.0, 180.0, 180.0, 225.0, 270.0]))
        ev_roll = float(rng.random())
        if ev_roll < 0.14:
            if capacity.phases == 3 and rng.random() < 0.6:
                conn.ev = EvCharger.THREE_11
            elif capacity.amperes >= 35 and rng.random() < 0.4:
                conn.ev = EvCharger.SINGLE_7_4
            else:
                conn.ev = EvCharger.SINGLE_3_7
        conn.heat_pump = bool(rng.random() < 0.09)
        if not conn.heat_pump or rng.random() < 0.3:  # hybrid heat pumps keep gas
            conn.gas_ean = ean_from_serial(GAS_PREFIX, index + 1)
            conn.gas_annual_m3 = draw_gas_m3(kind, rng) * (0.4 if conn.heat_pump else 1.0)
        conn.opt_out = bool(meter.smart and rng.random() < 0.02)
    elif rng.random() < 0.6:
        conn.gas_ean = ean_from_serial(GAS_PREFIX, index + 1)
        conn.gas_annual_m3 = draw_gas_m3(kind, rng)
        if rng.random() < 0.3:
            conn.pv_kwp = float(np.round(rng.uniform(10.0, 40.0), 1))
            conn.pv_azimuth_deg = 180.0
    conn.registered_phase = conn.phase
    conn.registered_feeder = conn.feeder
    conn.registered_pv_kwp = conn.pv_kwp or None
    return conn


def _secondary_points(
    connections: list[TwinConnection], rng: np.random.Generator
) -> list[SecondaryPoint]:
    """A charge point operator and a solar cooperative on some business connections."""
    points: list[SecondaryPoint] = []
    business = [c for c in connections if c.kind is not ConnectionKind.HOUSEHOLD]
    for n, conn in enumerate(business):
        if conn.capacity.amperes != 35 and rng.random() < 0.5:
            continue
        purpose = (
            "public charge point (charge point operator)" if n % 2 == 0 else "solar cooperative"
        )
        capacity = (
            ElectricityCapacity(1, 40)
            if conn.capacity.amperes == 35
            else ElectricityCapacity(3, 25)
        )
        points.append(
            SecondaryPoint(
                ean=ean_from_serial(SAP_PREFIX, len(points) + 1),
                primary_index=conn.index,
                capacity=capacity,
                purpose=purpose,
            )
        )
    return points
