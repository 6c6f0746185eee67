"""The dynamic price file (MKT-1): meetpunt's layout, the day-ahead export, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from meetpunt.errors import MarketError
from meetpunt.market.pricefile import parse_prices, read_prices

D = Decimal


def test_quarter_hour_file_in_eur_per_mwh() -> None:
    text = (
        "start_utc,price_eur_per_mwh\n"
        "2026-10-01T00:00:00Z,80.0\n2026-10-01T00:15:00Z,90\n"
        "2026-10-01T00:30:00+00:00,-5.5\n2026-10-01T00:45:00Z,100\n"
    )
    prices = parse_prices(text)
    assert prices.slot == timedelta(minutes=15)
    assert prices.price_at(datetime(2026, 10, 1, 0, 20, tzinfo=UTC)) == D("0.090")
    assert prices.price_at(datetime(2026, 10, 1, 0, 30, tzinfo=UTC)) == D("-0.0055")
    with pytest.raises(MarketError) as caught:
        prices.price_at(datetime(2026, 10, 1, 1, 0, tzinfo=UTC))
    assert caught.value.findings[0].rule == "MKT-1.dynamic_price_missing"


def test_day_ahead_export_hourly_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "da.csv"
    path.write_text(
        '\ufeff"MTU (UTC)";"Day-ahead Price [EUR/MWh]";"Currency"\n'
        '"01.10.2025 00:00 - 01.10.2025 01:00";"85,10";"EUR"\n'
        '"01.10.2025 01:00 - 01.10.2025 02:00";"79,90";"EUR"\n',
        encoding="utf-8",
    )
    prices = read_prices(path)
    assert prices.slot == timedelta(hours=1)
    assert prices.price_at(datetime(2025, 10, 1, 1, 59, tzinfo=UTC)) == D("0.07990")


def test_daily_gas_prices_by_local_day() -> None:
    prices = parse_prices("start_utc,price_eur_per_m3\n2026-10-01,0.45\n2026-10-02,0.47\n")
    # 23:30 UTC on 1 October is 01:30 local on 2 October
    assert prices.price_at(datetime(2026, 10, 1, 23, 30, tzinfo=UTC)) == D("0.47")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start_utc,price_eur_per_kwh\n2026-10-01T02:00:00+02:00,0.1\n", "not in UTC"),
        ("start_utc,price_eur_per_kwh\n2026-10-01T00:00:00,0.1\n", "not in UTC"),
        ("start_utc,price_eur_per_kwh\n2026-10-01T00:00:00Z,\n", "line 2: the price is empty"),
        ("start_utc,price_eur_per_kwh\n2026-10-01T00:00:00Z,abc\n", "not a number"),
        ("when,price\n2026-10-01T00:00:00Z,0.1\n", "header"),
        ("start_utc,price_eur_per_kwh\n", "no prices"),
        (
            "start_utc,price_eur_per_kwh\n2026-10-01T00:00:00Z,0.1\n2026-10-01T00:00:00Z,0.2\n",
            "line 3: .* appears twice",
        ),
        (
            "start_utc,price_eur_per_kwh\n2026-10-01T00:00:00Z,0.1\n"
            "2026-10-01T00:15:00Z,0.1\n2026-10-01T01:15:00Z,0.1\n",
            "neither all a quarter-hour nor all an hour",
        ),
    ],
)
def test_bad_price_files_are_refused_naming_the_line(text: str, expected: str) -> None:
    with pytest.raises(MarketError, match=expected) as caught:
        parse_prices(text)
    assert caught.value.findings[0].rule == "MKT-1.price_file"
