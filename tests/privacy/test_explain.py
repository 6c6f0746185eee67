"""The customer's view of the audit log (PRV-7): every record as one plain sentence,
in Dutch or English, from one table of templates and words.

``PINNED`` holds the sentences as they were before both languages came from one table;
they must not change by accident. The table must give every sentence and word in both
languages, so a new event cannot be explained in one language only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from string import Formatter
from typing import Any

import pytest

from meetpunt.privacy import audit, explain
from meetpunt.privacy.audit import GENESIS, AuditEntry, AuditRecord

EAN = "871694840008583575"
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # 10:00 on 3 March in Amsterdam
LATE = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # 00:30 on 1 April in Amsterdam (CEST)
# local midnights: 20 Feb .. 2 Mar 2026 (10 days), 25 Mar .. 1 Apr 2026 (7 days, DST)
FEB20, MAR2 = datetime(2026, 2, 19, 23, tzinfo=UTC), datetime(2026, 3, 1, 23, tzinfo=UTC)
MAR25, APR1 = datetime(2026, 3, 24, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)
TITLES = {
    "nl": {
        "UC1": "Storingslokalisatie",
        "UC3": "Seizoensanalyse van de spanningskwaliteit",
        "UC14": "",  # an empty title: the id is shown
        "p1": "P1-poort uitlezen",
        "supplier_insight": "Inzicht in uw verbruik",
    },
    "en": {
        "UC1": "Outage location",
        "UC3": "Seasonal voltage quality",
        "UC14": "",
        "p1": "P1 port reading",
        "supplier_insight": "Insight into your use",
    },
}
GRID = {"role": "grid_operator", "justification": "seasonal voltage check"}


def entry(**changes: Any) -> AuditEntry:
    """A granted UC3 decision of the grid operator over ten local days, changed."""
    base = AuditEntry(
        event="decision",
        party="dso",
        purpose="UC3",
        outcome="granted",
        connections=(EAN,),
        kinds=("voltages_10min",),
        period_start=FEB20,
        period_end=MAR2,
        detail=GRID,
    )
    return replace(base, **changes)


def consent(outcome: str, **changes: Any) -> AuditEntry:
    """A consent step of an app for two kinds, as the consent register writes it."""
    fields: dict[str, Any] = {
        "event": "consent",
        "party": "app-1",
        "purpose": "energy_app",
        "outcome": outcome,
        "kinds": ("daily_readings", "quarter_hours"),
        "period_start": MAR25,
        "period_end": APR1 + timedelta(days=365),
        "detail": {"role": "app", "consent": 1, "given_by": "J. Jansen"},
    }
    extra = changes.pop("detail", {})
    fields.update(changes)
    fields["detail"] = {**fields["detail"], **extra}
    return entry(**fields)


def refused(*rules: str, **changes: Any) -> AuditEntry:
    return entry(outcome="refused", rules=rules, **changes)


CASES: dict[str, tuple[datetime, AuditEntry]] = {
    # decisions granted, per party
    "granted/grid_operator": (T0, entry()),
    "granted/supplier": (T0, entry(party="8712345000004", detail={"role": "supplier"})),
    "granted/supplier_named": (
        T0,
        entry(party="8712345000004", detail={"role": "supplier", "party_name": "Groen BV"}),
    ),
    "granted/app": (T0, entry(party="app-1", detail={"role": "app"})),
    "granted/app_named": (T0, entry(party="app-1", detail={"role": "app", "name": "Zonnig"})),
    "granted/customer": (T0, entry(party="J. Jansen", detail={"role": "customer"})),
    "granted/researcher": (T0, entry(party="r-7", detail={"role": "researcher"})),
    "granted/researcher_named": (
        T0,
        entry(party="r-7", detail={"role": "researcher", "party_name": "TU Delft"}),
    ),
    "granted/unknown_role": (T0, entry(detail={})),
    "granted/odd_role": (T0, entry(detail={"role": "auditor", "party_name": "X"})),
    "granted/grid_operator_named": (T0, entry(detail={**GRID, "party_name": "Stedin"})),
    # the amount and the data kinds
    "granted/dst_week_quarter_hours": (
        LATE,
        entry(kinds=("quarter_hours",), period_start=MAR25, period_end=APR1),
    ),
    "granted/one_day_two_kinds": (
        T0,
        entry(
            purpose="UC1",
            kinds=("last_gasp", "voltage_presence"),
            period_start=MAR25,
            period_end=MAR25 + timedelta(days=1),
        ),
    ),
    "granted/three_kinds_unknown_kind": (
        T0,
        entry(purpose="p1", kinds=("p1_gas", "p1_readings", "smart_thing_x")),
    ),
    "granted/no_kinds_no_period": (
        T0,
        entry(kinds=(), period_start=None, period_end=None, purpose="UC14"),
    ),
    "granted/end_before_start": (T0, entry(period_start=MAR2, period_end=FEB20)),
    "granted/one_hour": (T0, entry(period_start=T0, period_end=T0 + timedelta(hours=1))),
    "granted/six_hours": (T0, entry(period_start=T0, period_end=T0 + timedelta(hours=6))),
    "granted/one_minute": (T0, entry(period_start=T0, period_end=T0 + timedelta(seconds=60))),
    "granted/ninety_seconds": (
        T0,
        entry(period_start=T0, period_end=T0 + timedelta(seconds=90)),
    ),
    "granted/one_day_not_midnight": (
        T0,
        entry(period_start=T0, period_end=T0 + timedelta(days=1)),
    ),
    "granted/three_days_not_midnight": (
        T0,
        entry(period_start=T0, period_end=T0 + timedelta(days=2, hours=14)),
    ),
    "granted/25_hours": (T0, entry(period_start=T0, period_end=T0 + timedelta(hours=25))),
    # reads
    "read/grid_operator": (
        T0,
        entry(event="read", outcome="read", detail={**GRID, "kind": "voltages_10min"}),
    ),
    "read/one_kind_of_two": (
        T0,
        entry(
            event="read",
            outcome="read",
            kinds=("last_gasp", "voltage_presence"),
            detail={**GRID, "kind": "last_gasp", "rows": 12},
        ),
    ),
    "read/customer": (
        T0,
        entry(event="read", outcome="read", party="J. Jansen", detail={"role": "customer"}),
    ),
    "read/app_named_no_kind": (
        T0,
        entry(event="read", outcome="read", party="app-1", detail={"role": "app", "name": "Z"}),
    ),
    # refusals, of a decision and of a read
    "refused/opt_out_supplier": (
        LATE,
        refused(
            "PRV-3.opt_out",
            party="8712345000004",
            purpose="supplier_insight",
            kinds=("quarter_hours",),
            period_start=MAR25,
            period_end=APR1,
            detail={"role": "supplier"},
        ),
    ),
    "refused/every_reason": (
        T0,
        refused(
            "PRV-3.opt_out",
            "PRV-4.consent",
            "PRV-1.own_data",
            "PRV-1.supplier_scope",
            "PRV-1.unknown_connection",
            "PRV-2.unknown_purpose",
            "UC3.window",
            "UC3.frequency",
            "UC5.pause",
            "UC1.trigger",
            "UC15.population",
            "UC6.sunset",
            "UC3.party",
            "UC3.kinds",
            "UC11.aggregate",
            "PRV-6.k_anonymity",
            "PRV-1.period",
        ),
    ),
    "refused/unknown_rule_researcher": (
        T0,
        refused(
            "UC3.window",
            "UC3.frequency",
            "XYZ.odd",
            detail={"role": "researcher", "party_name": "TU Delft"},
            period_start=T0,
            period_end=T0 + timedelta(hours=6),
        ),
    ),
    "refused/same_reason_twice": (T0, refused("UC3.window", "UC5.window")),
    "refused/no_rules": (T0, refused()),
    "refused/reason_given": (
        T0,
        refused(
            "UC3.window",
            detail={
                **GRID,
                "reason_nl": "het net overbelast was",
                "reason_en": "the grid was full",
            },
        ),
    ),
    "refused/reason_given_empty": (
        T0,
        refused("UC3.window", detail={**GRID, "reason_nl": "", "reason_en": ""}),
    ),
    "refused/customer": (
        T0,
        refused("PRV-1.own_data", party="J. Jansen", detail={"role": "customer"}),
    ),
    "read_refused/app": (
        T0,
        entry(
            event="read",
            outcome="refused",
            party="app-1",
            kinds=("quarter_hours",),
            rules=("PRV-4.consent",),
            detail={"role": "app", "kind": "quarter_hours"},
        ),
    ),
    "read_refused/aggregate": (
        T0,
        entry(
            event="read",
            outcome="refused",
            purpose="UC14",
            rules=("UC14.aggregate",),
            detail={"role": "researcher", "kind": "quarter_hours"},
        ),
    ),
    # consent steps
    "consent/given": (T0, consent("given")),
    "consent/given_no_end": (T0, consent("given", period_end=None)),
    "consent/given_named": (T0, consent("given", detail={"name": "Zonnig"})),
    "consent/given_no_kinds": (T0, consent("given", kinds=())),
    "consent/requested": (T0, consent("requested")),
    "consent/refused": (T0, consent("refused")),
    "consent/revoked": (LATE, consent("revoked")),
    "consent/expired": (T0, consent("expired")),
    "consent/fulfilled": (T0, consent("fulfilled")),
    "consent/unknown_step": (T0, consent("paused")),
    # retention and release
    "flag/recorded": (T0, entry(event="flag", outcome="recorded", kinds=())),
    "retention/deleted": (
        T0,
        entry(event="retention", outcome="deleted", period_start=None, period_end=None),
    ),
    "retention/expired_with_period": (T0, entry(event="retention", outcome="expired")),
    "retention/customer_no_kinds": (
        T0,
        entry(
            event="retention",
            outcome="deleted",
            party="J. Jansen",
            kinds=(),
            detail={"role": "customer"},
        ),
    ),
    "release/researcher": (
        T0,
        entry(
            event="release",
            outcome="released",
            purpose="UC14",
            party="r-7",
            kinds=("quarter_hours",),
            detail={"role": "researcher", "party_name": "TU Delft", "cells": 12},
        ),
    ),
    "release/grid_operator": (T0, entry(event="release", outcome="released", purpose="UC11")),
    # what no template covers
    "other/decision_pending": (T0, entry(outcome="pending")),
    "other/read_granted": (T0, entry(event="read", outcome="granted")),
    "other/unknown_event": (T0, entry(event="export", outcome="sent", kinds=())),
}


def record(name: str) -> AuditRecord:
    at, item = CASES[name]
    return AuditRecord(1, at, item, GENESIS, GENESIS)


PINNED: dict[str, tuple[str, str]] = {
    "granted/grid_operator": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 10 days of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/supplier": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw leverancier toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your supplier access to 10 days of voltage "
            "data for: Seasonal voltage quality."
        ),
    ),
    "granted/supplier_named": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw leverancier Groen BV toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your supplier Groen BV access to 10 days of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/app": (
        (
            "Op 3 maart 2026 gaf de privacycontrole de app app-1 toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave the app app-1 access to 10 days of voltage "
            "data for: Seasonal voltage quality."
        ),
    ),
    "granted/app_named": (
        (
            "Op 3 maart 2026 gaf de privacycontrole de app Zonnig toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave the app Zonnig access to 10 days of voltage "
            "data for: Seasonal voltage quality."
        ),
    ),
    "granted/customer": (
        (
            "Op 3 maart 2026 gaf de privacycontrole u toegang tot 10 dagen spanningsgegevens "
            "voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave you access to 10 days of voltage data for: "
            "Seasonal voltage quality."
        ),
    ),
    "granted/researcher": (
        (
            "Op 3 maart 2026 gaf de privacycontrole een onderzoeker toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave a researcher access to 10 days of voltage "
            "data for: Seasonal voltage quality."
        ),
    ),
    "granted/researcher_named": (
        (
            "Op 3 maart 2026 gaf de privacycontrole onderzoeker TU Delft toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave researcher TU Delft access to 10 days of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/unknown_role": (
        (
            "Op 3 maart 2026 gaf de privacycontrole partij dso toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave party dso access to 10 days of voltage data "
            "for: Seasonal voltage quality."
        ),
    ),
    "granted/odd_role": (
        (
            "Op 3 maart 2026 gaf de privacycontrole partij dso toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave party dso access to 10 days of voltage data "
            "for: Seasonal voltage quality."
        ),
    ),
    "granted/grid_operator_named": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 10 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 10 days of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/dst_week_quarter_hours": (
        (
            "Op 1 april 2026 gaf de privacycontrole uw netbeheerder toegang tot 7 dagen "
            "kwartierwaarden voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 1 April 2026 the privacy gate gave your grid operator access to 7 days of "
            "quarter-hour values for: Seasonal voltage quality."
        ),
    ),
    "granted/one_day_two_kinds": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 1 dag "
            "stroomuitvalmeldingen en of er spanning op uw meter staat voor: "
            "storingslokalisatie."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 1 day of "
            "power-outage messages and whether your meter has voltage for: Outage location."
        ),
    ),
    "granted/three_kinds_unknown_kind": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 10 dagen "
            "P1-gasmeterstanden, P1-meterstanden en smart thing x voor: P1-poort uitlezen."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 10 days of P1 "
            "gas meter readings, P1 meter readings and smart thing x for: P1 port reading."
        ),
    ),
    "granted/no_kinds_no_period": (
        ("Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot gegevens voor: UC14."),
        "On 3 March 2026 the privacy gate gave your grid operator access to data for: UC14.",
    ),
    "granted/end_before_start": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to voltage data "
            "for: Seasonal voltage quality."
        ),
    ),
    "granted/one_hour": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 1 uur "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 1 hour of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/six_hours": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 6 uur "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 6 hours of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/one_minute": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 1 minuut "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 1 minute of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/ninety_seconds": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 2 minuten "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 2 minutes of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/one_day_not_midnight": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 1 dag "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 1 day of voltage "
            "data for: Seasonal voltage quality."
        ),
    ),
    "granted/three_days_not_midnight": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 3 dagen "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 3 days of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "granted/25_hours": (
        (
            "Op 3 maart 2026 gaf de privacycontrole uw netbeheerder toegang tot 25 uur "
            "spanningsgegevens voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the privacy gate gave your grid operator access to 25 hours of "
            "voltage data for: Seasonal voltage quality."
        ),
    ),
    "read/grid_operator": (
        (
            "Op 3 maart 2026 heeft uw netbeheerder 10 dagen spanningsgegevens uitgelezen voor: "
            "seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 your grid operator read 10 days of voltage data for: Seasonal "
            "voltage quality."
        ),
    ),
    "read/one_kind_of_two": (
        (
            "Op 3 maart 2026 heeft uw netbeheerder 10 dagen stroomuitvalmeldingen uitgelezen "
            "voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 your grid operator read 10 days of power-outage messages for: "
            "Seasonal voltage quality."
        ),
    ),
    "read/customer": (
        (
            "Op 3 maart 2026 heeft u zelf 10 dagen spanningsgegevens uitgelezen voor: "
            "seizoensanalyse van de spanningskwaliteit."
        ),
        "On 3 March 2026 you read 10 days of voltage data for: Seasonal voltage quality.",
    ),
    "read/app_named_no_kind": (
        (
            "Op 3 maart 2026 heeft de app Z 10 dagen spanningsgegevens uitgelezen voor: "
            "seizoensanalyse van de spanningskwaliteit."
        ),
        ("On 3 March 2026 the app Z read 10 days of voltage data for: Seasonal voltage quality."),
    ),
    "refused/opt_out_supplier": (
        (
            "Op 1 april 2026 vroeg uw leverancier 7 dagen kwartierwaarden op voor: inzicht in uw "
            "verbruik; dit is geweigerd omdat u bezwaar heeft gemaakt tegen het uitlezen van uw "
            "meter."
        ),
        (
            "On 1 April 2026 your supplier asked for 7 days of quarter-hour values for: Insight "
            "into your use; this was refused because you opted out of remote meter reading."
        ),
    ),
    "refused/every_reason": (
        (
            "Op 3 maart 2026 vroeg uw netbeheerder 10 dagen spanningsgegevens op voor: "
            "seizoensanalyse van de spanningskwaliteit; dit is geweigerd omdat u bezwaar heeft "
            "gemaakt tegen het uitlezen van uw meter, u daarvoor geen geldige toestemming had "
            "gegeven, het niet om uw eigen aansluiting ging, deze leverancier u in die periode "
            "niet leverde, de aansluiting niet bekend is, dit doel niet is goedgekeurd, de "
            "gevraagde periode langer is dan voor dit doel is toegestaan, er vaker gegevens "
            "werden opgevraagd dan voor dit doel is toegestaan, de verplichte pauze sinds de "
            "vorige uitlezing nog niet voorbij was, de aanleiding ontbrak die voor dit doel "
            "nodig is, uw aansluiting niet onder dit doel valt, dit doel niet meer gebruikt mag "
            "worden, deze partij dit doel niet mag gebruiken, deze gegevens voor dit doel niet "
            "nodig zijn, voor dit doel alleen samengevoegde gegevens gebruikt mogen worden, de "
            "groep aansluitingen te klein was om uw gegevens te beschermen en de gevraagde "
            "periode niet klopt."
        ),
        (
            "On 3 March 2026 your grid operator asked for 10 days of voltage data for: Seasonal "
            "voltage quality; this was refused because you opted out of remote meter reading, "
            "you had not given valid consent, it was not your own connection, this supplier did "
            "not supply you in that period, the connection is not in the register, this purpose "
            "is not approved, the period asked for is longer than this purpose allows, data were "
            "asked for more often than this purpose allows, the required pause since the "
            "previous read had not passed, the reason this purpose needs was missing, your "
            "connection is not covered by this purpose, this purpose may no longer be used, this "
            "party may not use this purpose, these data are not needed for this purpose, this "
            "purpose may use only aggregated data, the group of connections was too small to "
            "protect your data and the period asked for is not valid."
        ),
    ),
    "refused/unknown_rule_researcher": (
        (
            "Op 3 maart 2026 vroeg onderzoeker TU Delft 6 uur spanningsgegevens op voor: "
            "seizoensanalyse van de spanningskwaliteit; dit is geweigerd omdat de gevraagde "
            "periode langer is dan voor dit doel is toegestaan, er vaker gegevens werden "
            "opgevraagd dan voor dit doel is toegestaan en niet aan regel XYZ.odd werd voldaan."
        ),
        (
            "On 3 March 2026 researcher TU Delft asked for 6 hours of voltage data for: Seasonal "
            "voltage quality; this was refused because the period asked for is longer than this "
            "purpose allows, data were asked for more often than this purpose allows and rule "
            "XYZ.odd was not met."
        ),
    ),
    "refused/same_reason_twice": (
        (
            "Op 3 maart 2026 vroeg uw netbeheerder 10 dagen spanningsgegevens op voor: "
            "seizoensanalyse van de spanningskwaliteit; dit is geweigerd omdat de gevraagde "
            "periode langer is dan voor dit doel is toegestaan."
        ),
        (
            "On 3 March 2026 your grid operator asked for 10 days of voltage data for: Seasonal "
            "voltage quality; this was refused because the period asked for is longer than this "
            "purpose allows."
        ),
    ),
    "refused/no_rules": (
        (
            "Op 3 maart 2026 vroeg uw netbeheerder 10 dagen spanningsgegevens op voor: "
            "seizoensanalyse van de spanningskwaliteit; dit is geweigerd omdat dit niet is "
            "toegestaan."
        ),
        (
            "On 3 March 2026 your grid operator asked for 10 days of voltage data for: Seasonal "
            "voltage quality; this was refused because it was not allowed."
        ),
    ),
    "refused/reason_given": (
        (
            "Op 3 maart 2026 vroeg uw netbeheerder 10 dagen spanningsgegevens op voor: "
            "seizoensanalyse van de spanningskwaliteit; dit is geweigerd omdat het net "
            "overbelast was."
        ),
        (
            "On 3 March 2026 your grid operator asked for 10 days of voltage data for: Seasonal "
            "voltage quality; this was refused because the grid was full."
        ),
    ),
    "refused/reason_given_empty": (
        (
            "Op 3 maart 2026 vroeg uw netbeheerder 10 dagen spanningsgegevens op voor: "
            "seizoensanalyse van de spanningskwaliteit; dit is geweigerd omdat de gevraagde "
            "periode langer is dan voor dit doel is toegestaan."
        ),
        (
            "On 3 March 2026 your grid operator asked for 10 days of voltage data for: Seasonal "
            "voltage quality; this was refused because the period asked for is longer than this "
            "purpose allows."
        ),
    ),
    "refused/customer": (
        (
            "Op 3 maart 2026 vroeg u zelf 10 dagen spanningsgegevens op voor: seizoensanalyse "
            "van de spanningskwaliteit; dit is geweigerd omdat het niet om uw eigen aansluiting "
            "ging."
        ),
        (
            "On 3 March 2026 you asked for 10 days of voltage data for: Seasonal voltage "
            "quality; this was refused because it was not your own connection."
        ),
    ),
    "read_refused/app": (
        (
            "Op 3 maart 2026 vroeg de app app-1 10 dagen kwartierwaarden op voor: "
            "seizoensanalyse van de spanningskwaliteit; dit is geweigerd omdat u daarvoor geen "
            "geldige toestemming had gegeven."
        ),
        (
            "On 3 March 2026 the app app-1 asked for 10 days of quarter-hour values for: "
            "Seasonal voltage quality; this was refused because you had not given valid consent."
        ),
    ),
    "read_refused/aggregate": (
        (
            "Op 3 maart 2026 vroeg een onderzoeker 10 dagen kwartierwaarden op voor: UC14; dit "
            "is geweigerd omdat voor dit doel alleen samengevoegde gegevens gebruikt mogen "
            "worden."
        ),
        (
            "On 3 March 2026 a researcher asked for 10 days of quarter-hour values for: UC14; "
            "this was refused because this purpose may use only aggregated data."
        ),
    ),
    "consent/given": (
        (
            "Op 3 maart 2026 heeft u de app app-1 toestemming gegeven om dagstanden en "
            "kwartierwaarden te gebruiken tot 1 april 2027 voor: energy_app."
        ),
        (
            "On 3 March 2026 you gave the app app-1 consent to use daily readings and "
            "quarter-hour values until 1 April 2027 for: energy_app."
        ),
    ),
    "consent/given_no_end": (
        (
            "Op 3 maart 2026 heeft u de app app-1 toestemming gegeven om dagstanden en "
            "kwartierwaarden te gebruiken voor: energy_app."
        ),
        (
            "On 3 March 2026 you gave the app app-1 consent to use daily readings and "
            "quarter-hour values for: energy_app."
        ),
    ),
    "consent/given_named": (
        (
            "Op 3 maart 2026 heeft u de app Zonnig toestemming gegeven om dagstanden en "
            "kwartierwaarden te gebruiken tot 1 april 2027 voor: energy_app."
        ),
        (
            "On 3 March 2026 you gave the app Zonnig consent to use daily readings and "
            "quarter-hour values until 1 April 2027 for: energy_app."
        ),
    ),
    "consent/given_no_kinds": (
        (
            "Op 3 maart 2026 heeft u de app app-1 toestemming gegeven om gegevens te gebruiken "
            "tot 1 april 2027 voor: energy_app."
        ),
        (
            "On 3 March 2026 you gave the app app-1 consent to use data until 1 April 2027 for: "
            "energy_app."
        ),
    ),
    "consent/requested": (
        (
            "Op 3 maart 2026 vroeg de app app-1 uw toestemming om dagstanden en kwartierwaarden "
            "te gebruiken voor: energy_app."
        ),
        (
            "On 3 March 2026 the app app-1 asked your consent to use daily readings and "
            "quarter-hour values for: energy_app."
        ),
    ),
    "consent/refused": (
        "Op 3 maart 2026 heeft u de app app-1 geen toestemming gegeven voor: energy_app.",
        "On 3 March 2026 you refused the app app-1 consent for: energy_app.",
    ),
    "consent/revoked": (
        (
            "Op 1 april 2026 heeft u de toestemming ingetrokken die de app app-1 had voor: "
            "energy_app."
        ),
        "On 1 April 2026 you revoked the consent of the app app-1 for: energy_app.",
    ),
    "consent/expired": (
        "Op 3 maart 2026 is de toestemming verlopen die de app app-1 had voor: energy_app.",
        "On 3 March 2026 the consent of the app app-1 for: energy_app expired.",
    ),
    "consent/fulfilled": (
        "Op 3 maart 2026 is de toestemming afgerond die de app app-1 had voor: energy_app.",
        "On 3 March 2026 the consent of the app app-1 for: energy_app was fulfilled.",
    ),
    "consent/unknown_step": (
        (
            "Op 3 maart 2026: consent (paused) door de app app-1, 372 dagen dagstanden en "
            "kwartierwaarden, voor: energy_app."
        ),
        (
            "On 3 March 2026: consent (paused) by the app app-1, 372 days of daily readings and "
            "quarter-hour values, for: energy_app."
        ),
    ),
    "flag/recorded": (
        (
            "Op 3 maart 2026 wees uw netbeheerder uw aansluiting aan voor nader onderzoek, "
            "na: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 your grid operator marked your connection for a closer look, "
            "after: Seasonal voltage quality."
        ),
    ),
    "retention/deleted": (
        (
            "Op 3 maart 2026 zijn de spanningsgegevens verwijderd die uw netbeheerder had "
            "opgehaald voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the voltage data that your grid operator fetched for: Seasonal "
            "voltage quality were deleted."
        ),
    ),
    "retention/expired_with_period": (
        (
            "Op 3 maart 2026 zijn de 10 dagen spanningsgegevens verwijderd die uw netbeheerder "
            "had opgehaald voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the 10 days of voltage data that your grid operator fetched for: "
            "Seasonal voltage quality were deleted."
        ),
    ),
    "retention/customer_no_kinds": (
        (
            "Op 3 maart 2026 zijn de 10 dagen gegevens verwijderd die u zelf had opgehaald voor: "
            "seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026 the 10 days of data that you fetched for: Seasonal voltage quality "
            "were deleted."
        ),
    ),
    "release/researcher": (
        (
            "Op 3 maart 2026 zijn 10 dagen kwartierwaarden, samengevoegd met die van andere "
            "aansluitingen, gedeeld met onderzoeker TU Delft voor: UC14."
        ),
        (
            "On 3 March 2026 10 days of quarter-hour values, aggregated with other connections, "
            "were shared with researcher TU Delft for: UC14."
        ),
    ),
    "release/grid_operator": (
        (
            "Op 3 maart 2026 zijn 10 dagen spanningsgegevens, samengevoegd met die van andere "
            "aansluitingen, gedeeld met uw netbeheerder voor: UC11."
        ),
        (
            "On 3 March 2026 10 days of voltage data, aggregated with other connections, were "
            "shared with your grid operator for: UC11."
        ),
    ),
    "other/decision_pending": (
        (
            "Op 3 maart 2026: decision (pending) door uw netbeheerder, 10 dagen "
            "spanningsgegevens, voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026: decision (pending) by your grid operator, 10 days of voltage data, "
            "for: Seasonal voltage quality."
        ),
    ),
    "other/read_granted": (
        (
            "Op 3 maart 2026: read (granted) door uw netbeheerder, 10 dagen spanningsgegevens, "
            "voor: seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026: read (granted) by your grid operator, 10 days of voltage data, "
            "for: Seasonal voltage quality."
        ),
    ),
    "other/unknown_event": (
        (
            "Op 3 maart 2026: export (sent) door uw netbeheerder, 10 dagen gegevens, voor: "
            "seizoensanalyse van de spanningskwaliteit."
        ),
        (
            "On 3 March 2026: export (sent) by your grid operator, 10 days of data, for: "
            "Seasonal voltage quality."
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_sentence_stays_as_it_was(name: str) -> None:
    nl, en = PINNED[name]
    assert explain.describe(record(name), "nl", TITLES["nl"]) == nl
    assert explain.describe(record(name), "en", TITLES["en"]) == en


@pytest.mark.parametrize("table", sorted(explain.TABLES))
def test_every_text_is_given_in_every_language(table: str) -> None:
    for key, texts in explain.TABLES[table].items():
        assert sorted(texts) == sorted(explain.LANGS), f"{table}[{key!r}]"
        assert all(texts[lang] for lang in explain.LANGS), f"{table}[{key!r}] is empty"
    assert sorted(explain.LOWER_AFTER_COLON) == sorted(explain.LANGS)


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in Formatter().parse(template) if field is not None}


@pytest.mark.parametrize("table", sorted(explain.TABLES))
def test_every_language_fills_in_the_same_fields(table: str) -> None:
    """A sentence that names the period's end in Dutch names it in English too."""
    for key, texts in explain.TABLES[table].items():
        fields = {lang: _fields(texts[lang]) for lang in explain.LANGS}
        assert len(set(map(frozenset, fields.values()))) == 1, f"{table}[{key!r}]: {fields}"


def test_every_event_has_its_own_sentences_and_the_pins_cover_them() -> None:
    keys = set(explain.SENTENCES)
    assert all(any(event == e for e, _ in keys) for event in audit.EVENTS)
    covered = {explain.sentence_key(item.event, item.outcome) for _, item in CASES.values()}
    assert covered == keys


def test_a_name_that_is_not_text_is_left_out_in_both_languages() -> None:
    item = entry(party="app-1", detail={"role": "app", "party_name": 7})
    sentences = [explain.describe(AuditRecord(1, T0, item, "", ""), lang) for lang in ("nl", "en")]
    assert "de app app-1 toegang" in sentences[0]
    assert "the app app-1 access" in sentences[1]


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="'fr'"):
        explain.describe(record("granted/app"), "fr")  # type: ignore[arg-type]
