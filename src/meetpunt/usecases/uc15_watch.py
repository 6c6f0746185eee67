"""UC15 Watching contractless and out-of-service connections every 5 days.

Use-case list UC15, three groups: contractless with the admin switch on ("eens in de 5
dagen uitgelezen om te controleren of er verbruik is"), out of service with the admin
switch on (the same), and out of service with the admin switch off (only "of de meter
bereikbaar is ('pingen')"). Reading stops "zodra er een nieuw energiecontract is
afgesloten", or when the connection is back in use or removed.

This module holds what a check is: who belongs to which group on a day
(:func:`population`, from the register through ``Gate.register_view``), when the next
check is due (:func:`next_check_day`: every ``every_days`` local days, never less than
that many days of UTC time after the last, so the gate's frequency rule holds across a
clock change), one check through the gate (:func:`check`: a one-day read of the daily
readings, or a ping, purpose UC15) and the pure verdict on consumption
(:func:`consumption`). The schedule that persists the watches in the register and runs
what is due is :mod:`meetpunt.app.schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from meetpunt import rulebook
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import AdminSwitch, ConnectionVersion, MeterType, PhysicalStatus
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate, Grant
from meetpunt.privacy.model import REACHABILITY, AccessRequest, Party, Period

PURPOSE = "UC15"
KIND = "daily_readings"
CONTRACTLESS = "contractless"
OUT_OF_SERVICE_ON = "out_of_service_on"
OUT_OF_SERVICE_OFF = "out_of_service_off"
GROUPS = (CONTRACTLESS, OUT_OF_SERVICE_ON, OUT_OF_SERVICE_OFF)
READ_GROUPS = frozenset({CONTRACTLESS, OUT_OF_SERVICE_ON})
"""Groups whose consumption is read; the third may only be pinged."""
OUTCOMES = (
    "baseline",
    "consuming",
    "no_consumption",
    "no_reading",
    "reachable",
    "unreachable",
    "refused",
    "stopped",
)


class Uc15Error(MeetpuntError):
    """UC15 could not run (a bad rule file, a refused read where one must not be)."""


@dataclass(frozen=True)
class Uc15Rules:
    """The ``[uc15]`` section of the ``uc10_uc15`` rule file."""

    every_days: int = 5
    consumption_min_kwh: float = 1.0
    check_hour_local: int = 6

    @classmethod
    def load(cls) -> Uc15Rules:
        body = rulebook.load_rules("uc10_uc15").body.get("uc15", {})
        try:
            rules = cls(
                int(body["every_days"]),
                float(body["consumption_min_kwh"]),
                int(body["check_hour_local"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Uc15Error(
                f"uc10_uc15.toml [uc15]: missing or bad value ({exc}); fix the rule file"
            ) from exc
        if rules.every_days < 1 or not 0 <= rules.check_hour_local < 24:
            raise Uc15Error(
                "uc10_uc15.toml [uc15]: need every_days >= 1 and 0 <= check_hour_local < 24"
            )
        return rules


def group_of_state(
    status: PhysicalStatus, admin: AdminSwitch, meter: MeterType, contracted: bool
) -> str | None:
    """The UC15 group of an electricity connection on one day from its register state,
    or None when UC15 has no business with it (supplied, in construction, removed, no
    smart meter). In service and contractless with the switch off is pinged only."""
    if meter is not MeterType.SMART:
        return None
    on = admin is AdminSwitch.ON
    if status is PhysicalStatus.OUT_OF_SERVICE:
        return OUT_OF_SERVICE_ON if on else OUT_OF_SERVICE_OFF
    if status is PhysicalStatus.IN_SERVICE and not contracted:
        return CONTRACTLESS if on else OUT_OF_SERVICE_OFF
    return None


def group_of(version: ConnectionVersion | None, contracted: bool) -> str | None:
    """:func:`group_of_state` of a connection version (None: not electricity or absent)."""
    if version is None or version.commodity is not Commodity.ELECTRICITY:
        return None
    a = version.attributes
    return group_of_state(a.status, a.admin_switch, a.meter_type, contracted)


def stop_reason_of_state(status: PhysicalStatus, meter: MeterType, contracted: bool) -> str:
    """Why a watch ends (UC15: contract, back in service, removed)."""
    if status is PhysicalStatus.DEMOLISHED:
        return "removed"
    if meter is not MeterType.SMART:
        return "no_smart_meter"
    if contracted:
        return "contract_started"
    return "back_in_service"


def stop_reason(version: ConnectionVersion | None, contracted: bool) -> str:
    """:func:`stop_reason_of_state` of a connection version (None: removed)."""
    if version is None:
        return "removed"
    a = version.attributes
    return stop_reason_of_state(a.status, a.meter_type, contracted)


def population(gate: Gate, day: date) -> tuple[dict[str, str], dict[str, str]]:
    """``(groups, stops)`` on ``day``: each watched EAN's group, and for every other
    electricity EAN of the register why UC15 leaves it alone (for stopping watches).
    Two queries (the register's states and contracts of the day)."""
    view = gate.register_view
    contracted = view.contracted_on(day)
    groups: dict[str, str] = {}
    stops: dict[str, str] = {}
    for ean, (status, admin, meter, _) in view.states_on(day).items():
        state = PhysicalStatus(status), AdminSwitch(admin), MeterType(meter)
        found = group_of_state(*state, ean in contracted)
        if found is None:
            stops[ean] = stop_reason_of_state(state[0], state[2], ean in contracted)
        else:
            groups[ean] = found
    return groups, stops


def check_moment(day: date, rules: Uc15Rules) -> datetime:
    """When the check of local ``day`` runs: its midnight reading is in by then."""
    return local_midnight_utc(day) + timedelta(hours=rules.check_hour_local)


def next_check_day(day: date, rules: Uc15Rules) -> date:
    """The first local day ``every_days`` or more after ``day`` whose midnight lies at
    least ``every_days`` x 24 h after ``day``'s (a spring clock change makes five local
    days 119 hours: the gate's frequency rule counts hours)."""
    nxt = day + timedelta(days=rules.every_days)
    while local_midnight_utc(nxt) - local_midnight_utc(day) < timedelta(days=rules.every_days):
        nxt += timedelta(days=1)
    return nxt


def request_for(party: Party, ean: str, group: str, day: date, at: datetime) -> AccessRequest:
    """The one-day UC15 request of a check of ``ean`` on local ``day``."""
    kinds = frozenset({KIND}) if group in READ_GROUPS else frozenset({REACHABILITY})
    return AccessRequest(
        party,
        PURPOSE,
        (ean,),
        kinds,
        Period(local_midnight_utc(day), local_midnight_utc(day + timedelta(days=1))),
        at,
        justification=f"UC15 {group.replace('_', ' ')}: check every 5 days",
    )


@dataclass(frozen=True)
class Check:
    """What one check found: an outcome, the import register (Wh) when read."""

    outcome: str
    import_wh: int | None = None
    consumed_wh: int | None = None
    audit_seq: int | None = None
    rules: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "import_wh": self.import_wh,
            "consumed_wh": self.consumed_wh,
            "audit_seq": self.audit_seq,
            "rules": list(self.rules),
        }


def import_register_wh(table: pa.Table, day: date) -> int | None:
    """The import register (T1 + T2, Wh) at ``day``'s midnight, or the newest reading in
    the table when that one is missing; None when the table holds none."""
    rows = sorted(table.to_pylist(), key=lambda r: r["at"])
    if not rows:
        return None
    midnight = local_midnight_utc(day)
    exact = [r for r in rows if r["at"] == midnight]
    row = exact[0] if exact else rows[-1]
    return int((row.get("import_t1_wh") or 0) + (row.get("import_t2_wh") or 0))


def consumption(previous_wh: int | None, now_wh: int | None, rules: Uc15Rules) -> Check:
    """The verdict of a consumption check (pure): ``baseline`` on the first reading,
    ``consuming`` when the import grew by at least ``consumption_min_kwh`` since the
    previous check, else ``no_consumption``; ``no_reading`` without a reading."""
    if now_wh is None:
        return Check("no_reading")
    if previous_wh is None:
        return Check("baseline", now_wh)
    used = now_wh - previous_wh
    if used >= rules.consumption_min_kwh * 1000:
        return Check("consuming", now_wh, used)
    return Check("no_consumption", now_wh, used)


def check(
    gate: Gate,
    party: Party,
    ean: str,
    group: str,
    day: date,
    previous_wh: int | None,
    rules: Uc15Rules,
    at: datetime | None = None,
) -> Check:
    """One UC15 check of ``ean`` on local ``day``: a gate request for that day (daily
    readings for the read groups, reachability for the switched-off one). A refusal is
    an outcome (``refused`` with the gate's rules), not an error: the schedule goes on."""
    request = request_for(party, ean, group, day, at or check_moment(day, rules))
    answer = gate.request(request)
    if not isinstance(answer, Grant):
        return Check("refused", previous_wh, rules=answer.rules)
    seq = answer.decision.audit_seq
    if group not in READ_GROUPS:
        reachable = answer.reachable().get(ean, False)
        return Check("reachable" if reachable else "unreachable", previous_wh, audit_seq=seq)
    table = answer.read(KIND)
    found = consumption(previous_wh, import_register_wh(table, day), rules)
    if found.outcome == "no_reading":
        return Check("no_reading", previous_wh, audit_seq=seq)
    return Check(found.outcome, found.import_wh, found.consumed_wh, seq)
