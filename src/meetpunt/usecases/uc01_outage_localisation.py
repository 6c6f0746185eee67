"""UC1 Outage localisation: which part of the grid is dark, and whom to send.

UC1 of the use-case list: on a customer's outage report or a suspected outage (a DSMR 5 last gasp
is a report by itself), ask ONLY voltage presence (yes/no) at that moment, of the
reporting meter and the meters on the same cable (feeder) and substation; decide
between a single-connection fault (send a meter-cabinet mechanic) and a cable /
street / area fault (send a cable crew). The gate's :meth:`Grant.presence` is the only
thing UC1 learns from the meters: True = voltage, False = no voltage, None = the meter
cannot be asked (a traditional meter).

Feeders are the register's, corrected where the register contradicts itself: a feeder
is one street in the grid model, so a meter whose registered street is the street of
ANOTHER feeder of the substation (that feeder's "home street") is taken to hang on
that feeder, and reported as a suspected GIS feeder registration error (UC7 checks
it). Everything except :func:`localise`'s register and gate calls is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from meetpunt.domain.calendar import to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import ConnectionVersion, PhysicalStatus
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate, Grant
from meetpunt.privacy.model import VOLTAGE_PRESENCE, AccessRequest, Party, Period
from meetpunt.usecases.common import ask
from meetpunt.usecases.grid import GridSpot, Neighbour, probable_feeders
from meetpunt.usecases.planned_works import PlannedWork

PURPOSE = "UC1"
KIND = VOLTAGE_PRESENCE

REPORTER = "reporting meter"
SINGLE = "single_connection"
PART = "part_of_feeder"
WHOLE = "whole_feeder"
SUBSTATION = "substation"
PLANNED = "planned_work"
NONE_FOUND = "no_outage_found"
REVIEW = "review"
"""Undecided: the meters cannot tell (issue 16); a person looks, with the reason."""

MECHANIC = "meter-cabinet mechanic"
CABLE_CREW = "cable crew"
CREW = {
    SINGLE: MECHANIC,
    PART: CABLE_CREW,
    WHOLE: CABLE_CREW,
    SUBSTATION: CABLE_CREW,
    PLANNED: None,
    NONE_FOUND: None,
    REVIEW: None,
}
LAST_GASP = "last_gasp"
#: How far before and after a meter's onset (a last gasp) UC1 asks who was dark, to
#: tell the meters that went dark with the reporter from those dark before or after.
ONSET_MARGIN = timedelta(seconds=60)
#: How far a meter's clock may be off (issue 16: up to 5 minutes at the start and a few
#: seconds a day of drift until a time sync): its failure log's times may lie this far
#: from the truth, so UC1 does not let them flip presence within it (MTR-x clock rules).
CLOCK_TOLERANCE = timedelta(minutes=10)
#: UC1's window (one local day, :func:`window`) reaches this far past the report.
LOOK_ON = timedelta(hours=1)


class Uc01Error(MeetpuntError):
    """UC1 could not ask: the gate refused (``rules`` carries its rule IDs), or the
    reporting connection is not in the register."""


@dataclass(frozen=True)
class AskedMeter:
    """One meter UC1 asked, why, on which feeder, and its answer."""

    ean: str
    reason: str
    registered_feeder: str
    feeder: str
    """The feeder UC1 takes it to hang on (differs on a suspected GIS error)."""
    voltage: bool | None

    @property
    def answer(self) -> str:
        return {True: "voltage", False: "no voltage", None: "cannot be asked"}[self.voltage]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "reason": self.reason,
            "registered_feeder": self.registered_feeder,
            "feeder": self.feeder,
            "voltage": self.voltage,
            "answer": self.answer,
        }


@dataclass(frozen=True)
class FeederCount:
    """Answers on one feeder (as UC1 takes the feeders)."""

    feeder: str
    dark: int
    lit: int
    unknown: int

    @property
    def smart(self) -> int:
        return self.dark + self.lit

    def as_dict(self) -> dict[str, Any]:
        return {"feeder": self.feeder, "dark": self.dark, "lit": self.lit, "unknown": self.unknown}


@dataclass(frozen=True)
class Verdict:
    """The classification, the crew to send, and the evidence for it."""

    classification: str
    feeder: str
    evidence: tuple[str, ...]

    @property
    def crew(self) -> str | None:
        return CREW[self.classification]


@dataclass(frozen=True)
class Uc01Result:
    """What UC1 found for one report."""

    ean: str
    at: datetime
    trigger: str
    substation: str
    asked: tuple[AskedMeter, ...]
    feeders: tuple[FeederCount, ...]
    verdict: Verdict
    suspected_gis_errors: tuple[str, ...]
    audit_seq: int | None
    reads: int = 1
    """Reads audited under the grant: presence at the report, and at the reporter's
    onset its neighbours' last gasps and presence around it (issue 16)."""

    @property
    def classification(self) -> str:
        return self.verdict.classification

    @property
    def crew(self) -> str | None:
        return self.verdict.crew

    def as_dict(self) -> dict[str, Any]:
        return {
            "use_case": PURPOSE,
            "ean": self.ean,
            "at": self.at.isoformat(),
            "trigger": self.trigger,
            "substation": self.substation,
            "classification": self.classification,
            "crew": self.crew,
            "feeder": self.verdict.feeder,
            "evidence": list(self.verdict.evidence),
            "suspected_gis_errors": list(self.suspected_gis_errors),
            "dark_per_feeder": [f.as_dict() for f in self.feeders],
            "asked": [m.as_dict() for m in self.asked],
            "audit_seq": self.audit_seq,
            "reads": self.reads,
        }


def neighbours(versions: Iterable[ConnectionVersion], reporter: str) -> list[Neighbour]:
    """The reporting connection and every in-service electricity connection of its
    substation, in EAN order (the reporter first). Raises :class:`Uc01Error` when the
    reporter is not an electricity connection in the register."""
    rows = {
        v.ean: v
        for v in versions
        if v.commodity is Commodity.ELECTRICITY
        and (v.ean == reporter or v.attributes.status is PhysicalStatus.IN_SERVICE)
    }
    if reporter not in rows:
        raise Uc01Error(f"{reporter} is not an electricity connection in the register")

    own = Neighbour.of(rows[reporter])
    others = [
        Neighbour.of(v)
        for ean, v in sorted(rows.items())
        if ean != reporter
        and own.spot.substation
        and v.attributes.grid.substation == own.spot.substation
    ]
    return [own, *others]


def reasons(meters: Iterable[Neighbour], reporter: str) -> dict[str, str]:
    """Why each meter is asked: the reporter, its feeder, or its substation."""
    out: dict[str, str] = {}
    own: GridSpot | None = None
    listed = list(meters)
    for m in listed:
        if m.ean == reporter:
            own = m.spot
    for m in listed:
        if m.ean == reporter:
            out[m.ean] = REPORTER
        elif own is not None and m.spot.feeder == own.feeder:
            out[m.ean] = f"same feeder {own.feeder}"
        else:
            out[m.ean] = f"same substation {m.spot.substation}"
    return out


def count_per_feeder(
    feeders: Mapping[str, str], answers: Mapping[str, bool | None]
) -> tuple[FeederCount, ...]:
    """Dark, lit and unknown meters per feeder, in feeder order."""
    counts: dict[str, list[int]] = {}
    for ean, feeder in feeders.items():
        c = counts.setdefault(feeder, [0, 0, 0])
        c[{False: 0, True: 1, None: 2}[answers.get(ean)]] += 1
    return tuple(FeederCount(f, *c) for f, c in sorted(counts.items()))


def classify(
    reporter: str,
    feeders: Mapping[str, str],
    answers: Mapping[str, bool | None],
    planned: frozenset[str] = frozenset(),
) -> Verdict:
    """UC1's decision from the voltage answers (True lit, False dark, None unknown) and
    each meter's feeder (``feeders``: EAN -> feeder, every asked meter). ``planned``
    are the feeders out for planned work at that moment (the operator's planning).
    :func:`localise` passes the answers of the meters at the reporter's onset (see
    :func:`went_dark_with`), so a second outage that began before or after the
    reporter's is not merged into its verdict (issue 16).

    * the reporter's own feeder is out for planned work and the reporter is not lit:
      ``planned_work`` (nobody to send; the customer hears when the work ends);
    * the reporter's own meter has voltage: ``no_outage_found`` -- not a grid outage at
      this connection, its own installation (a tripped breaker); dark meters elsewhere
      are named in the evidence (issue 16);
    * nobody dark and the reporter cannot be asked: ``review`` -- a fault at its
      connection and its own breaker look the same to the meters (issue 16); so with no
      smart meter answering at all (no data at that moment);
    * the reporter dark, no other meter on its feeder dark but some lit:
      ``single_connection`` (meter-cabinet mechanic); none lit (it is the only smart
      meter on its feeder that answered): ``review`` -- a fault at the connection and
      one on the feeder look the same;
    * dark meters on every feeder of the substation that has smart meters and is not
      out for planned work: ``substation``;
    * every smart meter of the reporter's feeder dark: ``whole_feeder``; some:
      ``part_of_feeder`` (cable crew).
    """
    own = feeders[reporter]
    mine = answers.get(reporter)
    counts = {c.feeder: c for c in count_per_feeder(feeders, answers)}
    dark = sorted(e for e, v in answers.items() if v is False and feeders.get(e) not in planned)
    others_here = [e for e in dark if e != reporter and feeders.get(e) == own]
    c = counts[own]
    said = {True: "has voltage", False: "has no voltage", None: "cannot be asked"}[mine]
    evidence = [f"reporting meter {reporter} {said}"]
    if planned:
        evidence.append(f"out for planned work: {', '.join(sorted(planned))}")
    if own in planned and mine is not True:
        return Verdict(PLANNED, own, tuple(evidence))
    elsewhere = [f for f in counts.values() if f.feeder not in (own, *planned) and f.dark]
    if elsewhere:
        shown = ", ".join(f"{f.feeder} {f.dark}/{f.smart}" for f in elsewhere)
        evidence.append(f"dark elsewhere on the substation: {shown}")
    if mine is True:
        if dark:
            evidence.append(f"{len(dark)} other meter(s) dark: not at this connection")
        evidence.append("not a grid outage here: the customer's own installation")
        return Verdict(NONE_FOUND, own, tuple(evidence))
    if not dark and not any(f.smart for f in counts.values()):
        evidence.append(
            "review: no smart meter answered at that moment (no data then); the meters cannot tell"
        )
        return Verdict(REVIEW, own, tuple(evidence))
    if not dark:
        evidence.append(f"all {sum(f.smart for f in counts.values())} asked smart meters lit")
        evidence.append(
            "review: the reporter cannot be asked; a fault at its connection and its own "
            "installation look the same to the meters"
        )
        return Verdict(REVIEW, own, tuple(evidence))
    if not others_here:
        evidence.append(f"no other meter on feeder {own} dark ({c.lit} lit)")
        if c.lit == 0:
            evidence.append(
                f"review: no other smart meter on feeder {own} answered; a fault at the "
                "connection and one on the feeder look the same"
            )
            return Verdict(REVIEW, own, tuple(evidence))
        return Verdict(SINGLE, own, tuple(evidence))
    evidence.append(f"feeder {own}: {c.dark} of {c.smart} smart meters dark")
    with_smart = [f for f in counts.values() if f.smart and f.feeder not in planned]
    if len(with_smart) > 1 and all(f.dark for f in with_smart):
        evidence.append(f"dark meters on all {len(with_smart)} feeders")
        return Verdict(SUBSTATION, own, tuple(evidence))
    return Verdict(WHOLE if c.dark == c.smart else PART, own, tuple(evidence))


def latest_gasps(sent: Iterable[tuple[str, datetime]], at: datetime) -> dict[str, datetime]:
    """Each meter's last gasp (DSMR 5: sent the moment it lost voltage) at or before
    ``at``: when it went dark, if it said so."""
    out: dict[str, datetime] = {}
    for ean, moment in sent:
        if moment <= at and (ean not in out or moment > out[ean]):
            out[ean] = moment
    return out


def went_dark_with(
    before: Mapping[str, bool | None],
    after: Mapping[str, bool | None],
    settled: Mapping[str, bool | None] | None = None,
) -> dict[str, bool | None]:
    """The answers of the outage that began between two moments around an onset:
    dark (False) for a meter dark after but not before it (it went dark then), lit
    (True) for one lit after it, unknown (None) for one already dark before it (an
    earlier outage holds it: whether this one would have darkened it too, the meters
    cannot tell) or that cannot be asked (issue 16: overlapping and nested outages).

    ``settled``: the answers a clock's tolerance later (:data:`CLOCK_TOLERANCE`). A
    meter lit just after the onset counts as lit only if it is still lit then; dark or
    unknown then, it is unknown: a drifting clock shifts its log by minutes, and a
    later outage cannot be told from it (issue 16: rely on the meters that agree)."""
    out: dict[str, bool | None] = {}
    for ean, now in after.items():
        if now is False:
            out[ean] = None if before.get(ean) is False else False
        elif now is True and settled is not None and settled.get(ean) is not True:
            out[ean] = None
        else:
            out[ean] = now
    return out


Presence = Callable[[datetime], dict[str, bool | None]]
"""Voltage presence of the asked meters at a moment (:meth:`Grant.presence`)."""


@dataclass(frozen=True)
class Onset:
    """When the reporter went dark, and the answers of the outage that began then."""

    at: datetime
    answers: dict[str, bool | None]
    how: str
    """Which last gasp gave the moment: the reporter's own or its neighbours'."""


def find_onset(
    presence: Presence,
    reporter: str,
    feeders: Mapping[str, str],
    now: Mapping[str, bool | None],
    gasps: Mapping[str, datetime],
    earliest: datetime,
) -> Onset | None:
    """The outage that cut the reporter off (issue 16): its moment is the latest of the
    last gasps of the reporter and of the meters dark now before which the reporter
    was not dark and after which it was; where the reporter cannot tell (a traditional
    meter, or a meter that went dark within the quarter-hour without a gasp), meters on
    its own feeder must have gone dark then. A last gasp carries the head-end's time,
    a failure log the meter's own clock: when no gasp fits to the minute, one that fits
    within :data:`CLOCK_TOLERANCE` of the reporter's log is taken (a drifting clock).
    The meters' answers are those of :func:`went_dark_with` with the clock's tolerance.
    None when no gasp fits (it was dark before every one of them) or none lies after
    ``earliest`` (the window's start)."""
    candidates = sorted(
        {g for e, g in gasps.items() if e == reporter or now.get(e) is False}, reverse=True
    )

    def onset_at(moment: datetime, slack: timedelta) -> Onset | None:
        """The onset at ``moment`` if the reporter went dark then: not dark ``slack``
        before it and dark (or unknown, with its feeder going dark) after it, within
        :data:`ONSET_MARGIN` or, with a clock's tolerance as ``slack``, within that."""
        if moment - slack < earliest:
            return None
        first = presence(moment - slack)
        if first.get(reporter) is False:
            return None
        before = first if slack == ONSET_MARGIN else presence(moment - ONSET_MARGIN)
        after = presence(moment + ONSET_MARGIN)
        settled = presence(moment + CLOCK_TOLERANCE)
        mine = after.get(reporter)
        answers = went_dark_with(before, after, settled)
        for e, g in gasps.items():
            # lit just after the onset, dark later with a gasp of its own (the head-end's
            # time) after it: a later outage darkened it, not a late clock: lit then
            if answers.get(e) is None and after.get(e) is True and moment + ONSET_MARGIN < g:
                answers[e] = True
        if mine is True and slack != ONSET_MARGIN:
            # its log may start minutes late (a clock behind the head-end's) if others
            # went dark then and stayed dark (the majority); alone, a short interruption
            # (not logged under 3 minutes) and a later outage look the same
            lasting = any(
                v is False and settled.get(e) is False for e, v in answers.items() if e != reporter
            )
            mine = settled.get(reporter) if lasting else None
        if mine is True or (mine is None and after.get(reporter) is True):
            return None
        if mine is None:
            # the reporter cannot tell: its feeder must have gone dark then
            own = feeders[reporter]
            if not any(v is False and feeders.get(e) == own for e, v in answers.items()):
                return None
            answers[reporter] = now.get(reporter)
        else:
            answers[reporter] = False
        how = "its own last gasp" if gasps.get(reporter) == moment else "its neighbours' gasps"
        if slack != ONSET_MARGIN:
            how += f", within its clock's tolerance of {CLOCK_TOLERANCE.seconds // 60} min"
        return Onset(moment, answers, how)

    for slack in (ONSET_MARGIN, CLOCK_TOLERANCE):
        for moment in candidates:
            onset = onset_at(moment, slack)
            if onset is not None:
                return onset
    return None


def since_onset(
    feeders: Mapping[str, str],
    onset: Mapping[str, bool | None],
    now: Mapping[str, bool | None],
) -> str | None:
    """Evidence line: meters dark now that were not dark at the reporter's onset (a
    later, overlapping outage), per feeder."""
    later: dict[str, int] = {}
    for ean, v in now.items():
        if v is False and onset.get(ean) is not False:
            later[feeders[ean]] = later.get(feeders[ean], 0) + 1
    if not later:
        return None
    shown = ", ".join(f"{f} {n}" for f, n in sorted(later.items()))
    return f"dark now but not with the reporter (another outage): {shown}"


def window(at: datetime) -> Period:
    """The period UC1 asks for: one local day (UC1.window) ending 1 h after ``at``, so
    about 23 h back to find when the reporter went dark, not cut at local midnight (an
    outage that crosses it, issue 16); across a DST change the day has 23 or 25 h."""
    end = at + LOOK_ON
    start = (to_local(end) - timedelta(days=1)).astimezone(UTC)
    return Period(start, end)


def localise(
    gate: Gate,
    party: Party,
    ean: str,
    at: datetime,
    trigger: str,
    planned: Sequence[PlannedWork] = (),
) -> Uc01Result:
    """UC1: ask voltage presence at ``at`` of the reporter and every meter on its
    feeder and substation (register on the local date of ``at``), once through the
    gate, and classify the outage, leaving out feeders that the ``planned`` works have
    out at ``at``. When other meters are dark too, UC1 reads their last gasps and
    classifies on the meters that went dark together with the reporter
    (:func:`find_onset`), so overlapping outages stay apart (issue 16). Raises
    :class:`Uc01Error` when refused."""
    day = to_local(at).date()
    meters = neighbours(gate.register_view.connection_versions(day), ean)
    why = reasons(meters, ean)
    period = window(at)
    request = AccessRequest(
        party,
        PURPOSE,
        tuple(m.ean for m in meters),
        frozenset({KIND, LAST_GASP}),
        period,
        at,
        justification="UC1 outage localisation: voltage presence (yes/no) and last gasps only",
        trigger=trigger,
    )
    answer = _Counted(ask(gate, request, Uc01Error))
    now = answer.presence(at)
    # a confirmed UC7 correction is the grid position; the street rule only fills in
    feeders = probable_feeders(meters, gate.register_view.gis_confirmed(day))
    suspected = tuple(
        f"{m.ean} ({m.street}) registered on {m.spot.feeder}, street of {feeders[m.ean]}"
        for m in meters
        if feeders[m.ean] != m.spot.feeder
    )
    asked = tuple(
        AskedMeter(m.ean, why[m.ean], m.spot.feeder, feeders[m.ean], now.get(m.ean)) for m in meters
    )
    substation = meters[0].spot.substation
    out_for_work = frozenset(
        f for f in set(feeders.values()) if any(w.covers_at(substation, f, at) for w in planned)
    )

    def gasps() -> dict[str, datetime]:
        ids = {cid: e for e, cid in answer.connection_ids.items()}
        rows = answer.read(LAST_GASP).select(["connection", "sent_at"]).to_pylist()
        return latest_gasps(((ids[int(r["connection"])], r["sent_at"]) for r in rows), at)

    verdict = decide(ean, feeders, now, answer.presence, gasps, period.start, out_for_work, at=at)
    if feeders[ean] != meters[0].spot.feeder:
        verdict = Verdict(
            verdict.classification,
            verdict.feeder,
            (
                *verdict.evidence,
                f"reporter registered on {meters[0].spot.feeder}, its street is on {feeders[ean]}",
            ),
        )
    return Uc01Result(
        ean,
        at,
        trigger,
        substation,
        asked,
        count_per_feeder(feeders, now),
        verdict,
        suspected,
        answer.grant.decision.audit_seq,
        answer.reads,
    )


class _Counted:
    """A grant whose reads UC1 counts (the demo checks the audit log against them)."""

    def __init__(self, grant: Grant) -> None:
        self.grant = grant
        self.reads = 0
        self.connection_ids = grant.connection_ids

    def presence(self, at: datetime) -> dict[str, bool | None]:
        self.reads += 1
        return self.grant.presence(at)

    def read(self, kind: str) -> pa.Table:
        self.reads += 1
        return self.grant.read(kind)


def decide(
    reporter: str,
    feeders: Mapping[str, str],
    now: Mapping[str, bool | None],
    presence: Presence,
    gasps: Callable[[], Mapping[str, datetime]],
    earliest: datetime,
    planned: frozenset[str] = frozenset(),
    at: datetime | None = None,
) -> Verdict:
    """UC1's verdict on a report (pure given ``presence`` and ``gasps``): on the
    answers at the report (``now``) when the reporter has voltage or nobody else is
    dark; else on the outage that began when the reporter went dark
    (:func:`find_onset`, reading ``gasps`` only then), so outages that overlap it are
    not merged into its verdict (issue 16). A reporter dark before every neighbour's
    gasp goes to review: which outage cut it off, the meters cannot tell. A meter (the
    reporter too) lit at the report (``at``) whose log has it dark within
    :data:`CLOCK_TOLERANCE` after it is taken as unknown, not lit: its clock may be
    behind (issue 16)."""
    if at is not None and any(v is True for v in now.values()):
        # lit at the report but dark by its log within a clock's tolerance after it:
        # its clock may be behind, so unknown, not lit (the reporter too)
        later = presence(at + CLOCK_TOLERANCE)
        now = {e: None if v is True and later.get(e) is False else v for e, v in now.items()}
    others = [
        e for e, v in now.items() if v is False and e != reporter and feeders[e] not in planned
    ]
    if now.get(reporter) is True or not others:
        return classify(reporter, feeders, now, planned)
    sent = gasps()
    onset = find_onset(presence, reporter, feeders, now, sent, earliest)
    if onset is None:
        verdict = classify(reporter, feeders, now, planned)
        if now.get(reporter) is False and any(e in sent for e in others):
            if verdict.classification in (PLANNED, NONE_FOUND):
                return verdict
            reason = (
                "review: the reporter was dark before the meters near it sent their last "
                "gasps; which outage cut it off the meters cannot tell"
            )
            return Verdict(REVIEW, verdict.feeder, (*verdict.evidence, reason))
        note = "no last gasp near the reporter to tell overlapping outages apart"
        return Verdict(verdict.classification, verdict.feeder, (*verdict.evidence, note))
    verdict = classify(reporter, feeders, onset.answers, planned)
    notes = [
        f"reporter dark since {onset.at.isoformat()} ({onset.how}); classified on the "
        "meters that went dark with it"
    ]
    afterwards = since_onset(feeders, onset.answers, now)
    if afterwards:
        notes.append(afterwards)
    return Verdict(verdict.classification, verdict.feeder, (*verdict.evidence, *notes))


def localise_last_gasp(
    gate: Gate,
    party: Party,
    ean: str,
    sent_at: datetime,
    planned: Sequence[PlannedWork] = (),
) -> Uc01Result:
    """UC1 on a DSMR 5 last-gasp message: the message is the report by itself."""
    trigger = f"last gasp of {ean} at {sent_at.isoformat()}"
    return localise(gate, party, ean, sent_at, trigger, planned)
