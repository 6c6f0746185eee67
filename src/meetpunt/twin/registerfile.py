"""The register the twin hands to meetpunt: what the grid operator *believes* (REG-2..8).

Written as the three CSV files ``meetpunt register import`` takes. Registration errors
from :mod:`meetpunt.twin.faults` are in here on purpose (wrong phase or feeder, solar
not registered or wrong); the truth folder says what is really there.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np

from meetpunt.domain.ean import gs1_check_digit
from meetpunt.register.csvio import RecordKind, write_register_files
from meetpunt.twin import watch
from meetpunt.twin.faults import Faults
from meetpunt.twin.model import ConnectionKind, MeterKind, TwinConnection
from meetpunt.twin.topology import MUNICIPALITY, Region


def _gln(n: int) -> str:
    body = f"87100000{n:04d}"
    return body + str(gs1_check_digit(body))


SUPPLIERS = tuple(_gln(n) for n in range(1, 7))
CITY = "Meetdorp"


def _base_row(conn: TwinConnection, commodity: str, since: date) -> dict[str, str]:
    return {
        "ean": conn.ean if commodity == "electricity" else str(conn.gas_ean),
        "commodity": commodity,
        "valid_from": since.isoformat(),
        "status": "IBD",
        "admin_switch": "on",
        "meter_type": "smart" if conn.meter.smart else "ferraris",
        "remote_reading": "administratively_off" if conn.opt_out else "standard",
        "postcode": conn.postcode,
        "house_number": str(conn.house_number),
        "house_number_suffix": "",
        "street": conn.street,
        "city": CITY,
        "municipality": MUNICIPALITY,
        "woz_object_id": conn.woz_object_id,
        "substation": conn.substation,
        "feeder": conn.registered_feeder or conn.feeder,
        "phase": "",
        "customer_type": "household"
        if conn.kind is ConnectionKind.HOUSEHOLD
        else ("micro_enterprise" if conn.kind is ConnectionKind.SHOP else "enterprise"),
        "active_customer": "false",
        "solar_kwp": "",
        "solar_registered_on": "",
    }


def write_register(
    region: Region, faults: Faults, first_day: date, out_dir: Path, rng: np.random.Generator
) -> dict[RecordKind, Path]:
    """Write connections, secondary points and contracts as the register knows them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    connections: list[dict[str, str]] = []
    contracts: list[dict[str, str]] = []
    saps: list[dict[str, str]] = []
    connected_since: dict[int, date] = {}
    for conn in region.connections:
        since = first_day - timedelta(days=int(rng.integers(400, 4000)))
        connected_since[conn.index] = since
        row = _base_row(conn, "electricity", since)
        row["capacity"] = str(conn.capacity)
        if conn.registered_phase is not None and not conn.three_phase:
            row["phase"] = f"L{conn.registered_phase + 1}"
        if conn.registered_pv_kwp:
            row["solar_kwp"] = f"{conn.registered_pv_kwp:g}"
            row["solar_registered_on"] = (since + timedelta(days=200)).isoformat()
            row["active_customer"] = "true"
        if conn.registered_pv_kwp and row["solar_registered_on"] > first_day.isoformat():
            row["solar_registered_on"] = first_day.isoformat()
        connections.append(row)
        if conn.registered_pv_kwp:  # the registration is a later version of the connection
            row_before = dict(row, solar_kwp="", solar_registered_on="", active_customer="false")
            row["valid_from"] = row["solar_registered_on"]
            connections.insert(len(connections) - 1, row_before)
        if conn.index in faults.out_of_service_consuming:
            out = dict(
                row,
                status="UBD",
                admin_switch="on" if watch.admin_switch_on(conn.index) else "off",
                valid_from=(first_day - timedelta(days=int(rng.integers(20, 300)))).isoformat(),
            )
            if out["valid_from"] <= row["valid_from"]:
                out["valid_from"] = (
                    date.fromisoformat(row["valid_from"]) + timedelta(days=1)
                ).isoformat()
            connections.append(out)
        contracts.extend(_contracts(conn, "electricity", since, first_day, faults, rng))
        if conn.gas_ean:
            gas = _base_row(conn, "gas", since)
            gas.update(
                capacity="G6" if conn.kind is not ConnectionKind.HOUSEHOLD else "G4",
                substation="",
                feeder="",
                remote_reading="standard",
            )
            connections.append(gas)
            contracts.extend(_contracts(conn, "gas", since, first_day, faults, rng))
    for point in region.secondary_points:
        primary = region.connections[point.primary_index]
        granted = max(
            first_day - timedelta(days=int(rng.integers(60, 900))),
            connected_since[point.primary_index] + timedelta(days=30),
        )
        saps.append(
            {
                "ean": point.ean,
                "primary_ean": primary.ean,
                "capacity": str(point.capacity),
                "status": "in_service",
                "valid_from": granted.isoformat(),
                "purpose": point.purpose,
            }
        )
        contracts.append(
            {
                "ean": point.ean,
                "commodity": "electricity",
                "supplier": SUPPLIERS[int(rng.integers(0, len(SUPPLIERS)))],
                "contract_holder": "LaadNet BV"
                if "charge" in point.purpose
                else "Zonnecoop Meetdorp UA",
                "contract_type": "dynamic",
                "tariff": "single",
                "start_date": granted.isoformat(),
                "end_date": "",
            }
        )
    rows = {
        RecordKind.CONNECTIONS: connections,
        RecordKind.SECONDARY_POINTS: saps,
        RecordKind.CONTRACTS: contracts,
    }
    return write_register_files(out_dir, rows)


def _contracts(
    conn: TwinConnection,
    commodity: str,
    since: date,
    first_day: date,
    faults: Faults,
    rng: np.random.Generator,
) -> list[dict[str, str]]:
    """One or two contracts from ``since``; contractless ones end before the period."""
    roll = float(rng.random())
    kind = "fixed" if roll < 0.3 else "variable" if roll < 0.8 else "dynamic"
    double = (
        conn.meter is not MeterKind.FERRARIS and commodity == "electricity" and rng.random() < 0.6
    )
    holder = f"Bewoner {conn.street} {conn.house_number}"
    end: date | None = None
    if conn.index in faults.contractless or conn.index in faults.out_of_service_consuming:
        end = first_day - timedelta(days=int(rng.integers(5, 120)))
        end = max(end, since + timedelta(days=30))
    elif kind == "fixed":
        end = first_day + timedelta(days=int(rng.integers(60, 900)))
    start = watch.new_contract_from(conn.index, first_day)  # UC15: a contract mid-run
    if start is not None and end is not None:
        start = max(start, end)
    later: list[dict[str, str]] = []
    if conn.index in faults.contractless and commodity == "electricity" and start is not None:
        later.append(
            {
                "ean": conn.ean,
                "commodity": commodity,
                "supplier": SUPPLIERS[0],
                "contract_holder": f"Nieuwe bewoner {conn.street} {conn.house_number}",
                "contract_type": "variable",
                "tariff": "single",
                "start_date": start.isoformat(),
                "end_date": "",
            }
        )
    return [
        {
            "ean": conn.ean if commodity == "electricity" else str(conn.gas_ean),
            "commodity": commodity,
            "supplier": SUPPLIERS[int(rng.integers(0, len(SUPPLIERS)))],
            "contract_holder": holder,
            "contract_type": kind,
            "tariff": "double" if double else "single",
            "start_date": since.isoformat(),
            "end_date": end.isoformat() if end else "",
        },
        *later,
    ]
