"""Outage compensation scheme (MKT-8): classes, thresholds, blocks, exclusions."""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.domain.capacity import (
    CapacityClasses,
    ElectricityCapacity,
    GasCapacity,
    SizeClass,
)
from meetpunt.domain.compensation import (
    BlockRounding,
    CapacityConnection,
    CompensationScheme,
    ConnectionLevel,
    GridLevel,
    OutageConnection,
    VoltageConnection,
)
from meetpunt.errors import DomainError, RulesDataError
from meetpunt.rulebook import compensation_scheme, load_rules

SCHEME = compensation_scheme()
CLASSES = CapacityClasses.from_mapping(load_rules("capacity_classes").body)


def elec(phases: int, amperes: int) -> CapacityConnection:
    return CapacityConnection.classify(ElectricityCapacity(phases, amperes), CLASSES)


def gas(size: str) -> CapacityConnection:
    flow = CLASSES.gas_meter_flow[size]
    return CapacityConnection.classify(GasCapacity(size, flow), CLASSES)


def hm(hours: int, minutes: int = 0) -> timedelta:
    return timedelta(hours=hours, minutes=minutes)


def body() -> dict[str, Any]:
    return copy.deepcopy(load_rules("outage_compensation").body)


HOME = elec(3, 25)
MV_CONN = VoltageConnection(ConnectionLevel.MV)
HV_CONN = VoltageConnection(ConnectionLevel.HV, Decimal(1000))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4))
levels = st.sampled_from([GridLevel.LV, GridLevel.MV, GridLevel.HV])
connections = st.sampled_from(
    [
        *(elec(1, 6), elec(1, 10), elec(1, 40), HOME, elec(3, 35), elec(3, 200)),
        *(gas("G6"), gas("G40"), MV_CONN, HV_CONN),
    ]
)


# --- the required examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "amount", "blocks"),
    [
        (hm(3, 59), "0", 0),
        (hm(4), "0", 0),
        (hm(4, 1), "35", 0),
        (hm(8), "35", 0),
        (hm(8, 1), "55", 1),
        (hm(12), "55", 1),
        (hm(12, 1), "75", 2),
        (hm(13), "75", 2),
        (hm(16), "75", 2),
        (hm(16, 1), "95", 3),
    ],
)
def test_small_connection_examples(duration: timedelta, amount: str, blocks: int) -> None:
    result = SCHEME.compensate(HOME, GridLevel.LV, duration)
    assert result.amount == Decimal(amount)
    assert result.blocks == blocks
    assert result.class_id == "up_to_3x25"
    assert result.threshold == hm(4)
    assert result.scheme_version == "2007-04"
    assert result.currency == "EUR"


def test_exactly_four_hours_is_refused_by_the_threshold_rule() -> None:
    result = SCHEME.compensate(HOME, GridLevel.LV, hm(4))
    assert not result.paid
    assert result.rules == ("MKT-8.threshold",)


def test_paid_result_explains_itself() -> None:
    result = SCHEME.compensate(HOME, GridLevel.MV, hm(13), duration_source="meter_log")
    assert result.paid
    assert result.rules == ("MKT-8",)
    assert "13:00:00" in result.reasons[0].message
    assert result.as_dict() == {
        "amount": "75.00",
        "currency": "EUR",
        "class_id": "up_to_3x25",
        "threshold_seconds": 4 * 3600,
        "blocks": 2,
        "duration_seconds": 13 * 3600.0,
        "rounding": "started",
        "reasons": [r.as_dict() for r in result.reasons],
        "scheme_version": "2007-04",
        "duration_source": "meter_log",
    }


def test_large_lv_connection_mv_fault_after_2h01() -> None:
    result = SCHEME.compensate(elec(3, 35), GridLevel.MV, hm(2, 1))
    assert result.amount == Decimal(195)
    assert result.class_id == "lv_above_3x25"
    assert result.threshold == hm(2)


# --- the classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection", "class_id"),
    [
        (elec(1, 6), "up_to_1x10"),
        (elec(1, 10), "up_to_1x10"),
        (elec(1, 16), "up_to_3x25"),
        (elec(1, 40), "up_to_3x25"),
        (elec(1, 80), "up_to_3x25"),
        (elec(3, 25), "up_to_3x25"),
        (elec(3, 35), "lv_above_3x25"),
        (elec(3, 80), "lv_above_3x25"),
        (elec(3, 1600), "lv_above_3x25"),
        (elec(1, 100), "lv_above_3x25"),  # large single-phase
        (gas("G4"), "up_to_3x25"),
        (gas("G25"), "up_to_3x25"),
        (gas("G40"), "lv_above_3x25"),
        (MV_CONN, "mv"),
        (HV_CONN, "hv"),
    ],
)
def test_class_for(connection: OutageConnection, class_id: str) -> None:
    assert SCHEME.class_for(connection).id == class_id


@pytest.mark.parametrize(
    ("connection", "level", "duration", "amount"),
    [
        (elec(1, 10), GridLevel.LV, hm(4, 1), "10"),
        (elec(1, 10), GridLevel.HV, hm(13), "20"),
        (elec(1, 6), GridLevel.LV, hm(4, 1), "10"),
        (elec(1, 40), GridLevel.LV, hm(4, 1), "35"),
        (gas("G6"), GridLevel.LV, hm(9), "55"),
        (HOME, GridLevel.HV, hm(3), "0"),  # small connections: 4 h whatever the level
        (elec(3, 35), GridLevel.HV, hm(1), "0"),
        (elec(3, 35), GridLevel.HV, hm(1, 1), "195"),
        (elec(3, 35), GridLevel.MV, hm(2), "0"),
        (elec(3, 35), GridLevel.LV, hm(4), "0"),
        (elec(3, 35), GridLevel.LV, hm(4, 1), "195"),
        (elec(3, 35), GridLevel.HV, hm(13), "395"),
        (gas("G40"), GridLevel.LV, hm(4, 1), "195"),
        (MV_CONN, GridLevel.HV, hm(1, 1), "910"),
        (MV_CONN, GridLevel.MV, hm(2), "0"),
        (MV_CONN, GridLevel.MV, hm(2, 1), "910"),
        (MV_CONN, GridLevel.MV, hm(8, 1), "1410"),
        (HV_CONN, GridLevel.HV, hm(1, 1), "350"),
        (HV_CONN, GridLevel.HV, hm(13), "750"),
        (VoltageConnection(ConnectionLevel.HV, Decimal("1234.5")), GridLevel.HV, hm(2), "432.08"),
    ],
)
def test_amounts_per_class(
    connection: OutageConnection, level: GridLevel, duration: timedelta, amount: str
) -> None:
    assert SCHEME.compensate(connection, level, duration).amount == Decimal(amount)


def test_stedin_pays_nothing_up_to_1x6() -> None:
    refused = SCHEME.compensate(elec(1, 6), GridLevel.LV, hm(5), operator="Stedin")
    assert refused.amount == 0
    assert refused.rules == ("MKT-8.up_to_1x6",)
    assert SCHEME.compensate(elec(1, 6), GridLevel.LV, hm(5), operator="Enexis").amount == 10
    assert SCHEME.compensate(elec(1, 10), GridLevel.LV, hm(5), operator="Stedin").amount == 10


@pytest.mark.parametrize(
    ("connection", "level"),
    [(MV_CONN, GridLevel.LV), (HV_CONN, GridLevel.MV), (HV_CONN, GridLevel.LV)],
)
def test_fault_level_without_threshold_is_refused(
    connection: OutageConnection, level: GridLevel
) -> None:
    result = SCHEME.compensate(connection, level, hm(24))
    assert result.amount == 0
    assert result.threshold is None
    assert result.rules == ("MKT-8.grid_level",)


def test_hv_connection_needs_contracted_kw() -> None:
    with pytest.raises(DomainError) as err:
        VoltageConnection(ConnectionLevel.HV)
    assert err.value.rules == ("MKT-8.contracted_kw",)
    with pytest.raises(DomainError):
        VoltageConnection(ConnectionLevel.HV, Decimal(0))


def test_negative_duration_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        SCHEME.compensate(HOME, GridLevel.LV, timedelta(seconds=-1))
    assert err.value.rules == ("MKT-8.duration",)


# --- exclusions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "level", "rule"),
    [
        ({"planned": True}, GridLevel.LV, "MKT-8.planned"),
        ({}, GridLevel.EHV, "MKT-8.grid_220kv"),
        ({"public_lighting": True}, GridLevel.LV, "MKT-8.public_lighting"),
        ({"own_installation": True}, GridLevel.LV, "MKT-8.own_installation"),
    ],
)
@pytest.mark.parametrize("connection", [HOME, elec(3, 35), gas("G40"), MV_CONN, HV_CONN])
def test_exclusions_refuse_with_their_rule(
    flags: dict[str, bool], level: GridLevel, rule: str, connection: OutageConnection
) -> None:
    result = SCHEME.compensate(
        connection,
        level,
        hm(30),
        planned=flags.get("planned", False),
        public_lighting=flags.get("public_lighting", False),
        own_installation=flags.get("own_installation", False),
    )
    assert result.amount == 0
    assert not result.paid
    assert result.blocks == 0
    assert result.rules == (rule,)


def test_all_exclusions_that_apply_are_listed() -> None:
    result = SCHEME.compensate(HOME, GridLevel.EHV, hm(30), planned=True, own_installation=True)
    assert result.rules == ("MKT-8.planned", "MKT-8.grid_220kv", "MKT-8.own_installation")


# --- rounding is data --------------------------------------------------------------------


def complete_scheme() -> CompensationScheme:
    data = body()
    data["scheme"]["block_rounding"] = "complete"
    return CompensationScheme.from_mapping(data, version="test-complete")


@pytest.mark.parametrize(
    ("duration", "amount"),
    [(hm(8, 1), "35"), (hm(12), "55"), (hm(13), "55"), (hm(15, 59), "55"), (hm(16), "75")],
)
def test_complete_blocks_rounding(duration: timedelta, amount: str) -> None:
    scheme = complete_scheme()
    result = scheme.compensate(HOME, GridLevel.LV, duration)
    assert result.amount == Decimal(amount)
    assert result.rounding is BlockRounding.COMPLETE
    assert result.scheme_version == "test-complete"


# --- properties --------------------------------------------------------------------------


@given(connections, levels, durations, durations)
def test_amount_never_decreases_with_duration(
    connection: OutageConnection, level: GridLevel, a: timedelta, b: timedelta
) -> None:
    short, long_ = sorted((a, b))
    assert (
        SCHEME.compensate(connection, level, short).amount
        <= SCHEME.compensate(connection, level, long_).amount
    )


@given(connections, levels, durations)
def test_paid_exactly_when_longer_than_threshold(
    connection: OutageConnection, level: GridLevel, duration: timedelta
) -> None:
    result = SCHEME.compensate(connection, level, duration)
    if result.threshold is None:
        assert result.rules == ("MKT-8.grid_level",)
    else:
        assert result.paid == (duration > result.threshold)


@given(st.sampled_from([elec(1, 10), HOME, elec(3, 35), MV_CONN]), levels, durations)
def test_amount_is_base_plus_step_per_started_block(
    connection: OutageConnection, level: GridLevel, duration: timedelta
) -> None:
    result = SCHEME.compensate(connection, level, duration)
    if not result.paid:
        return
    klass = SCHEME.class_for(connection)
    assert result.amount == klass.base + klass.step * result.blocks
    extra = max(duration - hm(8), timedelta(0))
    assert (result.blocks - 1) * hm(4) < extra <= result.blocks * hm(4) or result.blocks == 0
    assert result.blocks == 0 or extra > timedelta(0)


@given(connections, levels, durations)
def test_started_rounding_never_pays_less_than_complete(
    connection: OutageConnection, level: GridLevel, duration: timedelta
) -> None:
    assert (
        complete_scheme().compensate(connection, level, duration).amount
        <= SCHEME.compensate(connection, level, duration).amount
    )


@given(connections, levels, durations)
def test_planned_work_is_never_paid(
    connection: OutageConnection, level: GridLevel, duration: timedelta
) -> None:
    assert SCHEME.compensate(connection, level, duration, planned=True).amount == 0


# --- the data ----------------------------------------------------------------------------


def test_scheme_comes_from_the_rule_file() -> None:
    meta = load_rules("outage_compensation").meta
    assert SCHEME.version == meta.version
    assert SCHEME.rounding is BlockRounding.STARTED
    assert SCHEME.base_period == hm(8)
    assert SCHEME.block == hm(4)


def test_amounts_in_the_data_drive_the_result() -> None:
    data = body()
    data["classes"]["up_to_3x25"]["base"] = "40.00"
    scheme = CompensationScheme.from_mapping(data)
    assert scheme.compensate(HOME, GridLevel.LV, hm(13)).amount == Decimal(80)


def test_an_exclusion_removed_from_the_data_no_longer_refuses() -> None:
    data = body()
    data["exclusions"] = [e for e in data["exclusions"] if e["circumstance"] != "public_lighting"]
    scheme = CompensationScheme.from_mapping(data)
    assert scheme.compensate(HOME, GridLevel.LV, hm(5), public_lighting=True).amount == 35


def test_a_connection_no_rule_covers_is_a_data_error() -> None:
    data = body()
    data["match"] = [m for m in data["match"] if m.get("level") != "MV"]
    scheme = CompensationScheme.from_mapping(data)
    with pytest.raises(RulesDataError):
        scheme.compensate(MV_CONN, GridLevel.MV, hm(5))


@pytest.mark.parametrize(
    "breakage",
    [
        lambda b: b["scheme"].update(block_rounding="nearest"),
        lambda b: b["scheme"].update(block_hours=0),
        lambda b: b["scheme"].pop("base_period_hours"),
        lambda b: b["classes"]["mv"].update(base="lots"),
        lambda b: b["classes"]["mv"].update(step="-5"),
        lambda b: b["classes"]["mv"].update(thresholds_hours={"XV": 1}),
        lambda b: b["match"].append({"class": "nowhere"}),
        lambda b: b["match"].append({"class": "mv", "commodity": "water"}),
        lambda b: b["exclusions"].append({"circumstance": "rain", "rule": "X", "reason": "x"}),
    ],
)
def test_malformed_data_is_refused(breakage: Any) -> None:
    data = body()
    breakage(data)
    with pytest.raises(RulesDataError):
        CompensationScheme.from_mapping(data)


def test_size_class_decides_small_or_large() -> None:
    assert elec(3, 80).size is SizeClass.SMALL
    assert elec(3, 100).size is SizeClass.LARGE
    assert gas("G25").size is SizeClass.SMALL
    assert gas("G40").size is SizeClass.LARGE
