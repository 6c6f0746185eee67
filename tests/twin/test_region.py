"""The twin's region, faults and register file (issue 3): realistic, consistent, and
importable by the register without a single refusal."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from meetpunt.domain.connection import normalise_postcode
from meetpunt.domain.ean import is_valid_ean
from meetpunt.register import open_register
from meetpunt.register.csvio import RecordKind, import_file
from meetpunt.rulebook import capacity_classes
from meetpunt.twin.faults import Faults, inject_faults
from meetpunt.twin.model import ConnectionKind, MeterKind, TimeAxis
from meetpunt.twin.registerfile import write_register
from meetpunt.twin.topology import Region, build_region

AXIS = TimeAxis.for_days(date(2025, 6, 2), 30)


@pytest.fixture(scope="module")
def region_and_faults() -> tuple[Region, Faults]:
    region = build_region(600, np.random.default_rng(11))
    return region, inject_faults(region, AXIS, np.random.default_rng(12))


def test_connections_are_sound_and_unique(region_and_faults: tuple[Region, Faults]) -> None:
    region, _ = region_and_faults
    conns = region.connections
    assert len(conns) == 600
    eans = [c.ean for c in conns] + [c.gas_ean for c in conns if c.gas_ean]
    assert len(set(eans)) == len(eans) and all(is_valid_ean(e) for e in eans)
    standard = set(capacity_classes().standard_electricity)
    assert all(c.capacity in standard for c in conns)
    assert all(normalise_postcode(c.postcode) == c.postcode for c in conns)
    assert all((c.phase is None) == (c.capacity.phases == 3) for c in conns)
    kinds = {c.kind for c in conns}
    assert kinds == set(ConnectionKind)
    assert {c.meter for c in conns} == set(MeterKind)  # some without a smart meter
    assert any(c.opt_out for c in conns) and any(c.heat_pump for c in conns)
    assert any(c.pv_kwp for c in conns) and any(c.ev.power_w for c in conns)
    assert region.secondary_points


def test_house_numbers_run_in_street_order_along_the_cable(
    region_and_faults: tuple[Region, Faults],
) -> None:
    region, _ = region_and_faults
    for feeder in region.feeders.values():
        numbers = [region.connections[i].house_number for i in feeder.connections]
        assert numbers == sorted(numbers)
        nodes = [int(region.connections[i].extra["backbone_node"]) for i in feeder.connections]
        order = [feeder.nodes.index(n) for n in nodes]
        assert order == sorted(order)
        assert {region.connections[i].street for i in feeder.connections} == {feeder.street}


def test_outages_cover_both_sides_of_four_hours(region_and_faults: tuple[Region, Faults]) -> None:
    region, faults = region_and_faults
    hours = [(o.end - o.start).total_seconds() / 3600 for o in faults.outages]
    assert any(h > 4 for h in hours) and any(h < 4 for h in hours)
    assert {o.extent for o in faults.outages} >= {
        "whole_feeder",
        "part_of_feeder",
        "single_connection",
        "whole_substation",
    }
    assert any(o.planned for o in faults.outages)
    for outage in faults.outages:
        assert AXIS.start_utc <= outage.start < outage.end
        assert outage.end <= AXIS.start_utc + timedelta(seconds=300 * AXIS.n_steps)
        if outage.feeder:
            assert set(outage.affected) <= set(region.feeders[outage.feeder].connections)
        if outage.extent == "part_of_feeder":
            feeder = region.feeders[outage.feeder or ""]
            assert outage.affected == feeder.connections[-len(outage.affected) :]
    per_outage = {o.id: set(o.affected) for o in faults.outages}
    for cut in faults.interruptions:
        assert cut.index in per_outage[cut.outage_id]
    assert sum(len(o.affected) for o in faults.outages) == len(faults.interruptions)


def test_register_errors_are_recorded(region_and_faults: tuple[Region, Faults]) -> None:
    region, faults = region_and_faults
    kinds = {e["kind"] for e in faults.gis_errors}
    assert "phase" in kinds
    for error in faults.gis_errors:
        conn = region.connections[int(str(error["connection"]))]
        assert error["true"] != error["registered"]
        if error["kind"] == "phase":
            assert conn.registered_phase != conn.phase
    assert {r["kind"] for r in faults.pv_registration} >= {"not_registered", "mismatch"}
    assert faults.contractless and faults.broken_neutral


def test_register_file_imports_without_refusals(
    region_and_faults: tuple[Region, Faults], tmp_path: object
) -> None:
    region, faults = region_and_faults
    from pathlib import Path

    folder = Path(str(tmp_path))
    files = write_register(
        region, faults, AXIS.first_day, folder / "register", np.random.default_rng(5)
    )
    register = open_register(f"sqlite:///{folder / 'r.sqlite'}")
    try:
        for kind in RecordKind:
            with register.session() as s:
                report = import_file(s, files[kind])
            assert report.refused == [], report.refused[:3]
        day = AXIS.first_day
        with register.session() as s:
            for index in sorted(faults.contractless)[:5]:
                assert s.is_contractless(region.connections[index].ean, day)
            for index in sorted(faults.out_of_service_consuming)[:5]:
                version = s.connection_at(region.connections[index].ean, day)
                assert version is not None and version.attributes.status.value == "UBD"
            wrong = next(e for e in faults.gis_errors if e["kind"] == "phase")
            conn = region.connections[int(str(wrong["connection"]))]
            version = s.connection_at(conn.ean, day)
            assert version is not None and version.attributes.grid.phase == wrong["registered"]
            unregistered = next(r for r in faults.pv_registration if r["kind"] == "not_registered")
            version = s.connection_at(
                region.connections[int(str(unregistered["connection"]))].ean, day
            )
            assert version is not None and version.attributes.solar_kwp is None
            assert (
                len(
                    s.secondaries(
                        region.connections[region.secondary_points[0].primary_index].ean, day
                    )
                )
                >= 1
            )
    finally:
        register.dispose()


@pytest.mark.parametrize("seed", range(1, 13))
def test_a_part_of_feeder_fault_darkens_two_houses_or_more_and_not_all(seed: int) -> None:
    """A cable fault that darkened one house only would look exactly like a blown
    cabinet fuse from the meters (seed 8 at 300 x 14 drew one): the cut moves towards
    the substation until at least two houses are beyond it."""
    region = build_region(300, np.random.default_rng([seed, 1]))
    faults = inject_faults(
        region, TimeAxis.for_days(date(2025, 6, 2), 14), np.random.default_rng([seed, 2])
    )
    cable = [o for o in faults.outages if o.cause == "cable_fault"]
    assert cable
    for outage in cable:
        on_feeder = region.feeders[str(outage.feeder)].connections
        if outage.extent == "part_of_feeder":
            assert 2 <= len(outage.affected) < len(on_feeder), outage.id
        else:
            assert sorted(outage.affected) == sorted(on_feeder), outage.id
