"""The audit log as the customer reads it (PRV-7): one plain sentence per record.

Every record of :mod:`meetpunt.privacy.audit` (a decision granted or refused, a read or
a refused read, a consent step, a retention deletion, a release of aggregates) becomes
one sentence in Dutch or English, with dates on the Europe/Amsterdam calendar and the
period as the customer counts it ("10 dagen", "6 hours").

Both languages come from the tables below, never from code of their own: per event and
outcome a template per language (:data:`SENTENCES`), per word a translation
(:data:`WORDS`, :data:`MONTHS`, :data:`KINDS`, :data:`PARTIES`, :data:`REASONS`).
:func:`describe` fills the template; a new event needs a new row with both languages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypeAlias, get_args

from meetpunt.domain.calendar import to_local
from meetpunt.privacy.audit import AuditEntry, AuditRecord

Lang = Literal["nl", "en"]
"""A language of the customer's view."""
LANGS: Final[tuple[Lang, ...]] = get_args(Lang)

Translation: TypeAlias = Mapping[Lang, str]
"""One text in every language."""

ANY: Final = "*"
"""In a :data:`SENTENCES` key: any event or outcome."""

_REFUSED: Final[Translation] = {
    "nl": "Op {date} vroeg {subject} {what} op voor: {title}; dit is geweigerd omdat {reasons}.",
    "en": "On {date} {subject} asked for {what} for: {title}; this was refused because {reasons}.",
}
"""A refused request and a refused read say the same."""

SENTENCES: Final[dict[tuple[str, str], Translation]] = {
    ("decision", "granted"): {
        "nl": "Op {date} gaf de privacycontrole {obj} toegang tot {what} voor: {title}.",
        "en": "On {date} the privacy gate gave {obj} access to {what} for: {title}.",
    },
    ("decision", "refused"): _REFUSED,
    ("read", "read"): {
        "nl": "Op {date} heeft {subject} {what} uitgelezen voor: {title}.",
        "en": "On {date} {subject} read {what} for: {title}.",
    },
    ("read", "refused"): _REFUSED,
    ("consent", "given"): {
        "nl": "Op {date} heeft u {obj} toestemming gegeven om {kinds} te gebruiken{until} "
        "voor: {title}.",
        "en": "On {date} you gave {obj} consent to use {kinds}{until} for: {title}.",
    },
    ("consent", "requested"): {
        "nl": "Op {date} vroeg {subject} uw toestemming om {kinds} te gebruiken voor: {title}.",
        "en": "On {date} {subject} asked your consent to use {kinds} for: {title}.",
    },
    ("consent", "refused"): {
        "nl": "Op {date} heeft u {obj} geen toestemming gegeven voor: {title}.",
        "en": "On {date} you refused {obj} consent for: {title}.",
    },
    ("consent", "revoked"): {
        "nl": "Op {date} heeft u de toestemming ingetrokken die {obj} had voor: {title}.",
        "en": "On {date} you revoked the consent of {obj} for: {title}.",
    },
    ("consent", "expired"): {
        "nl": "Op {date} is de toestemming verlopen die {obj} had voor: {title}.",
        "en": "On {date} the consent of {obj} for: {title} expired.",
    },
    ("consent", "fulfilled"): {
        "nl": "Op {date} is de toestemming afgerond die {obj} had voor: {title}.",
        "en": "On {date} the consent of {obj} for: {title} was fulfilled.",
    },
    ("retention", ANY): {
        "nl": "Op {date} zijn de {what} verwijderd die {subject} had opgehaald voor: {title}.",
        "en": "On {date} the {what} that {subject} fetched for: {title} were deleted.",
    },
    ("release", ANY): {
        "nl": "Op {date} zijn {what}, samengevoegd met die van andere aansluitingen, "
        "gedeeld met {obj} voor: {title}.",
        "en": "On {date} {what}, aggregated with other connections, were shared with {obj} "
        "for: {title}.",
    },
    ("flag", ANY): {
        "nl": "Op {date} wees {subject} uw aansluiting aan voor nader onderzoek, na: {title}.",
        "en": "On {date} {subject} marked your connection for a closer look, after: {title}.",
    },
    (ANY, ANY): {
        "nl": "Op {date}: {event} ({outcome}) door {subject}, {what}, voor: {title}.",
        "en": "On {date}: {event} ({outcome}) by {subject}, {what}, for: {title}.",
    },
}
"""Per ``(event, outcome)`` the sentence in each language; ``*`` matches any. The fields:
``date`` (the local date recorded), ``subject``/``obj`` (the party, :data:`PARTIES`),
``what`` (amount and data kinds), ``kinds`` (the data kinds alone), ``until`` (the end of
the period, or nothing), ``title`` (the purpose), ``reasons`` (why it was refused),
``event`` and ``outcome``."""

WORDS: Final[dict[str, Translation]] = {
    "date": {"nl": "{day} {month} {year}", "en": "{day} {month} {year}"},
    "and": {"nl": " en ", "en": " and "},
    "amount": {"nl": "{span} {what}", "en": "{span} of {what}"},
    "until": {"nl": " tot {date}", "en": " until {date}"},
    "data": {"nl": "gegevens", "en": "data"},
    "day": {"nl": "dag", "en": "day"},
    "days": {"nl": "dagen", "en": "days"},
    "hour": {"nl": "uur", "en": "hour"},
    "hours": {"nl": "uur", "en": "hours"},
    "minute": {"nl": "minuut", "en": "minute"},
    "minutes": {"nl": "minuten", "en": "minutes"},
    "rule_not_met": {"nl": "niet aan regel {rule} werd voldaan", "en": "rule {rule} was not met"},
    "cut": {
        "nl": " Niet van {first} tot en met {last}, omdat {reason}.",
        "en": " Not from {first} to {last}, because {reason}.",
    },
    "not_allowed": {"nl": "dit niet is toegestaan", "en": "it was not allowed"},
}
"""The words and phrases the sentences are built from."""

MONTHS: Final[tuple[Translation, ...]] = (
    {"nl": "januari", "en": "January"},
    {"nl": "februari", "en": "February"},
    {"nl": "maart", "en": "March"},
    {"nl": "april", "en": "April"},
    {"nl": "mei", "en": "May"},
    {"nl": "juni", "en": "June"},
    {"nl": "juli", "en": "July"},
    {"nl": "augustus", "en": "August"},
    {"nl": "september", "en": "September"},
    {"nl": "oktober", "en": "October"},
    {"nl": "november", "en": "November"},
    {"nl": "december", "en": "December"},
)
"""The months, January first."""

KINDS: Final[dict[str, Translation]] = {
    "quarter_hours": {"nl": "kwartierwaarden", "en": "quarter-hour values"},
    "daily_readings": {"nl": "dagstanden", "en": "daily readings"},
    "monthly_readings": {"nl": "maandstanden", "en": "monthly readings"},
    "gas_hourly": {"nl": "gasverbruik per uur", "en": "hourly gas use"},
    "voltages_10min": {"nl": "spanningsgegevens", "en": "voltage data"},
    "voltage_events": {"nl": "spanningsgebeurtenissen", "en": "voltage events"},
    "power_failures": {"nl": "stroomonderbrekingen", "en": "power interruptions"},
    "power_failure_log": {"nl": "het storingslogboek", "en": "the power failure log"},
    "last_gasp": {"nl": "stroomuitvalmeldingen", "en": "power-outage messages"},
    "manual_readings": {
        "nl": "handmatig opgenomen meterstanden",
        "en": "manually taken meter readings",
    },
    "p1_readings": {"nl": "P1-meterstanden", "en": "P1 meter readings"},
    "p1_gas": {"nl": "P1-gasmeterstanden", "en": "P1 gas meter readings"},
    "switch_readings": {
        "nl": "de meterstand op de dag van overstappen of verhuizen",
        "en": "the meter reading on the day of a switch or move",
    },
    "gas_switch_readings": {
        "nl": "de gasmeterstand op de dag van overstappen of verhuizen",
        "en": "the gas meter reading on the day of a switch or move",
    },
    "voltage_presence": {
        "nl": "of er spanning op uw meter staat",
        "en": "whether your meter has voltage",
    },
    "reachability": {"nl": "of uw meter bereikbaar is", "en": "whether your meter can be reached"},
    "quarantine": {
        "nl": "geweigerde meetgegevens (quarantaine)",
        "en": "refused meter data (quarantine)",
    },
}
"""The data kinds by name; a kind not listed shows its id with spaces for underscores."""

PARTIES: Final[dict[str, Translation]] = {
    "grid_operator": {"nl": "uw netbeheerder", "en": "your grid operator"},
    "supplier": {"nl": "uw leverancier", "en": "your supplier"},
    "app": {"nl": "de app {party}", "en": "the app {party}"},
    "customer": {"nl": "u zelf", "en": "you"},
    "researcher": {"nl": "een onderzoeker", "en": "a researcher"},
    ANY: {"nl": "partij {party}", "en": "party {party}"},
}
"""The party by the ``role`` in the record's detail, as the subject of a sentence;
``{party}`` is its id. ``*`` is any other role."""

PARTIES_NAMED: Final[dict[str, Translation]] = {
    "supplier": {"nl": "uw leverancier {name}", "en": "your supplier {name}"},
    "app": {"nl": "de app {name}", "en": "the app {name}"},
    "researcher": {"nl": "onderzoeker {name}", "en": "researcher {name}"},
}
"""The party when the detail names it (``party_name``, else ``name``)."""

PARTIES_AS_OBJECT: Final[dict[str, Translation]] = {
    "customer": {"nl": "u", "en": "you"},
}
"""The party as the object of a sentence, where that differs from the subject."""

REASONS: Final[dict[str, Translation]] = {
    "opt_out": {
        "nl": "u bezwaar heeft gemaakt tegen het uitlezen van uw meter",
        "en": "you opted out of remote meter reading",
    },
    "consent": {
        "nl": "u daarvoor geen geldige toestemming had gegeven",
        "en": "you had not given valid consent",
    },
    "own_data": {
        "nl": "het niet om uw eigen aansluiting ging",
        "en": "it was not your own connection",
    },
    "supplier_scope": {
        "nl": "deze leverancier u in die periode niet leverde",
        "en": "this supplier did not supply you in that period",
    },
    "unknown_connection": {
        "nl": "de aansluiting niet bekend is",
        "en": "the connection is not in the register",
    },
    "unknown_purpose": {
        "nl": "dit doel niet is goedgekeurd",
        "en": "this purpose is not approved",
    },
    "window": {
        "nl": "de gevraagde periode langer is dan voor dit doel is toegestaan",
        "en": "the period asked for is longer than this purpose allows",
    },
    "frequency": {
        "nl": "er vaker gegevens werden opgevraagd dan voor dit doel is toegestaan",
        "en": "data were asked for more often than this purpose allows",
    },
    "pause": {
        "nl": "de verplichte pauze sinds de vorige uitlezing nog niet voorbij was",
        "en": "the required pause since the previous read had not passed",
    },
    "trigger": {
        "nl": "de aanleiding ontbrak die voor dit doel nodig is",
        "en": "the reason this purpose needs was missing",
    },
    "population": {
        "nl": "uw aansluiting niet onder dit doel valt",
        "en": "your connection is not covered by this purpose",
    },
    "sunset": {
        "nl": "dit doel niet meer gebruikt mag worden",
        "en": "this purpose may no longer be used",
    },
    "party": {
        "nl": "deze partij dit doel niet mag gebruiken",
        "en": "this party may not use this purpose",
    },
    "kinds": {
        "nl": "deze gegevens voor dit doel niet nodig zijn",
        "en": "these data are not needed for this purpose",
    },
    "aggregate": {
        "nl": "voor dit doel alleen samengevoegde gegevens gebruikt mogen worden",
        "en": "this purpose may use only aggregated data",
    },
    "PRV-6": {
        "nl": "de groep aansluitingen te klein was om uw gegevens te beschermen",
        "en": "the group of connections was too small to protect your data",
    },
    "period": {
        "nl": "de gevraagde periode niet klopt",
        "en": "the period asked for is not valid",
    },
}
"""Why a request was refused, by a part of the rule ID (``PRV-3.opt_out``,
``UC3.window``); the first key, in this order, that the rule ID contains wins."""

LOWER_AFTER_COLON: Final[Mapping[Lang, bool]] = {"nl": True, "en": False}
"""Whether the purpose's title, after "voor:"/"for:", starts in lower case."""

TABLES: Final[Mapping[str, Mapping[Any, Translation]]] = {
    "SENTENCES": SENTENCES,
    "WORDS": WORDS,
    "MONTHS": dict(enumerate(MONTHS, start=1)),
    "KINDS": KINDS,
    "PARTIES": PARTIES,
    "PARTIES_NAMED": PARTIES_NAMED,
    "PARTIES_AS_OBJECT": PARTIES_AS_OBJECT,
    "REASONS": REASONS,
}
"""Every table of texts, by name: each entry must be given in every language of LANGS."""


def describe(
    record: AuditRecord,
    lang: Lang,
    titles: Mapping[str, str] | None = None,
    ean: str | None = None,
) -> str:
    """``record`` as the customer reads it, in ``lang`` ("nl" or "en"), dated on the
    local calendar (PRV-7). ``titles`` maps a purpose id to its title in ``lang``; a
    purpose without one shows its id. For the customer of ``ean``, a grant that rules
    cut short for that connection also says which days were not granted, and why."""
    if lang not in LANGS:
        raise ValueError(f"no explanations in {lang!r}: choose one of {', '.join(LANGS)}")
    entry = record.entry
    subject, obj = _who(entry, lang)
    template = SENTENCES[sentence_key(entry.event, entry.outcome)][lang]
    return template.format(
        date=_local_date(record.at, lang),
        subject=subject,
        obj=obj,
        what=_what(entry, lang),
        kinds=_what(entry, lang, amount=False),
        until=_until(entry, lang),
        title=_title(entry, titles, lang),
        reasons=_reasons(entry, lang),
        event=entry.event,
        outcome=entry.outcome,
    ) + _cuts(entry, ean, lang)


def _cuts(entry: AuditEntry, ean: str | None, lang: Lang) -> str:
    """The stretches of a grant that a rule cut for ``ean`` (``detail.cut``, PRV-1)."""
    cuts = entry.detail.get("cut") if ean is not None else None
    if not isinstance(cuts, list):
        return ""
    out: list[str] = []
    for cut in cuts:
        if not isinstance(cut, dict) or cut.get("ean") != ean:
            continue
        try:
            start, end = (datetime.fromisoformat(t) for t in cut["period"])
        except (KeyError, TypeError, ValueError):
            continue
        rule = str(cut.get("rule", ""))
        reason = next((text for key, text in REASONS.items() if key in rule), None)
        out.append(
            WORDS["cut"][lang].format(
                first=_local_date(start, lang),
                last=_local_date(end - timedelta(microseconds=1), lang),
                reason=reason[lang]
                if reason is not None
                else WORDS["rule_not_met"][lang].format(rule=rule),
            )
        )
    return "".join(out)


def sentence_key(event: str, outcome: str) -> tuple[str, str]:
    """The row of :data:`SENTENCES` for ``(event, outcome)``: the exact one, else the
    event's row for any outcome, else the row for anything."""
    for key in ((event, outcome), (event, ANY)):
        if key in SENTENCES:
            return key
    return ANY, ANY


def _local_date(instant: datetime, lang: Lang) -> str:
    local = to_local(instant)
    month = MONTHS[local.month - 1][lang]
    return WORDS["date"][lang].format(day=local.day, month=month, year=local.year)


def _join(items: Sequence[str], lang: Lang) -> str:
    """``a, b and c``, each item once."""
    unique = list(dict.fromkeys(items))
    if len(unique) <= 1:
        return "".join(unique)
    return ", ".join(unique[:-1]) + WORDS["and"][lang] + unique[-1]


def _count(number: int, unit: str, lang: Lang) -> str:
    """``1 dag``, ``2 dagen``: ``unit`` is the singular key of :data:`WORDS`."""
    return f"{number} {WORDS[unit if number == 1 else unit + 's'][lang]}"


def _span(start: datetime | None, end: datetime | None, lang: Lang) -> str:
    """The length of the period: whole local days when it runs from midnight to
    midnight (a day is a day, also across the clock change), else days/hours/minutes."""
    if start is None or end is None or end <= start:
        return ""
    first, last = to_local(start), to_local(end)
    if first.time() == last.time() == datetime.min.time():
        return _count((last.date() - first.date()).days, "day", lang)
    seconds = (end - start).total_seconds()
    if seconds >= 2 * 86_400 or seconds % 86_400 == 0:
        return _count(round(seconds / 86_400), "day", lang)
    if seconds % 3600 == 0:
        return _count(int(seconds // 3600), "hour", lang)
    return _count(math.ceil(seconds / 60), "minute", lang)


def _what(entry: AuditEntry, lang: Lang, amount: bool = True) -> str:
    """The data kinds (a read names the one kind it read), after the period's length."""
    kinds = list(entry.kinds)
    read_kind = entry.detail.get("kind")
    if entry.event == "read" and isinstance(read_kind, str):
        kinds = [read_kind]
    names = [KINDS[k][lang] if k in KINDS else k.replace("_", " ") for k in kinds]
    described = _join(names, lang) or WORDS["data"][lang]
    span = _span(entry.period_start, entry.period_end, lang) if amount else ""
    if not span:
        return described
    return WORDS["amount"][lang].format(span=span, what=described)


def _until(entry: AuditEntry, lang: Lang) -> str:
    end = entry.period_end
    return "" if end is None else WORDS["until"][lang].format(date=_local_date(end, lang))


def _who(entry: AuditEntry, lang: Lang) -> tuple[str, str]:
    """The party as the subject and as the object of a sentence."""
    role = entry.detail.get("role")
    key = role if isinstance(role, str) and role in PARTIES else ANY
    name = entry.detail.get("party_name") or entry.detail.get("name")
    if isinstance(name, str) and name and key in PARTIES_NAMED:
        subject = PARTIES_NAMED[key][lang].format(name=name)
    else:
        subject = PARTIES[key][lang].format(party=entry.party)
    obj = PARTIES_AS_OBJECT[key][lang] if key in PARTIES_AS_OBJECT else subject
    return subject, obj


def _reasons(entry: AuditEntry, lang: Lang) -> str:
    """Why a request was refused: the reason the writer gave (``reason_nl``,
    ``reason_en``), else one per rule ID."""
    given = entry.detail.get(f"reason_{lang}")
    if isinstance(given, str) and given:
        return given
    out: list[str] = []
    for rule in entry.rules:
        reason = next((text for key, text in REASONS.items() if key in rule), None)
        out.append(
            reason[lang] if reason is not None else WORDS["rule_not_met"][lang].format(rule=rule)
        )
    return _join(out, lang) if out else WORDS["not_allowed"][lang]


def _title(entry: AuditEntry, titles: Mapping[str, str] | None, lang: Lang) -> str:
    """The purpose's title, else its id; in Dutch in lower case after the colon
    ("voor: het opsporen van storingen"), unless it starts with an abbreviation or name."""
    title = (titles or {}).get(entry.purpose) or entry.purpose
    if LOWER_AFTER_COLON[lang] and len(title) > 1 and title[0].isupper() and title[1].islower():
        return title[0].lower() + title[1:]
    return title
