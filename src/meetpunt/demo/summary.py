"""The demo's output: on the console (steps, the per-use-case summary, the audit log,
the files) or as one JSON object (``meetpunt demo --json``)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from meetpunt.demo.chain import DemoRun


def show(console: Console, run: DemoRun, program: str = "meetpunt") -> None:
    """Print what the demo did, how right it was, and where to look further."""
    steps = Table(title="Steps")
    steps.add_column("step")
    steps.add_column("seconds", justify="right")
    steps.add_column("what it did")
    for s in run.steps:
        steps.add_row(s.name, f"{s.seconds:.1f}", s.summary)
    steps.add_row("total", f"{sum(s.seconds for s in run.steps):.1f}", "")
    console.print(steps)

    summary = Table(title="Use cases through the privacy gate, against the twin's truth")
    summary.add_column("use case")
    summary.add_column("what was found")
    summary.add_column("accuracy against the truth")
    summary.add_column("seconds", justify="right")
    for score in run.scores:
        colour = "green" if score.perfect else "red"
        summary.add_row(
            score.use_case,
            score.found,
            f"[{colour}]{score.accuracy}[/{colour}]",
            f"{run.seconds.get(score.use_case, 0.0):.1f}",
        )
    console.print(summary)
    by_case = per_case_table(run)
    if by_case is not None:
        console.print(by_case)
    if run.uc4 is not None and run.uc4.reviews:
        counted = review_reasons(r.reason for r in run.uc4.reviews)
        shown = "; ".join(f"{n} {kind}" for kind, n in counted)
        console.print(f"UC4 on review, by reason: {shown}")
    for score in run.scores:
        for miss in score.misses:
            console.print(f"[red]{score.use_case} miss:[/red] {miss}")

    if run.refusal is not None:
        rules = ", ".join(f.rule for f in run.refusal.findings)
        console.print(f"The gate refused UC1 asking for quarter-hour values ({rules}).")
    audit = run.require_audit()
    table = Table(title="Audit log (PRV-7)")
    for column in ("purpose", "event", "outcome", "records", "expected"):
        table.add_column(column, justify="right" if column in ("records", "expected") else "left")
    for key in sorted(set(audit.counts) | set(audit.expected)):
        table.add_row(*key, str(audit.counts.get(key, 0)), str(audit.expected.get(key, 0)))
    console.print(table)
    if audit.as_expected:
        console.print(
            "[green]The audit log holds exactly the use cases' decisions and reads; "
            "the chain is intact.[/green]"
        )
    else:
        console.print("[red]The audit log does not hold what the demo asked for:[/red]")
        for finding in audit.findings:
            console.print(f"  {finding}")

    folder = run.settings.folder
    end = run.settings.start + timedelta(days=run.settings.days)
    payments = run.require_uc4().payments
    customer = f"--ean {payments[0].ean} " if payments else ""
    console.print(
        f"\nReport: [bold]{run.report_path}[/bold] (outage maps also in {folder / 'maps'}, "
        f"letters in {folder / 'letters'}).\nLook further with, e.g.:\n"
        f"  export MEETPUNT_HOME={folder}\n"
        f"  {program} usecase uc09 --from {run.settings.start} --to {end}\n"
        f"  {program} audit list {customer}--lang en",
        soft_wrap=True,
    )


#: Per use case, the figure pair shown per fault class: (right, of).
CASE_COLUMNS = {
    "UC1": ("classified_right", "reports"),
    "UC4": ("paid_exactly", "owed"),
    "UC9": ("interruptions_exact", "interruptions_truth"),
}


def per_case_table(run: DemoRun) -> Table | None:
    """Each use case's figures per hard-case class of the truth's outages (issue 16),
    or ``None`` when every outage is plain (the showcase)."""
    scores = {s.use_case: s for s in run.scores if s.use_case in CASE_COLUMNS}
    cases = sorted({c for s in scores.values() for c in s.by_case})
    if set(cases) <= {"plain"}:
        return None
    table = Table(title="Per fault class (an item in several classes counts in each)")
    table.add_column("class")
    for name in CASE_COLUMNS:
        table.add_column(name, justify="right")
    for case in cases:
        cells = []
        for name, (right, of) in CASE_COLUMNS.items():
            row = scores[name].by_case.get(case, {}) if name in scores else {}
            cell = f"{row.get(right, 0):.0f}/{row.get(of, 0):.0f}" if row.get(of) else "-"
            if name == "UC1" and row.get("on_review"):
                cell += f" ({row['on_review']:.0f} on review)"
            if name == "UC4" and row:
                extra = [
                    f"{row[k]:.0f} {k.replace('_', ' ')}"
                    for k in ("missed", "overpaid", "owed_on_review")
                    if row.get(k)
                ]
                cell += f" ({', '.join(extra)})" if extra else ""
            cells.append(cell)
        table.add_row(case.replace("_", " "), *cells)
    return table


def review_kind(reason: str) -> str:
    """A review reason without its particulars (EANs, amounts, feeder and outage ids,
    what follows a colon or semicolon), so reasons can be counted (issue 16)."""
    head = re.split(r"[:;(]", reason, maxsplit=1)[0]
    words = [w for w in head.split() if not any(ch.isdigit() for ch in w)]
    return " ".join(words).strip(" ,.") or reason


def review_reasons(reasons: Iterable[str]) -> list[tuple[str, int]]:
    """How many reviews per kind of reason (:func:`review_kind`), most first."""
    return Counter(review_kind(r) for r in reasons).most_common()


def as_json(run: DemoRun) -> dict[str, Any]:
    """The run as one object: the settings, the steps with their seconds and, per use
    case, what it found and its accuracy figures against the truth (as numbers)."""
    settings = run.settings
    audit = run.audit
    return {
        "seed": settings.seed,
        "faults": settings.faults,
        "start": settings.start.isoformat(),
        "connections": settings.connections,
        "days": settings.days,
        "steps": [{"name": s.name, "seconds": round(s.seconds, 3)} for s in run.steps],
        "use_cases": {
            score.use_case: {
                "found": score.counts,
                "metrics": score.metrics,
                "by_case": score.by_case,
                "correct": score.correct,
                "total": score.total,
                "misses": list(score.misses),
                "seconds": round(run.seconds.get(score.use_case, 0.0), 3),
            }
            for score in run.scores
        },
        "refusal": (None if run.refusal is None else [f.rule for f in run.refusal.findings]),
        "audit": None
        if audit is None
        else {"as_expected": audit.as_expected, "findings": [str(f) for f in audit.findings]},
        "home": str(settings.folder),
        "report": None if run.report_path is None else str(run.report_path),
    }
