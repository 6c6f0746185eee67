"""The register as the hub sees it (design rule 5, internal keys), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from meetpunt.domain.capacity import Commodity
from meetpunt.register import Register
from tests.meterdata.conftest import E_CHANGES, GAS
from tests.unit.domain.factories import attributes


def test_meter_index_lists_every_version_with_its_id_and_capacity(register: Register) -> None:
    with register.session() as s:
        s.record_connection(E_CHANGES, Commodity.ELECTRICITY, attributes("1x35"), date(2020, 1, 1))
        s.record_connection(E_CHANGES, Commodity.ELECTRICITY, attributes("3x25"), date(2025, 6, 1))
        s.record_connection(GAS, Commodity.GAS, attributes("G4", Commodity.GAS), date(2021, 1, 1))
        index = s.meter_index()
    assert [(e.ean, e.commodity, e.valid_from, e.valid_to, e.capacity) for e in index] == [
        (E_CHANGES, Commodity.ELECTRICITY, date(2020, 1, 1), date(2025, 6, 1), "1x35"),
        (E_CHANGES, Commodity.ELECTRICITY, date(2025, 6, 1), None, "3x25"),
        (GAS, Commodity.GAS, date(2021, 1, 1), None, "G4"),
    ]
    assert index[0].connection_id == index[1].connection_id != index[2].connection_id
