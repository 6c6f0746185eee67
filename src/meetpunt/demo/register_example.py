"""``meetpunt demo --register-example``: a walk through the example register.

It builds the small example register shipped with meetpunt in a fresh SQLite file,
assesses a few secondary-allocation-point requests (REG-5), takes a connection out of
service so its SAPs lapse, and shows the register as it stands.
"""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from meetpunt.domain.allocation import SapRequest
from meetpunt.domain.capacity import Commodity, require_electricity_capacity, size_class
from meetpunt.domain.connection import PhysicalStatus
from meetpunt.register.csvio import RecordKind, import_csv
from meetpunt.register.engine import open_register
from meetpunt.register.store import RegisterSession

EXAMPLE_DAY = date(2026, 11, 23)


def run_register_example(console: Console, folder: Path) -> Path:
    """Build the example register in ``folder`` and show it."""
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "example-register.sqlite"
    db_path.unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    register = open_register(url)
    console.rule("[bold]meetpunt demo --register-example[/bold]: the connection register")
    try:
        examples = resources.files("meetpunt.data").joinpath("example_register")
        for kind in RecordKind:
            with register.session() as session:
                text = examples.joinpath(f"{kind.value}.csv").read_text(encoding="utf-8")
                report = import_csv(session, text, f"example_register/{kind.value}.csv")
            console.print(
                f"imported {report.source}: {report.inserted + report.changed} records, "
                f"{len(report.refused)} refused"
            )
        with register.session() as session:
            _show_register(console, session, EXAMPLE_DAY)
            _sap_requests(console, session, EXAMPLE_DAY)
            _lapse(console, session, EXAMPLE_DAY)
            _contractless(console, session)
    finally:
        register.dispose()
    program = "meetpunt"
    console.print(
        f"\nThe register is in [bold]{db_path}[/bold]. Look around with, e.g.:\n"
        f"  {program} register show <EAN> --at 2026-01-01 --db {url}\n"
        f"  {program} register export --out out/register --db {url}",
        soft_wrap=True,
    )
    return db_path


def _show_register(console: Console, session: RegisterSession, day: date) -> None:
    table = Table(title=f"Connections on {day}")
    table.add_column("EAN", no_wrap=True, min_width=18)
    for column in ("", "address", "capacity", "class", "status", "meter", "contract"):
        table.add_column(column)
    for version in session.connection_versions(on=day):
        a = version.attributes
        contract = session.contract_on(version.ean, day, version.commodity)
        if contract is not None:
            contract_text = f"{contract.contract_type.value}/{contract.tariff.value}"
        elif a.in_service:
            contract_text = "[red]contractless[/red]"
        else:
            contract_text = "-"
        saps = (
            session.secondaries(version.ean, day)
            if version.commodity is Commodity.ELECTRICITY
            else []
        )
        if saps:
            contract_text += f" + {len(saps)} SAP"
        table.add_row(
            version.ean,
            "E" if version.commodity is Commodity.ELECTRICITY else "G",
            f"{a.address.street} {a.address.house_number}{a.address.house_number_suffix}",
            str(a.capacity),
            size_class(a.capacity, session.rules.classes).value,
            a.status.value,
            a.meter_type.value + (" (remote off)" if a.remote_reading.value != "standard" else ""),
            contract_text,
        )
    console.print(table)


def _by_address(session: RegisterSession, day: date, street: str, number: int) -> str:
    for version in session.connection_versions(on=day):
        address = version.attributes.address
        if (
            version.commodity is Commodity.ELECTRICITY
            and address.street == street
            and address.house_number == number
        ):
            return version.ean
    raise LookupError(f"example register has no electricity connection at {street} {number}")


def _sap_requests(console: Console, session: RegisterSession, day: date) -> None:
    cases = [
        (
            "Glaslaan 2 (3x35 A) asks 3x25 A",
            "Glaslaan",
            2,
            SapRequest(require_electricity_capacity("3x25"), purpose="solar cooperative"),
        ),
        (
            "Torenallee 12 (3x25 A) asks 1x40 A",
            "Torenallee",
            12,
            SapRequest(require_electricity_capacity("1x40")),
        ),
        (
            "Glaslaan 4A (3x80 A, 5 SAPs) asks a 6th",
            "Glaslaan",
            4,
            SapRequest(require_electricity_capacity("3x25")),
        ),
        (
            "Torenallee 10 (1x35 A) asks 1x25 A to sub-let a room",
            "Torenallee",
            10,
            SapRequest(require_electricity_capacity("1x25"), residential=True, same_cabinet=False),
        ),
    ]
    table = Table(title="Requests for an extra metering point (REG-5)")
    table.add_column("request")
    table.add_column("decision", min_width=18)
    table.add_column("rule", no_wrap=True)
    table.add_column("why")
    for label, street, number, request in cases:
        decision = session.request_sap(_by_address(session, day, street, number), request, day)
        if decision.granted:
            table.add_row(label, f"[green]granted[/green] {decision.ean}", "", "")
        for i, reason in enumerate(decision.reasons):
            table.add_row(
                label if i == 0 else "",
                "[red]refused[/red]" if i == 0 else "",
                reason.rule,
                reason.message,
            )
    console.print(table)


def _lapse(console: Console, session: RegisterSession, day: date) -> None:
    ean = _by_address(session, day, "Glaslaan", 2)
    out_on = day + timedelta(days=7)
    session.set_status(ean, PhysicalStatus.OUT_OF_SERVICE, out_on)
    table = Table(title=f"Glaslaan 2 goes out of service on {out_on}: its SAPs lapse (REG-5)")
    table.add_column("SAP", no_wrap=True, min_width=18)
    for column in ("purpose", f"status {day}", f"status {out_on}"):
        table.add_column(column)
    before = {p.ean: p for p in session.secondaries(ean, day)}
    after = {p.ean: p for p in session.secondaries(ean, out_on)}
    for sap_ean, point in before.items():
        table.add_row(sap_ean, point.purpose, point.status.value, after[sap_ean].status.value)
    console.print(table)


def _contractless(console: Console, session: RegisterSession) -> None:
    ean = _by_address(session, EXAMPLE_DAY, "Torenallee", 14)
    for day in (date(2026, 6, 30), date(2026, 7, 1)):
        state = "contractless" if session.is_contractless(ean, day) else "has a contract"
        console.print(f"Torenallee 14 on {day}: {state}")
