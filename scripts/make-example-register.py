"""Write the small example register that `meetpunt demo` loads (run once, commit the CSVs).

The EANs are made with meetpunt's own generator from a fictitious prefix, so they are
valid but belong to no real connection.
"""

from __future__ import annotations

from pathlib import Path

from meetpunt.domain.ean import ean_from_serial, gs1_check_digit
from meetpunt.register.csvio import RecordKind, write_register_files

OUT = Path(__file__).resolve().parent.parent / "src/meetpunt/data/example_register"
SUPPLIERS = {
    name: f"87100000{n:04d}" + str(gs1_check_digit(f"87100000{n:04d}"))
    for n, name in enumerate(["A", "B", "C"], 1)
}


def ean(n: int) -> str:
    return ean_from_serial("87123456", n)


def main() -> None:
    base = {
        "admin_switch": "on",
        "meter_type": "smart",
        "remote_reading": "standard",
        "city": "Eindhoven",
        "municipality": "Eindhoven",
        "substation": "OS-Strijp",
        "active_customer": "false",
        "house_number_suffix": "",
        "solar_kwp": "",
        "solar_registered_on": "",
        "phase": "",
    }
    c = []

    def conn(n: int, **kw: str) -> None:
        row = dict(base) | {"ean": ean(n), "commodity": "electricity", "status": "IBD"} | kw
        c.append(row)

    street = {"street": "Torenallee", "postcode": "5617BD"}
    conn(
        1,
        valid_from="2024-01-01",
        capacity="1x35",
        house_number="10",
        phase="L1",
        woz_object_id="077200010010",
        feeder="OS-Strijp/K1",
        customer_type="household",
        **street,
    )
    conn(
        1,
        valid_from="2024-05-01",
        capacity="1x35",
        house_number="10",
        phase="L1",
        woz_object_id="077200010010",
        feeder="OS-Strijp/K1",
        customer_type="household",
        solar_kwp="4.2",
        solar_registered_on="2024-05-01",
        active_customer="true",
        **street,
    )
    conn(
        2,
        valid_from="2023-06-01",
        capacity="3x25",
        house_number="12",
        woz_object_id="077200010012",
        feeder="OS-Strijp/K1",
        customer_type="household",
        **street,
    )
    conn(
        3,
        valid_from="2022-03-15",
        capacity="1x25",
        house_number="14",
        phase="L2",
        meter_type="ferraris",
        woz_object_id="077200010014",
        feeder="OS-Strijp/K1",
        customer_type="household",
        **street,
    )
    conn(
        4,
        valid_from="2021-09-01",
        capacity="1x35",
        house_number="16",
        phase="L3",
        remote_reading="administratively_off",
        woz_object_id="077200010016",
        feeder="OS-Strijp/K1",
        customer_type="household",
        **street,
    )
    shop = {"street": "Glaslaan", "postcode": "5616LW"}
    conn(
        5,
        valid_from="2020-01-01",
        capacity="3x35",
        house_number="2",
        woz_object_id="077200020002",
        feeder="OS-Strijp/K2",
        customer_type="micro_enterprise",
        **shop,
    )
    conn(
        6,
        valid_from="2019-05-01",
        capacity="3x80",
        house_number="4",
        house_number_suffix="A",
        woz_object_id="077200020004",
        feeder="OS-Strijp/K2",
        customer_type="enterprise",
        **shop,
    )
    conn(
        7,
        valid_from="2022-11-01",
        capacity="3x50",
        house_number="6",
        woz_object_id="077200020006",
        feeder="OS-Strijp/K2",
        customer_type="micro_enterprise",
        **shop,
    )
    conn(
        8,
        valid_from="2018-02-01",
        capacity="3x250",
        house_number="8",
        woz_object_id="077200020008",
        feeder="OS-Strijp/MS1",
        customer_type="enterprise",
        **shop,
    )
    conn(
        9,
        valid_from="2015-01-01",
        capacity="1x40",
        house_number="18",
        phase="L2",
        woz_object_id="077200010018",
        feeder="OS-Strijp/K1",
        customer_type="household",
        **street,
    )
    conn(
        9,
        valid_from="2026-03-01",
        capacity="1x40",
        house_number="18",
        phase="L2",
        status="UBD",
        admin_switch="off",
        woz_object_id="077200010018",
        feeder="OS-Strijp/K1",
        customer_type="household",
        **street,
    )
    for n, nr, size in ((11, "10", "G4"), (12, "12", "G6"), (13, "2", "G16")):
        row = dict(base) | {
            "ean": ean(n),
            "commodity": "gas",
            "status": "IBD",
            "valid_from": "2020-01-01",
            "capacity": size,
            "house_number": nr,
            "feeder": "",
            "substation": "",
            "customer_type": "micro_enterprise" if n == 13 else "household",
        }
        row |= shop if n == 13 else street
        row["woz_object_id"] = f"0772000{'2' if n == 13 else '1'}00{int(nr):02d}"
        c.append(row)

    saps = [
        {
            "ean": ean_from_serial("87123457", k),
            "primary_ean": ean(6),
            "capacity": "3x25",
            "status": "in_service",
            "valid_from": "2023-01-01",
            "purpose": f"tenant {k}",
        }
        for k in range(1, 6)
    ]
    saps.append(
        {
            "ean": ean_from_serial("87123457", 6),
            "primary_ean": ean(5),
            "capacity": "1x40",
            "status": "in_service",
            "valid_from": "2024-04-01",
            "purpose": "public charge point (charge point operator)",
        }
    )

    def contract(
        e: str,
        s: str,
        holder: str,
        ctype: str,
        tariff: str,
        start: str,
        end: str = "",
        commodity: str = "electricity",
    ) -> dict[str, str]:
        return {
            "ean": e,
            "commodity": commodity,
            "supplier": SUPPLIERS[s],
            "contract_holder": holder,
            "contract_type": ctype,
            "tariff": tariff,
            "start_date": start,
            "end_date": end,
        }

    k = [
        contract(ean(1), "A", "J. de Vries", "variable", "double", "2024-01-01"),
        contract(ean(2), "B", "A. Jansen", "dynamic", "single", "2023-06-01"),
        contract(ean(3), "A", "P. Bakker", "fixed", "single", "2022-03-15", "2026-07-01"),
        contract(ean(4), "C", "M. Visser", "variable", "double", "2021-09-01"),
        contract(ean(5), "B", "Bakkerij Glaslaan", "fixed", "double", "2024-01-01", "2027-01-01"),
        contract(ean(6), "C", "Kantoorpand Glaslaan BV", "variable", "double", "2019-05-01"),
        contract(ean(7), "A", "Fietsenmaker Strijp", "variable", "single", "2022-11-01"),
        contract(ean(8), "B", "Supermarkt Strijp BV", "dynamic", "double", "2018-02-01"),
        contract(ean(9), "A", "L. Smit", "variable", "single", "2015-01-01", "2026-03-01"),
        contract(ean(11), "A", "J. de Vries", "variable", "single", "2020-01-01", commodity="gas"),
        contract(ean(12), "B", "A. Jansen", "dynamic", "single", "2020-01-01", commodity="gas"),
        contract(
            ean(13),
            "B",
            "Bakkerij Glaslaan",
            "fixed",
            "single",
            "2024-01-01",
            "2027-01-01",
            commodity="gas",
        ),
    ]
    for n, sap in enumerate(saps[:5], 1):
        k.append(
            contract(sap["ean"], "ABC"[n % 3], f"Tenant {n} BV", "variable", "single", "2023-01-01")
        )
    k.append(contract(saps[5]["ean"], "C", "LaadNet BV", "dynamic", "single", "2024-04-01"))

    write_register_files(
        OUT,
        {RecordKind.CONNECTIONS: c, RecordKind.SECONDARY_POINTS: saps, RecordKind.CONTRACTS: k},
    )


if __name__ == "__main__":
    main()
