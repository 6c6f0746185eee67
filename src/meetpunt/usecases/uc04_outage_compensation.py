"""UC4 Outage compensation (compensatievergoeding, MKT-8) from the power failure logs.

UC4 in the use-case list: after an unplanned interruption longer than 4 hours the customer is owed
a fixed amount, paid unasked; "uw netbeheerder heeft het storingsregister uit de slimme
meter nodig" and "controleert ook de omliggende slimme meters". UC4 asks the privacy
gate ONCE for ``power_failure_log`` of every in-service electricity connection with a
smart meter (UC9's population), groups the entries into outages with UC9's grouping,
and decides per connection with :class:`meetpunt.domain.compensation.CompensationScheme`.

Rules (each decision carries its source and reason):

* planned work is the operator's own knowledge (:class:`PlannedWork`); an outage that
  overlaps a planned work on its substation (and feeder, when given) pays nothing;
* the fault's grid level is MV when every feeder of a substation with at least two
  feeders went dark at once (a substation/MV outage), LV otherwise;
* a smart meter with a log entry is paid on its own logged duration;
* a connection of a faulted feeder without a log entry (traditional meter, meter
  without a log) is paid with the outage's duration only when its neighbours on the
  cable place it in the dark part: the whole feeder went dark, a dark meter on its own
  backbone node (the house opposite), dark neighbours on both sides, or it lies beyond
  the last dark meter, away from the lit ones (a radial LV cable is dark from the fault
  to its end; house numbers run along the cable). Otherwise it is listed for review;
* a meter whose street is the home street of ANOTHER feeder (UC1's street rule) is a
  suspected GIS feeder error: never paid because of its registration, always listed
  for review (a smart meter with its own log is still paid on that log, and a meter
  without a log when its registered and its street's feeder both went dark entirely,
  so that either registration puts it in the dark);
* a registered out-of-service connection on a faulted feeder is not asked and not
  paid, but listed for review (it may still be in use); an owed connection without a
  contract holder in the register is listed for review instead of paid;
* an interruption its neighbours contradict (MTR-5.contradicted_interruption) is
  listed for review, not paid, and left out of the outage before the neighbours are
  placed: a logged interval of which more than ``uncorroborated_max_h`` (rule file
  ``vee_rules``) is not shared by any other meter of its feeder in that outage, while
  meters on that feeder were asked and logged no interruption then (a DSMR meter logs
  every long failure, so they had voltage). A corrupt but plausible log row (115 days)
  then neither pays its own customer nor darkens the houses around it.

Everything except :func:`compensate`'s register and gate calls is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from meetpunt import rulebook
from meetpunt.domain.calendar import to_local
from meetpunt.domain.capacity import Capacity, CapacityClasses
from meetpunt.domain.compensation import (
    CapacityConnection,
    Compensation,
    CompensationScheme,
    GridLevel,
)
from meetpunt.domain.connection import ConnectionVersion, MeterType, PhysicalStatus
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period
from meetpunt.usecases import grid
from meetpunt.usecases.grid import GridSpot, Neighbour, on_the_grid
from meetpunt.usecases.planned_works import PlannedWork
from meetpunt.usecases.uc09_interruption_registration import (
    CLOCK_ALONE,
    CLOCK_CORRECTED,
    CONTRADICTED,
    PLANNED_SLACK_S,
    UNCORROBORATED_MAX_S,
    Outage,
    covered_s,
    duration_error_s,
    planned_work_of,
    population,
    read_outages,
)

PURPOSE = "UC4"
KIND = "power_failure_log"
SOURCE_LOG = "own meter power failure log (1-0:99.97.0)"
SOURCE_NEIGHBOURS = "outage duration, placed in the dark part by its neighbours"
LEGAL_TERM = "zes maanden"
CORRECTED_BY = "to the times its outage's other meters agree on (its clock drifted)"
ALREADY_DARK = "dark already from an overlapping outage that began earlier (paid there)"
LOST_ENTRY = (
    "log entry missing: smart meter without a log entry for this outage, but its "
    "neighbours on the cable place it in the dark: meter offline (not read yet), "
    "replaced during the outage (the new meter starts with an empty log) or log "
    "overflow (the DSMR log keeps only the last 10); not paid, check the meter (issue 16)"
)
CLOCK_UNSETTLED = (
    "clock unconfirmed: its log says {logged} s, but no other meter of the outage logged "
    "the same times to check its clock against, and a drift of up to {error} s in the "
    "duration moves it across a compensation threshold (EUR {low} to EUR {high}); not "
    "paid on a guess, check the meter's clock (issue 16)"
)


class Uc04Error(MeetpuntError):
    """The gate refused UC4 (``rules`` carries its rule IDs), or the planned-work file
    is malformed."""


@dataclass(frozen=True)
class Meter:
    """One electricity connection as the register has it (what UC4 needs)."""

    ean: str
    substation: str
    feeder: str
    street: str
    house_number: int
    address: str
    capacity: Capacity
    smart: bool
    in_service: bool

    @property
    def node(self) -> int:
        """The backbone node: houses n and n+1 (odd, even) sit opposite each other."""
        return (self.house_number + 1) // 2


def meters_of(versions: Iterable[ConnectionVersion]) -> dict[str, Meter]:
    """Every electricity connection of the register that is in service or out of
    service (not demolished, not in construction), in EAN order."""
    out: dict[str, Meter] = {}
    for v in sorted(versions, key=lambda v: v.ean):
        if not on_the_grid(v):
            continue
        a = v.attributes
        ad = a.address
        number = f"{ad.house_number}{ad.house_number_suffix}"
        out[v.ean] = Meter(
            ean=v.ean,
            substation=a.grid.substation,
            feeder=a.grid.feeder,
            street=ad.street,
            house_number=ad.house_number,
            address=f"{ad.street} {number}, {ad.postcode} {ad.city}".strip(),
            capacity=a.capacity,
            smart=a.meter_type is MeterType.SMART,
            in_service=a.status is PhysicalStatus.IN_SERVICE,
        )
    return out


def street_feeders(
    meters: Mapping[str, Meter], confirmed: Collection[str] = frozenset()
) -> dict[str, str]:
    """UC1's street rule (:mod:`meetpunt.usecases.grid`): the feeder each meter most
    likely hangs on; a ``confirmed`` UC7 correction is kept as registered (issue 19)."""
    return grid.street_feeders(
        (
            Neighbour(m.ean, GridSpot(m.substation, m.feeder), m.street, m.smart)
            for m in meters.values()
        ),
        confirmed,
    )


@dataclass(frozen=True)
class OutageDecision:
    """One outage as UC4 sees it: where, when, the fault's grid level, planned or not."""

    id: str
    substation: str
    feeders: tuple[str, ...]
    start: datetime
    end: datetime
    grid_level: GridLevel
    planned: PlannedWork | None
    logged: int

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "substation": self.substation,
            "feeders": list(self.feeders),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration_s": int(self.duration.total_seconds()),
            "grid_level": str(self.grid_level),
            "planned": None if self.planned is None else self.planned.as_dict(),
            "meters_logged": self.logged,
        }


@dataclass(frozen=True)
class Owed:
    """A connection UC4 decided is owed an amount for one outage (before the payee)."""

    ean: str
    outage_id: str
    start: datetime
    end: datetime
    compensation: Compensation
    level: GridLevel = GridLevel.LV
    """The grid level of the fault it was decided at (to merge overlapping lines)."""
    clock_corrected_s: int = 0
    """Seconds taken off its meter's logged times to match the outage's other meters
    (a drifted clock, issue 16)."""


@dataclass(frozen=True)
class Payment:
    """One line of the payment list."""

    ean: str
    customer: str
    address: str
    outage_id: str
    start: datetime
    end: datetime
    compensation: Compensation
    clock_corrected_s: int = 0
    """Seconds its meter's clock was off and taken off the logged times (issue 16)."""

    @property
    def amount(self) -> Decimal:
        return self.compensation.amount

    @property
    def duration(self) -> timedelta:
        return self.compensation.duration

    def as_dict(self) -> dict[str, Any]:
        c = self.compensation
        return {
            "ean": self.ean,
            "customer": self.customer,
            "address": self.address,
            "outage_id": self.outage_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration_s": int(c.duration.total_seconds()),
            "class": c.class_id,
            "amount": str(c.amount),
            "currency": c.currency,
            "duration_source": c.duration_source,
            "clock_corrected_s": self.clock_corrected_s,
            "reasons": [r.as_dict() for r in c.reasons],
        }


@dataclass(frozen=True)
class Review:
    """One line of the review list: a connection a person must decide on, and why."""

    ean: str
    outage_id: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"ean": self.ean, "outage_id": self.outage_id, "reason": self.reason}


@dataclass(frozen=True)
class Letter:
    """The letter to one paid customer, in Dutch."""

    ean: str
    outage_id: str
    customer: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "outage_id": self.outage_id,
            "customer": self.customer,
            "text": self.text,
        }


@dataclass(frozen=True)
class Uc04Result:
    """What UC4 decided for one period."""

    period: Period
    trigger: str
    outages: tuple[OutageDecision, ...]
    payments: tuple[Payment, ...]
    reviews: tuple[Review, ...]
    letters: tuple[Letter, ...]
    entries_read: int
    audit_seq: int | None
    scheme_version: str
    maps: tuple[OutageMap, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "use_case": PURPOSE,
            "period": {
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "trigger": self.trigger,
            "scheme_version": self.scheme_version,
            "entries_read": self.entries_read,
            "audit_seq": self.audit_seq,
            "outages": [o.as_dict() for o in self.outages],
            "payments": [p.as_dict() for p in self.payments],
            "total": str(self.total),
            "reviews": [r.as_dict() for r in self.reviews],
            "letters": [letter.as_dict() for letter in self.letters],
            "maps": [m.as_dict() for m in self.maps],
        }


def grid_level(
    outage: Outage, feeders: Sequence[str], substation_feeders: Sequence[str]
) -> GridLevel:
    """MV when the outage darkened every feeder (with smart meters) of a substation that
    has at least two, all at once (UC9's grouping joins feeders only on a simultaneous
    start); LV otherwise. ``feeders`` are the outage's feeders by the street rule."""
    everything = set(substation_feeders)
    if len(everything) >= 2 and everything <= set(feeders):
        return GridLevel.MV
    return GridLevel.LV


INTERRUPTED = "1"
NOT_INTERRUPTED = "N"
UNKNOWN = "?"


@dataclass(frozen=True)
class MapMeter:
    """One meter on an outage map (UC4's picture in the use-case list): its place on the cable and
    whether it was interrupted ('1'), not ('N') or cannot be placed ('?')."""

    ean: str
    feeder: str
    """The registered feeder."""
    street_feeder: str
    """The feeder UC1's street rule puts it on (differs for a suspected GIS error)."""
    house_number: int
    smart: bool
    state: str
    why: str

    @property
    def suspect(self) -> bool:
        return self.street_feeder != self.feeder

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "feeder": self.feeder,
            "street_feeder": self.street_feeder,
            "house_number": self.house_number,
            "smart": self.smart,
            "state": self.state,
            "why": self.why,
        }


@dataclass(frozen=True)
class OutageMap:
    """Every in-service meter of an outage's substation and what UC4 made of it."""

    outage_id: str
    substation: str
    faulted: tuple[str, ...]
    meters: tuple[MapMeter, ...]

    def count(self, state: str) -> int:
        return sum(1 for m in self.meters if m.state == state)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outage_id": self.outage_id,
            "substation": self.substation,
            "faulted": list(self.faulted),
            "meters": [m.as_dict() for m in self.meters],
        }


@dataclass
class _Assessment:
    outages: list[OutageDecision] = field(default_factory=list)
    owed: list[Owed] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    maps: list[OutageMap] = field(default_factory=list)


def outage_map(
    outage: Outage,
    faulted: Sequence[str],
    meters: Mapping[str, Meter],
    asked: set[str],
    street: Mapping[str, str],
    dark_nodes: Mapping[str, set[int]],
    lit_nodes: Mapping[str, set[int]],
    doubted: Iterable[str] = (),
    already: Iterable[str] = (),
) -> OutageMap:
    """The picture of one outage (UC4's outage map), and the one placement rule payment
    uses: a smart meter asked is '1' when it logged the outage and 'N' when not; a
    meter without a log (traditional, not asked) is placed by its neighbours on the
    cable (:func:`_placed_dark`), '?' when they do not place it. A meter whose log its
    neighbours contradict (``doubted``) is '?'. A meter ``already`` dark from another
    outage when this one began (nested, issue 16) is 'N': not cut off by this one, its
    interruption is the other's. A smart
    meter asked without an entry that its neighbours place in the dark is '?': its
    entry may be lost (the DSMR log keeps the last 10) or not read yet (issue 16)."""
    logged = {c.ean for c in outage.customers}
    doubt = set(doubted)
    before = set(already)

    def whole_dark(feeder: str) -> bool:
        dark = dark_nodes.get(feeder, set())
        return len(dark) > 1 and not lit_nodes.get(feeder, set()) - dark

    shown: list[MapMeter] = []
    for m in meters.values():
        if m.substation != outage.substation or not (m.in_service or m.ean in logged):
            continue
        on = street.get(m.ean, m.feeder)
        if m.ean in doubt:
            state, why = UNKNOWN, "its log is contradicted by its neighbours (review)"
        elif m.ean in logged:
            state, why = INTERRUPTED, "logged the outage"
        elif m.ean in before:
            state, why = NOT_INTERRUPTED, ALREADY_DARK
        elif m.ean in asked and on == m.feeder and _lost(m, dark_nodes, lit_nodes):
            state, why = UNKNOWN, LOST_ENTRY
        elif m.ean in asked:
            state, why = NOT_INTERRUPTED, "asked, no log entry"
        elif m.feeder not in faulted and on not in faulted:
            state, why = NOT_INTERRUPTED, "no log; its feeder is not faulted"
        elif on != m.feeder and whole_dark(m.feeder) and whole_dark(on):
            state, why = (
                INTERRUPTED,
                "no log; its registered and its street's feeder both went dark",
            )
        elif on != m.feeder:
            state, why = UNKNOWN, "no log; suspected GIS feeder error on a faulted feeder"
        else:
            dark = dark_nodes.get(m.feeder, set())
            lit = lit_nodes.get(m.feeder, set()) - dark
            placed, why = _placed_dark(m.node, dark, lit, whole=whole_dark(m.feeder))
            state = INTERRUPTED if placed else (NOT_INTERRUPTED if why == "lit" else UNKNOWN)
        shown.append(MapMeter(m.ean, m.feeder, on, m.house_number, m.smart, state, why))
    shown.sort(key=lambda x: (x.feeder, x.house_number, x.ean))
    return OutageMap(outage.id, outage.substation, tuple(faulted), tuple(shown))


def _lost(m: Meter, dark_nodes: Mapping[str, set[int]], lit_nodes: Mapping[str, set[int]]) -> bool:
    """Whether the neighbours of a smart meter that logged nothing place it in the dark
    (its own node left out: it counts itself lit): its entry is then likely lost."""
    dark = dark_nodes.get(m.feeder, set())
    if len(dark) < 2:
        return False
    if m.node in dark:  # the house opposite on its cable node logged it
        return True
    lit = lit_nodes.get(m.feeder, set()) - dark - {m.node}
    below = [n for n in dark | lit if n < m.node]
    above = [n for n in dark | lit if n > m.node]
    # dark on both sides only: at a cable's end its own voltage is the only evidence
    return bool(below and above) and max(below) in dark and min(above) in dark


def _placed_dark(node: int, dark: set[int], lit: set[int], whole: bool) -> tuple[bool, str]:
    """Whether the neighbours on the cable place a meter at ``node`` in the dark part."""
    if whole:
        return True, "the whole feeder went dark"
    if len(dark) < 2:
        return False, "only one meter of the feeder logged it (a single-connection fault?)"
    if node in dark:
        return True, "the meter opposite on the same cable node logged the outage"
    below = [n for n in dark | lit if n < node]
    above = [n for n in dark | lit if n > node]
    low = max(below) if below else None
    high = min(above) if above else None
    if low in dark and high in dark:
        return True, "dark neighbours on both sides"
    if low in lit and high in lit:
        return False, "lit"
    if dark and lit and max(lit) < min(dark) and high is None and low in dark:
        return True, "beyond the last dark meter, away from the lit part of the cable"
    if dark and lit and min(lit) > max(dark) and low is None and high in dark:
        return True, "beyond the last dark meter, away from the lit part of the cable"
    return False, (
        "its neighbours do not place it: "
        f"nearest meter below is {_state(low, dark)}, above is {_state(high, dark)}"
    )


def _state(node: int | None, dark: set[int]) -> str:
    if node is None:
        return "none"
    return "dark" if node in dark else "lit"


def contradicted(
    outage: Outage,
    meters: Mapping[str, Meter],
    asked: set[str],
    uncorroborated_max_s: float = UNCORROBORATED_MAX_S,
) -> dict[str, str]:
    """The customers of ``outage`` whose logged interruption its neighbours contradict
    (MTR-5.contradicted_interruption), with the reason.

    A customer's interval is contradicted when more than ``uncorroborated_max_s`` of it
    is covered by no other customer of the same feeder in this outage, and at least one
    other in-service meter of that feeder was asked: its log shows no interruption then,
    so it had voltage. Customers without asked neighbours are not contradicted (nobody
    saw otherwise).
    """
    out: dict[str, str] = {}
    for c in outage.customers:
        m = meters.get(c.ean)
        if m is None:
            continue
        witnesses = [
            n
            for n in meters.values()
            if n.ean != c.ean
            and n.ean in asked
            and n.in_service
            and n.substation == m.substation
            and n.feeder == m.feeder
        ]
        if not witnesses:
            continue
        shared = sorted(
            (max(o.start, c.start), min(o.end, c.end))
            for o in outage.customers
            if o.ean != c.ean and o.ean in meters and meters[o.ean].feeder == m.feeder
        )
        alone = (c.end - c.start).total_seconds() - covered_s(shared)
        if alone > uncorroborated_max_s:
            out[c.ean] = (
                f"{CONTRADICTED}: logged {c.duration_s} s from {c.start.isoformat()} to "
                f"{c.end.isoformat()}, but for {int(alone)} s of it none of the "
                f"{len(witnesses)} other asked meter(s) on feeder {m.feeder} logged an "
                "interruption (they had voltage); not paid, and not used to place its "
                "neighbours: check the meter's log"
            )
    return out


def assess(  # noqa: PLR0915 - one pass over the outages, rules in order
    outages: Sequence[Outage],
    meters: Mapping[str, Meter],
    smart: Iterable[str],
    planned: Sequence[PlannedWork],
    scheme: CompensationScheme,
    classes: CapacityClasses,
    operator: str | None = None,
    uncorroborated_max_s: float = UNCORROBORATED_MAX_S,
    confirmed: Collection[str] = frozenset(),
) -> _Assessment:
    """UC4's decisions over the grouped outages (pure; see the module docstring).

    ``meters`` is every in/out-of-service electricity connection of the register,
    ``smart`` the EANs whose logs were asked; ``uncorroborated_max_s`` is the
    MTR-5.contradicted_interruption threshold; ``confirmed`` the EANs whose grid
    position is a confirmed UC7 correction (the street rule leaves them where they are).
    """
    asked = set(smart)
    street = street_feeders(meters, confirmed)
    suspects = {e for e, f in street.items() if f != meters[e].feeder}
    feeders_of: dict[str, set[str]] = {}
    for m in meters.values():
        if m.in_service and m.ean in asked:
            feeders_of.setdefault(m.substation, set()).add(street[m.ean])
    out = _Assessment()
    doubts = {o.id: contradicted(o, meters, asked, uncorroborated_max_s) for o in outages}
    credible = [
        replace(o, customers=tuple(c for c in o.customers if c.ean not in doubts[o.id]))
        for o in outages
    ]
    for told in outages:
        doubted = doubts[told.id]
        out.reviews += [Review(e, told.id, why) for e, why in sorted(doubted.items())]
        kept = [c for c in told.customers if c.ean not in doubted]
        o = told
        if doubted and kept:  # the outage as the credible logs show it
            start, end = min(c.start for c in kept), max(c.end for c in kept)
            o = replace(told, customers=tuple(kept), start=start, end=end)
        logged = {c.ean: c for c in o.customers}
        faulted = sorted({street.get(e, meters[e].feeder if e in meters else "") for e in logged})
        already = dark_before(o, credible) - set(logged)
        dark_feeders = {street.get(e, meters[e].feeder) for e in already if e in meters}
        level = grid_level(o, [*faulted, *dark_feeders], sorted(feeders_of.get(o.substation, ())))
        here = {e for e in asked if e in meters and meters[e].substation == o.substation}
        if level is GridLevel.MV and not here <= set(logged) | already:
            level = GridLevel.LV  # a meter of the substation kept its voltage
        work = planned_work_of(o.substation, faulted, o.start, planned, o.end)
        decision = OutageDecision(
            o.id, o.substation, tuple(faulted), o.start, o.end, level, work, len(logged)
        )
        out.outages.append(decision)
        if not kept:  # every log of it contradicted: nobody is placed in the dark
            continue
        dark_nodes: dict[str, set[int]] = {}
        lit_nodes: dict[str, set[int]] = {}
        for m in meters.values():
            if m.substation != o.substation or m.ean in suspects or not m.in_service:
                continue
            if m.ean in already:  # dark from the other outage: no evidence either way here
                continue
            if m.ean in logged:
                dark_nodes.setdefault(m.feeder, set()).add(m.node)
            elif m.ean in asked:  # a doubted log counts as lit: it darkens nobody
                lit_nodes.setdefault(m.feeder, set()).add(m.node)
        drawn = outage_map(
            o, faulted, meters, asked, street, dark_nodes, lit_nodes, doubted, already
        )
        out.maps.append(drawn)
        on_map = {x.ean: x for x in drawn.meters}
        if work is not None:
            out.reviews += _overran(o, work, meters, scheme, classes, level, operator)
            continue
        reviewed: set[str] = set()

        def review(ean: str, reason: str, *, _o: Outage = o, _seen: set[str] = reviewed) -> None:
            if ean not in _seen:
                _seen.add(ean)
                out.reviews.append(Review(ean, _o.id, reason))

        def owed(
            ean: str, seconds: float, source: str, *, _level: GridLevel = level
        ) -> Compensation:
            m = meters[ean]
            return scheme.compensate(
                CapacityConnection.classify(m.capacity, classes),
                _level,
                timedelta(seconds=seconds),
                operator=operator,
                duration_source=source,
            )

        for c in o.customers:  # each log entry its own interruption (issue 16)
            ean = c.ean
            if ean not in meters:
                review(ean, "logged the outage but is not in the register")
                continue
            source = SOURCE_LOG
            if c.clock == CLOCK_CORRECTED:
                source = f"{SOURCE_LOG}, clock corrected by {c.clock_corrected_s} s {CORRECTED_BY}"
            comp = owed(ean, c.duration_s, source)
            if c.clock == CLOCK_ALONE and (unsettled := _clock_unsettled(c.duration_s, owed, ean)):
                gis = f"{_gis(meters[ean], street)}; " if ean in suspects else ""
                review(ean, f"{gis}{unsettled}")
                continue
            if comp.paid:
                out.owed.append(Owed(ean, o.id, c.start, c.end, comp, level, c.clock_corrected_s))
            if ean in suspects:
                m = meters[ean]
                paid = f"; paid EUR {comp.amount} on its own log" if comp.paid else ""
                review(ean, f"{_gis(m, street)}{paid}")
        for m in meters.values():
            if m.substation != o.substation or m.ean in logged or m.ean in doubted:
                continue
            if m.ean in already:  # its interruption began with the other outage: paid there
                continue
            if m.feeder not in faulted and street.get(m.ean) not in faulted:
                continue
            could = owed(m.ean, o.duration_s, SOURCE_NEIGHBOURS)
            if m.ean in suspects:
                gis = _gis(m, street)
                shown = on_map.get(m.ean)
                if shown is None or shown.state != INTERRUPTED:
                    review(m.ean, f"{gis}; not paid on its registration, no log of its own")
                    continue
                # dark whichever registration is right: paid, and the GIS error still listed
                paid = f", paid EUR {could.amount}" if could.paid else ""
                review(m.ean, f"{gis}; both feeders went dark{paid}")
            if not could.paid:
                continue
            if not m.in_service:
                review(
                    m.ean,
                    f"registered out of service on faulted feeder {m.feeder}: not asked; "
                    f"if it is in use it may be owed EUR {could.amount}",
                )
                continue
            placed = on_map[m.ean]  # the map places it as the payment needs (one rule)
            if placed.state == INTERRUPTED:
                out.owed.append(Owed(m.ean, o.id, o.start, o.end, could, level))
            elif placed.state == UNKNOWN and placed.why == LOST_ENTRY:
                review(m.ean, f"{placed.why}; EUR {could.amount} if it was dark")
            elif placed.state == UNKNOWN:
                review(m.ean, f"meter without a log on faulted feeder {m.feeder}: {placed.why}")
            # 'N': lit by its neighbours, or a smart meter asked without a log entry (no
            # long failure logged: it had voltage)
    out.owed = once_per_interruption(out.owed, meters, scheme, classes, operator)
    return out


def _clock_unsettled(
    duration_s: int, owed: Callable[[str, float, str], Compensation], ean: str
) -> str | None:
    """The review reason when a meter's own duration, which no other meter confirms,
    lies so near a threshold (or a block's end) of the scheme that a drifting clock
    (:func:`duration_error_s`) could move the amount (issue 16); None when it cannot."""
    error = duration_error_s(duration_s)
    low = owed(ean, max(0, duration_s - error), SOURCE_LOG).amount
    high = owed(ean, duration_s + error, SOURCE_LOG).amount
    if low == high:
        return None
    return CLOCK_UNSETTLED.format(logged=duration_s, error=error, low=low, high=high)


def _overran(
    o: Outage,
    work: PlannedWork,
    meters: Mapping[str, Meter],
    scheme: CompensationScheme,
    classes: CapacityClasses,
    level: GridLevel,
    operator: str | None,
) -> list[Review]:
    """Review lines for the logged interruptions of planned outage ``o`` that ran more
    than :data:`PLANNED_SLACK_S` past the work's end (issue 16): a fault may have
    followed the work on the same cable, so the meters cannot tell whether it is
    planned (nothing owed) or not; not paid on a guess."""
    slack = timedelta(seconds=PLANNED_SLACK_S)
    out: list[Review] = []
    for c in o.customers:
        if c.end <= work.end + slack or c.ean not in meters:
            continue
        m = meters[c.ean]
        could = scheme.compensate(
            CapacityConnection.classify(m.capacity, classes),
            level,
            timedelta(seconds=c.duration_s),
            operator=operator,
            duration_source=SOURCE_LOG,
        )
        if could.paid:
            over = int((c.end - work.end).total_seconds() // 60)
            out.append(
                Review(
                    c.ean,
                    o.id,
                    f"planned work until {work.end.isoformat()} but its log runs {over} min "
                    f"longer: a fault after the work? EUR {could.amount} if unplanned",
                )
            )
    return out


def dark_before(outage: Outage, outages: Sequence[Outage]) -> set[str]:
    """The meters of ``outage``'s substation already dark when it began: their entry
    in another (earlier) outage runs over its start (a fault nested in a longer one,
    issue 16). Their interruption is the earlier outage's, logged and paid there."""
    return {
        c.ean
        for other in outages
        if other.substation == outage.substation and other.id != outage.id
        for c in other.customers
        if c.start <= outage.start < c.end
    }


def once_per_interruption(
    owed: Sequence[Owed],
    meters: Mapping[str, Meter],
    scheme: CompensationScheme,
    classes: CapacityClasses,
    operator: str | None = None,
) -> list[Owed]:
    """``owed`` with one line per interruption of each connection (issue 16): a meter
    without a log that its neighbours placed in the dark in two overlapping outages
    had ONE interruption, from the first's start to the last's end, paid once at the
    first outage's grid level (the scheme is per interruption, never twice for one).
    Lines that do not overlap stay apart: two interruptions are paid as two."""
    by_ean: dict[str, list[Owed]] = {}
    for item in owed:
        by_ean.setdefault(item.ean, []).append(item)
    out: list[Owed] = []
    for ean, items in by_ean.items():
        items.sort(key=lambda x: (x.start, x.end))
        group = [items[0]]
        for item in items[1:]:
            if item.start < max(g.end for g in group):
                group.append(item)
                continue
            out.append(_merged(group, meters[ean], scheme, classes, operator))
            group = [item]
        out.append(_merged(group, meters[ean], scheme, classes, operator))
    return out


def _merged(
    group: Sequence[Owed],
    meter: Meter,
    scheme: CompensationScheme,
    classes: CapacityClasses,
    operator: str | None,
) -> Owed:
    first = group[0]
    if len(group) == 1:
        return first
    end = max(g.end for g in group)
    comp = scheme.compensate(
        CapacityConnection.classify(meter.capacity, classes),
        first.level,
        end - first.start,
        operator=operator,
        duration_source=first.compensation.duration_source,
    )
    return Owed(
        first.ean, first.outage_id, first.start, end, comp, first.level, first.clock_corrected_s
    )


def _gis(m: Meter, street: Mapping[str, str]) -> str:
    """The review reason for a suspected GIS feeder error (UC1's street rule)."""
    return (
        f"suspected GIS feeder error: registered on {m.feeder}, its street "
        f"({m.street}) is on {street[m.ean]}"
    )


def _duration_nl(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours} uur en {rest} minuten"


def _euro_nl(amount: Decimal) -> str:
    whole, _, cents = f"{amount:.2f}".partition(".")
    return f"€ {whole},{cents}"


def letter(payment: Payment, operator: str) -> Letter:
    """The Dutch letter to a paid customer: amount, date and duration, payment follows."""
    start, end = to_local(payment.start), to_local(payment.end)
    text = "\n".join(
        (
            f"Geachte {payment.customer},",
            "",
            f"Op {start:%d-%m-%Y} om {start:%H:%M} uur viel de stroom uit op uw aansluiting "
            f"(EAN {payment.ean}, {payment.address}). De stroom was terug op "
            f"{end:%d-%m-%Y} om {end:%H:%M} uur. De onderbreking duurde "
            f"{_duration_nl(payment.duration)}.",
            "",
            "Bij een onverwachte stroomonderbreking die langer duurt dan de wettelijke "
            "grens, heeft u recht op een compensatievergoeding. Voor uw aansluiting is dat "
            f"{_euro_nl(payment.amount)}.",
            "",
            "U hoeft hiervoor niets te doen. Wij betalen het bedrag automatisch aan u, "
            f"binnen de wettelijke termijn van {LEGAL_TERM}.",
            "",
            "Met vriendelijke groet,",
            operator,
        )
    )
    return Letter(payment.ean, payment.outage_id, payment.customer, text + "\n")


def compensate(
    gate: Gate,
    party: Party,
    period: Period,
    at: datetime,
    trigger: str,
    planned: Sequence[PlannedWork],
    operator: str | None = None,
) -> Uc04Result:
    """UC4: ask the gate once for the power failure logs of the in-service smart meters
    over ``period`` (register on the period's first local day), group them into outages,
    leave out the ``planned`` works and decide who is owed what (MKT-8).

    ``operator`` is the grid operator's name for operator-specific rules (Stedin pays
    nothing up to 1x6 A) and signs the letters. Raises :class:`Uc04Error` when refused.
    """
    scheme = rulebook.compensation_scheme()
    classes = rulebook.capacity_classes()
    limit = rulebook.vee_rules().uncorroborated_max_h * 3600
    day = to_local(period.start).date()
    versions = gate.register_view.connection_versions(day)
    spots = population(versions)
    meters = meters_of(versions)
    if not spots:
        return Uc04Result(period, trigger, (), (), (), (), 0, None, scheme.version)
    read = read_outages(
        gate,
        AccessRequest(
            party,
            PURPOSE,
            tuple(spots),
            frozenset({KIND}),
            period,
            at,
            justification="UC4 outage compensation (MKT-8): power failure logs",
            trigger=trigger,
        ),
        spots,
        Uc04Error,
    )
    confirmed = gate.register_view.gis_confirmed(day)
    found = assess(
        read.outages, meters, spots, planned, scheme, classes, operator, limit, confirmed
    )
    payments: list[Payment] = []
    reviews = list(found.reviews)
    holders = gate.register_view.contract_holders(
        [(item.ean, to_local(item.start).date()) for item in found.owed]
    )
    for item in found.owed:
        on: date = to_local(item.start).date()
        contract = holders[(item.ean, on)]
        if contract is None:
            reviews.append(
                Review(
                    item.ean,
                    item.outage_id,
                    f"owed EUR {item.compensation.amount} but no contract holder in the "
                    f"register on {on.isoformat()}: find out whom to pay",
                )
            )
            continue
        payments.append(
            Payment(
                item.ean,
                contract.contract_holder,
                meters[item.ean].address,
                item.outage_id,
                item.start,
                item.end,
                item.compensation,
                item.clock_corrected_s,
            )
        )
    payments.sort(key=lambda p: (p.start, p.ean))
    reviews.sort(key=lambda r: (r.outage_id, r.ean))
    signer = operator or party.name or "Uw netbeheerder"
    letters = tuple(letter(p, signer) for p in payments)
    return Uc04Result(
        period,
        trigger,
        tuple(found.outages),
        tuple(payments),
        tuple(reviews),
        letters,
        read.entries,
        read.audit_seq,
        scheme.version,
        tuple(found.maps),
    )
