"""``meetpunt demo``: the whole chain on a generated region, on the embedded default.

twin -> register import -> meter-data hub -> privacy gate -> UC1, UC4, UC9, UC7 -> scores
against the twin's truth, the audit log, and an HTML report with the outage maps.

The twin's month is replayed in order: each customer's outage report (the twin's
``operator/outage_reports.csv``) is localised (UC1) at the moment it came in, and the
day after the month UC9 registers the interruptions and UC4 pays the compensation
(planned works from ``operator/planned_works.csv`` left out); UC7 then finds each
substation's cables and phases from the last 10 days' voltages. One demonstration
request the gate must refuse (UC1 asking for quarter-hour values) shows the gate at
work. Every read goes through the gate, and the audit log is checked to hold exactly
the use cases' decisions and reads.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress, TaskID

from meetpunt.app.gate import open_gate
from meetpunt.app.hub import hub_store, ingest_paths
from meetpunt.app.register import import_register_files, register_at
from meetpunt.cli.common import progress_bar
from meetpunt.demo import grid_checks, uc10_uc15, voltage
from meetpunt.demo import uc07 as demo_uc07
from meetpunt.demo import uc08 as demo_uc08
from meetpunt.demo.report import write_report
from meetpunt.demo.score import Score, Truth, score_uc1, score_uc4, score_uc9
from meetpunt.demo.uc07 import run_uc07, score_uc07
from meetpunt.demo.uc08 import run_uc08, score_uc08
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.errors import MeetpuntError
from meetpunt.io.files import find_sources
from meetpunt.privacy import audit
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import open_register
from meetpunt.register.csvio import ImportReport
from meetpunt.twin.generate import TwinSettings, generate
from meetpunt.usecases.planned_works import read_planned
from meetpunt.usecases.uc01_outage_localisation import Uc01Result, localise
from meetpunt.usecases.uc04_outage_compensation import Uc04Result, compensate
from meetpunt.usecases.uc07_gis_topology import Uc07Result
from meetpunt.usecases.uc08_vzc import Uc08Result
from meetpunt.usecases.uc09_interruption_registration import Uc09Result, register_interruptions

_T = TypeVar("_T")
OPERATOR = Party("8716874000009", Role.GRID_OPERATOR, "Netbeheer Meetdorp")
REGISTER_FILES = ("connections", "secondary_allocation_points", "contracts")
MORNING_AFTER = timedelta(hours=8)
"""UC4 and UC9 run at 08:00 UTC on the day after the month."""


@dataclass(frozen=True)
class DemoSettings:
    """What the demo generates and where it writes (``folder`` is emptied first)."""

    folder: Path
    connections: int = 1000
    days: int = 30
    start: date = date(2025, 6, 2)
    seed: int = 1
    faults: str = "showcase"
    """The twin's outage mode (``--faults``): showcase, field or stress."""
    meter_realities: bool | None = None
    """The twin's meter realities (issue 16); None: on unless ``showcase``."""

    @property
    def period(self) -> Period:
        return Period(
            local_midnight_utc(self.start),
            local_midnight_utc(self.start + timedelta(days=self.days)),
        )


@dataclass(frozen=True)
class Step:
    """One stage of the chain, what it did and how long it took."""

    name: str
    seconds: float
    summary: str


@dataclass(frozen=True)
class OutageReport:
    """A customer's call to the outage line (the twin's ``operator/outage_reports.csv``)."""

    ean: str
    at: datetime
    channel: str


@dataclass(frozen=True)
class AuditSummary:
    """The audit log after the demo: decisions and reads per use case, the chain check,
    and whether it holds exactly what the demo asked for (PRV-7)."""

    counts: dict[tuple[str, str, str], int]
    findings: tuple[str, ...]
    head: tuple[int, str]
    expected: dict[tuple[str, str, str], int]

    @property
    def as_expected(self) -> bool:
        return self.counts == self.expected and not self.findings


@dataclass
class DemoRun:
    """Everything the demo did, for the console summary and the HTML report."""

    settings: DemoSettings
    steps: list[Step] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    reports: list[OutageReport] = field(default_factory=list)
    uc1: list[Uc01Result] = field(default_factory=list)
    uc4: Uc04Result | None = None
    uc9: Uc09Result | None = None
    uc8: Uc08Result | None = None
    uc7: list[Uc07Result] = field(default_factory=list)
    refusal: Decision | None = None
    voltage: voltage.VoltageRun | None = None
    scores: list[Score] = field(default_factory=list)
    audit: AuditSummary | None = None
    report_path: Path | None = None
    uc10_uc15: uc10_uc15.Uc10Uc15Run | None = None  # issue 20
    grid_checks: grid_checks.GridChecks | None = None

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.settings.folder / 'register.sqlite'}"

    @property
    def store_path(self) -> Path:
        return self.settings.folder / "meterdata.duckdb"

    @property
    def twin(self) -> Path:
        return self.settings.folder / "twin"

    def require_uc4(self) -> Uc04Result:
        return _ran(self.uc4, "UC4")

    def require_uc9(self) -> Uc09Result:
        return _ran(self.uc9, "UC9")

    def require_audit(self) -> AuditSummary:
        return _ran(self.audit, "the audit check")


def _ran(value: _T | None, what: str) -> _T:
    if value is None:
        raise MeetpuntError(f"the demo has not run {what} yet")
    return value


class _Clock:
    """The gate's clock during the replay: set to each moment before asking."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def read_reports(path: Path) -> list[OutageReport]:
    """The outage reports of ``path`` (ean, reported_at, channel), in time order."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [
            OutageReport(r["ean"], datetime.fromisoformat(r["reported_at"]), r["channel"])
            for r in csv.DictReader(handle)
        ]
    return sorted(rows, key=lambda r: (r.at, r.ean))


@contextmanager
def _timed(run: DemoRun, name: str) -> Iterator[Callable[[str], None]]:
    """Time a step; the block calls the yielded function with its one-line summary."""
    said: list[str] = []
    began = time.perf_counter()
    yield said.append
    seconds = time.perf_counter() - began
    run.seconds[name] = seconds
    run.steps.append(Step(name, seconds, said[-1] if said else ""))


def _fresh(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("twin", "letters", "maps", "voltage"):
        shutil.rmtree(folder / name, ignore_errors=True)
    for name in ("register.sqlite", "meterdata.duckdb", "meterdata.duckdb.wal", "report.html"):
        (folder / name).unlink(missing_ok=True)


def build(run: DemoRun, console: Console) -> None:
    """Generate the twin, import its register and ingest its meter data (progress bars)."""
    s = run.settings
    with progress_bar(console, 28) as bar:
        twin_task = bar.add_task("twin", total=1.0)

        def twin_progress(stage: str, done: float) -> None:
            bar.update(twin_task, description=f"twin: {stage}", completed=done)

        with _timed(run, "twin") as say:
            made = generate(
                TwinSettings(s.connections, s.days, s.start, s.seed, s.faults, s.meter_realities),
                run.twin,
                twin_progress,
            )
            say(
                f"{s.connections} connections x {s.days} days from {s.start} (seed {s.seed}, "
                f"{s.faults} outages): "
                f"{len(made.files)} files, {made.power_flows:,} power flows"
            )
        _import_register(run, bar)
        _ingest(run, bar)


def _import_register(run: DemoRun, bar: Progress) -> None:
    task = bar.add_task("register import", total=len(REGISTER_FILES))
    with _timed(run, "register") as say:
        rows = refused = 0

        def done(path: Path, report: ImportReport) -> None:
            nonlocal rows, refused
            rows += report.rows
            refused += len(report.refused)
            bar.update(task, description=f"register: {path.stem}")
            bar.advance(task)

        with register_at(run.db_url) as register:
            files = [run.twin / "register" / f"{name}.csv" for name in REGISTER_FILES]
            import_register_files(register, files, done)
        say(f"{rows:,} rows from {len(REGISTER_FILES)} files, {refused} refused")


def _ingest(run: DemoRun, bar: Progress) -> None:
    sources = find_sources([run.twin / "meterdata"])
    task: TaskID = bar.add_task("ingest", total=len(sources))
    with _timed(run, "ingest") as say:
        register = open_register(run.db_url)
        try:
            with hub_store(run.store_path) as store:

                def begin(source: str) -> None:
                    bar.update(task, description=f"ingest: {Path(source).name}")

                reports = ingest_paths(store, register, [run.twin / "meterdata"], on_begin=begin)
        finally:
            register.dispose()
        bar.update(task, completed=len(sources))
        accepted = sum(r.total("accepted") for r in reports)
        quarantined: Counter[str] = Counter()
        for r in reports:
            quarantined.update(r.quarantined)
        held = ", ".join(f"{n} {rule}" for rule, n in quarantined.most_common()) or "none"
        say(f"{accepted:,} values accepted from {len(reports)} files; quarantined: {held}")


def analyse(run: DemoRun) -> None:
    """Replay the month through the gate: UC1 per report, then UC9 and UC4."""
    s = run.settings
    run.reports = read_reports(run.twin / "operator" / "outage_reports.csv")
    planned = read_planned(run.twin / "operator" / "planned_works.csv")
    clock = _Clock(s.period.start)
    with open_gate(run.db_url, run.store_path, clock=clock) as gate:
        with _timed(run, "UC1") as say:
            for report in run.reports:
                clock.now = report.at + timedelta(minutes=1)
                trigger = f"outage report by {report.channel} from {report.ean}"
                run.uc1.append(localise(gate, OPERATOR, report.ean, report.at, trigger, planned))
                if run.refusal is None:
                    run.refusal = _overreach(gate, report, trigger)
            say(f"{len(run.uc1)} reports localised")
        after = s.period.end + MORNING_AFTER
        clock.now = after
        trigger = f"outage incidents of {s.start:%B %Y}: interruption registration"
        with _timed(run, "UC9") as say:
            run.uc9 = register_interruptions(
                gate, OPERATOR, s.period, after, trigger, planned=planned
            )
            say(f"{len(run.uc9.outages)} outages registered")
        with _timed(run, "UC4") as say:
            trigger = f"outage incidents of {s.start:%B %Y}: compensation"
            run.uc4 = compensate(gate, OPERATOR, s.period, after, trigger, planned)
            say(f"{len(run.uc4.payments)} payments, {len(run.uc4.letters)} letters")
        with _timed(run, "UC7") as say:
            stations = pq.read_table(run.twin / "operator" / "substation_measurements.parquet")
            run.uc7 = run_uc07(gate, OPERATOR, s.period, after, s.folder / "uc07", stations)
            say(f"{sum(len(r.corrections) for r in run.uc7)} GIS corrections proposed")
        with _timed(run, "UC8") as say:
            run.uc8 = run_uc08(gate, OPERATOR, s.period, after)
            say(f"{len(run.uc8.invoices)} VZC invoices")
        with _timed(run, "UC10/UC15") as say:  # issue 20
            run.uc10_uc15 = uc10_uc15.analyse(run, gate, OPERATOR, after)
            say(uc10_uc15.summary(run.uc10_uc15))
        with _timed(run, "UC5/UC12") as say:
            run.grid_checks = grid_checks.run_stage(
                gate, OPERATOR, run.twin, s.period, lambda t: setattr(clock, "now", t)
            )
            say(grid_checks.summary(run.grid_checks))
        with _timed(run, "UC2") as say:
            run.voltage = voltage.run_uc2(gate, OPERATOR, s.period, after, say)
        with _timed(run, "UC3") as say:
            voltage.run_uc3(run.voltage, gate, OPERATOR, after, say)


def _overreach(gate: Gate, report: OutageReport, trigger: str) -> Decision:
    """A request the gate must refuse: UC1 may ask voltage presence, not consumption."""
    answer = gate.request(
        AccessRequest(
            OPERATOR,
            "UC1",
            (report.ean,),
            frozenset({"quarter_hours"}),
            Period(report.at - timedelta(hours=12), report.at + timedelta(hours=12)),
            report.at,
            justification="demonstration: UC1 asking for quarter-hour values",
            trigger=trigger,
        )
    )
    if not isinstance(answer, Decision) or answer.granted:
        raise MeetpuntError("the gate granted UC1 quarter-hour values; it must refuse them")
    return answer


def check_audit(run: DemoRun) -> AuditSummary:
    """What the audit log holds after the demo, against what the demo asked for."""
    register = open_register(run.db_url)
    try:
        with register.session() as session:
            records = audit.records(session.db)
            findings = tuple(f"{f.rule}: {f.message}" for f in audit.verify(session.db))
            head = audit.head(session.db)
    finally:
        register.dispose()
    counts = Counter((r.entry.purpose, r.entry.event, r.entry.outcome) for r in records)
    expected = {
        ("UC1", "decision", "granted"): len(run.uc1),
        ("UC1", "read", "read"): sum(r.reads for r in run.uc1),
        ("UC9", "decision", "granted"): 1,
        ("UC9", "read", "read"): 1,
        ("UC4", "decision", "granted"): 1,
        ("UC4", "read", "read"): 1,
    }
    expected.update(demo_uc07.expected_audit(run.uc7))
    if run.refusal is not None:
        expected[("UC1", "decision", "refused")] = 1
    if run.uc8 is not None:
        expected.update(demo_uc08.expected_audit(run.uc8))
    expected.update(uc10_uc15.expected_audit(run, run.uc10_uc15))  # issue 20
    expected.update(grid_checks.expected_audit(run.grid_checks))
    if run.voltage is not None:
        expected.update(run.voltage.expected_audit())
    return AuditSummary(dict(counts), findings, head, {k: v for k, v in expected.items() if v})


def score(run: DemoRun, truth: Truth) -> None:
    """Each use case against the twin's truth; UC9 on the population it asked."""
    register = open_register(run.db_url)
    try:
        with register.session() as session:
            asked = next(
                r.entry.connections
                for r in audit.records(session.db)
                if r.entry.purpose == "UC9" and r.entry.event == "decision"
            )
    finally:
        register.dispose()
    run.scores = [
        score_uc1(run.uc1, truth),
        score_uc4(run.require_uc4(), truth),
        score_uc9(run.require_uc9(), truth, asked),
        score_uc07(run.uc7, truth.connections),
    ]
    if run.uc8 is not None:
        run.scores.append(score_uc08(run.uc8, truth, run.twin))
    run.scores += uc10_uc15.scores(run, truth, run.uc10_uc15)  # issue 20
    run.scores += grid_checks.scores(run.grid_checks, run.twin, truth)
    if run.voltage is not None:
        run.scores += voltage.scores(run.voltage, run.twin)


def write_letters(run: DemoRun) -> Path:
    """UC4's letters, one text file per payment, in ``letters/``."""
    folder = run.settings.folder / "letters"
    folder.mkdir(parents=True, exist_ok=True)
    for letter in run.require_uc4().letters:
        (folder / f"{letter.ean}-{letter.outage_id}.txt").write_text(letter.text, encoding="utf-8")
    return folder


def run_demo(console: Console, settings: DemoSettings) -> DemoRun:
    """The whole chain (see the module docstring); returns what it did."""
    _fresh(settings.folder)
    run = DemoRun(settings)
    began = datetime.now(UTC)
    build(run, console)
    analyse(run)
    truth = Truth.read(run.twin)
    score(run, truth)
    run.audit = check_audit(run)
    write_letters(run)
    run.report_path = write_report(run, truth, began)
    return run
