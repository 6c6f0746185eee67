"""The one local-time calendar of meetpunt (design rule 4, UTC inside; MTR-3, MKT-2).

Instants are UTC inside meetpunt; local days, tariff periods and holidays are
Europe/Amsterdam wall-clock notions and are computed here and nowhere else. A local
day has 92, 96 or 100 quarter-hours (MTR-3); the count comes from the time zone.

The off-peak (dal) holidays and the normal-tariff hours per region are data (the
``offpeak_calendar`` rule file, design rule 2, rules are data); :class:`OffPeakCalendar`
is built from that data and is pure. Only :func:`meetpunt.rulebook.offpeak_calendar` reads the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meetpunt.domain.findings import Finding
from meetpunt.errors import DomainError, RulesDataError

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")
"""The time zone of every local-time notion (MTR-3)."""

QUARTER_HOUR = timedelta(minutes=15)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- instants and local days -------------------------------------------------------------


def require_aware(instant: datetime) -> datetime:
    """Return ``instant`` unchanged; raise :class:`DomainError` when it is naive (MTR-3).

    A naive datetime has no defined instant (is it UTC? local?), so meetpunt refuses it.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        finding = Finding(
            "MTR-3.naive",
            f"datetime {instant.isoformat()} has no time zone; pass an aware datetime (UTC)",
        )
        raise DomainError(finding.message, [finding])
    return instant


def to_local(instant: datetime) -> datetime:
    """The instant as Europe/Amsterdam wall-clock time (for display and local rules)."""
    return require_aware(instant).astimezone(LOCAL_TZ)


def to_utc(instant: datetime) -> datetime:
    """The instant in UTC, the form meetpunt stores (MTR-3)."""
    return require_aware(instant).astimezone(UTC)


def local_date_of(instant_utc: datetime) -> date:
    """The Europe/Amsterdam calendar date the instant falls on."""
    return to_local(instant_utc).date()


def local_midnight_utc(day: date) -> datetime:
    """The UTC instant at which local ``day`` begins (00:00 Amsterdam always exists)."""
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


def local_day_bounds_utc(day: date) -> tuple[datetime, datetime]:
    """``(start, end)`` in UTC of local ``day``: start inclusive, end exclusive.

    The span is 23, 24 or 25 hours: DST starts and ends on a Sunday in March/October.
    """
    return local_midnight_utc(day), local_midnight_utc(day + timedelta(days=1))


MICROS_PER_DAY = 86_400 * 1_000_000


def local_wall_micros(instants_us: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Europe/Amsterdam wall-clock time of UTC instants, as microseconds since
    1970-01-01 00:00 local (vectorised, for meter-data tables; MTR-3).

    ``local_wall_micros(x) // MICROS_PER_DAY`` is the local date as days since the epoch;
    the remainder is the time of day on the local clock.
    """
    zoned = pa.array(instants_us, pa.timestamp("us", "UTC")).cast(pa.timestamp("us", str(LOCAL_TZ)))
    return np.asarray(pc.local_timestamp(zoned).cast(pa.int64()).to_numpy(), dtype=np.int64)


def quarter_hours_in_local_day(day: date) -> int:
    """Number of quarter-hours in local ``day``: 92, 96 or 100 (MTR-3), from the tz data."""
    start, end = local_day_bounds_utc(day)
    return (end - start) // QUARTER_HOUR


def quarter_hour_starts_utc(day: date) -> list[datetime]:
    """UTC start instants of every quarter-hour of local ``day``, in order (MTR-3)."""
    start, end = local_day_bounds_utc(day)
    count = (end - start) // QUARTER_HOUR
    return [start + i * QUARTER_HOUR for i in range(count)]


# --- Easter and holidays -----------------------------------------------------------------


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday of ``year`` (anonymous Gregorian computus, Meeus/Jones/Butcher).

    Valid for Gregorian years (1583 and later); movable off-peak holidays are offsets
    from this date.
    """
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@dataclass(frozen=True, slots=True)
class HolidayRule:
    """One off-peak holiday: a fixed date (optionally moved off a Sunday) or an Easter offset."""

    id: str
    name: str
    month: int | None = None
    day: int | None = None
    easter_offset_days: int | None = None
    if_sunday_shift_days: int = 0

    def date_in(self, year: int) -> date:
        """The date this holiday falls on in ``year``."""
        if self.easter_offset_days is not None:
            return easter_sunday(year) + timedelta(days=self.easter_offset_days)
        assert self.month is not None and self.day is not None  # checked by from_mapping
        fixed = date(year, self.month, self.day)
        if self.if_sunday_shift_days and fixed.isoweekday() == 7:
            return fixed + timedelta(days=self.if_sunday_shift_days)
        return fixed


# --- tariffs and regions -----------------------------------------------------------------


class Tariff(StrEnum):
    """The two double-tariff registers (MKT-2).

    Dutch convention: tariff 1 is off-peak (dal), register 1.8.1 / 2.8.1, P1 tariff
    indicator ``0001``; tariff 2 is normal, 1.8.2 / 2.8.2, indicator ``0002``.
    (Belgium numbers them the other way round.)
    """

    T1 = "T1"
    T2 = "T2"

    @property
    def is_offpeak(self) -> bool:
        """True for T1, the off-peak (dal) tariff."""
        return self is Tariff.T1

    @property
    def dutch_name(self) -> str:
        """``dal`` or ``normaal``, as on invoices."""
        return "dal" if self is Tariff.T1 else "normaal"

    @property
    def import_register(self) -> str:
        """OBIS register of delivered (imported) energy: ``1.8.1`` or ``1.8.2``."""
        return f"1.8.{self.value[1]}"

    @property
    def export_register(self) -> str:
        """OBIS register of returned (exported) energy: ``2.8.1`` or ``2.8.2``."""
        return f"2.8.{self.value[1]}"

    @property
    def p1_indicator(self) -> str:
        """The P1 tariff indicator (OBIS 0-0:96.14.0): ``0001`` or ``0002``."""
        return f"000{self.value[1]}"

    @classmethod
    def from_p1_indicator(cls, indicator: str) -> Tariff:
        """The tariff a P1 tariff indicator names; :class:`DomainError` when it is neither."""
        for tariff in cls:
            if indicator.strip() == tariff.p1_indicator:
                return tariff
        finding = Finding(
            "MKT-2.tariff_indicator",
            f"P1 tariff indicator {indicator!r} is neither 0001 (off-peak) nor 0002 (normal)",
        )
        raise DomainError(finding.message, [finding])


@dataclass(frozen=True, slots=True)
class TariffRegion:
    """A region's working-day normal-tariff hours, local wall-clock (MKT-2).

    Normal (T2) from ``normal_from`` inclusive to ``normal_until`` exclusive.
    """

    id: str
    name: str
    normal_from: time
    normal_until: time

    def is_normal_time(self, local_time: time) -> bool:
        """True when a working-day wall-clock time lies in the normal-tariff window."""
        return self.normal_from <= local_time.replace(tzinfo=None, fold=0) < self.normal_until


@dataclass(frozen=True)
class OffPeakCalendar:
    """Off-peak holidays, off-peak weekdays and regional normal hours (MKT-2).

    Build with :meth:`from_mapping` (pure) or :func:`meetpunt.rulebook.offpeak_calendar` (reads the
    ``offpeak_calendar`` rule file).
    """

    holidays: tuple[HolidayRule, ...]
    regions: Mapping[str, TariffRegion]
    default_region: str
    offpeak_weekdays: frozenset[int]
    """ISO weekday numbers (6 = Saturday, 7 = Sunday) that are off-peak all day."""
    version: str = "unversioned"
    _holiday_cache: dict[int, dict[date, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_mapping(
        cls, body: Mapping[str, Any], *, version: str = "unversioned"
    ) -> OffPeakCalendar:
        """Build from the body of the ``offpeak_calendar`` rule file.

        Raises :class:`RulesDataError` when the data is incomplete or inconsistent.
        """
        try:
            holidays = tuple(_holiday_rule(h) for h in body["holidays"])
            regions = {str(rid): _tariff_region(str(rid), r) for rid, r in body["regions"].items()}
            settings = body["calendar"]
            default_region = str(settings["default_region"])
            weekdays = frozenset(
                _WEEKDAYS.index(str(name).strip().lower()) + 1
                for name in settings["offpeak_weekdays"]
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RulesDataError(
                f"offpeak_calendar: malformed data ({type(exc).__name__}: {exc}); "
                "see the comments in meetpunt/data/offpeak_calendar.toml"
            ) from exc
        if default_region not in regions:
            raise RulesDataError(
                f"offpeak_calendar: default_region {default_region!r} is not one of "
                f"{', '.join(sorted(regions))}"
            )
        ids = [h.id for h in holidays]
        if len(set(ids)) != len(ids):
            raise RulesDataError(f"offpeak_calendar: duplicate holiday ids in {ids}")
        return cls(
            holidays=holidays,
            regions=regions,
            default_region=default_region,
            offpeak_weekdays=weekdays,
            version=version,
        )

    def region(self, region: str | TariffRegion | None = None) -> TariffRegion:
        """Resolve a region id (or ``None`` for the default); :class:`DomainError` if unknown."""
        if isinstance(region, TariffRegion):
            return region
        key = self.default_region if region is None else region
        found = self.regions.get(key)
        if found is None:
            finding = Finding(
                "MKT-2.region",
                f"tariff region {key!r} is not in the off-peak calendar "
                f"(known: {', '.join(sorted(self.regions))})",
            )
            raise DomainError(finding.message, [finding])
        return found

    def offpeak_holidays(self, year: int) -> dict[date, str]:
        """The off-peak holidays of ``year``: date -> Dutch name, in date order (MKT-2)."""
        cached = self._holiday_cache.get(year)
        if cached is None:
            found = sorted((rule.date_in(year), rule.name) for rule in self.holidays)
            cached = dict(found)
            self._holiday_cache[year] = cached
        return dict(cached)

    def is_offpeak_day(self, day: date) -> bool:
        """True when local ``day`` is off-peak all day: an off-peak weekday or a holiday."""
        if day.isoweekday() in self.offpeak_weekdays:
            return True
        cached = self._holiday_cache.get(day.year)
        if cached is None:
            self.offpeak_holidays(day.year)
            cached = self._holiday_cache[day.year]
        return day in cached

    def tariff_at(self, instant_utc: datetime, region: str | TariffRegion | None = None) -> Tariff:
        """The tariff register that counts at ``instant_utc`` in ``region`` (MKT-2).

        Off-peak (T1) all day on weekends and holidays and outside the region's
        working-day window; normal (T2) inside it. Evaluated on Amsterdam wall-clock
        time. A naive datetime raises :class:`DomainError` (MTR-3).
        """
        resolved = self.region(region)
        local = to_local(instant_utc)
        if self.is_offpeak_day(local.date()) or not resolved.is_normal_time(local.time()):
            return Tariff.T1
        return Tariff.T2


def _holiday_rule(raw: Mapping[str, Any]) -> HolidayRule:
    hid = str(raw["id"])
    offset = raw.get("easter_offset_days")
    month, day = raw.get("month"), raw.get("day")
    if (offset is None) == (month is None or day is None):
        raise ValueError(f"holiday {hid!r} needs either month and day or easter_offset_days")
    if month is not None and day is not None:
        date(2000, int(month), int(day))  # a leap year: rejects impossible dates
    return HolidayRule(
        id=hid,
        name=str(raw["name"]),
        month=None if month is None else int(month),
        day=None if day is None else int(day),
        easter_offset_days=None if offset is None else int(offset),
        if_sunday_shift_days=int(raw.get("if_sunday_shift_days", 0)),
    )


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    return time.fromisoformat(str(value))


def _tariff_region(rid: str, raw: Mapping[str, Any]) -> TariffRegion:
    start, end = _clock(raw["normal_from"]), _clock(raw["normal_until"])
    if start.tzinfo is not None or end.tzinfo is not None or not start < end:
        raise ValueError(
            f"region {rid!r}: normal_from must be a local time before normal_until "
            f"(got {start} and {end})"
        )
    return TariffRegion(id=rid, name=str(raw.get("name", rid)), normal_from=start, normal_until=end)


def stored_utc(moment: datetime) -> datetime:
    """A time read back from the register database as aware UTC: PostgreSQL returns it
    aware, SQLite naive (it was written as UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
