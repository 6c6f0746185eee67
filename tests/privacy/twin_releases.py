"""The legitimate aggregate releases on a generated twin (PRV-6, issue 15): UC11's area
load per postcode per day, UC13's monthly load per postcode, UC14's research set per postcode-3,
with how much was suppressed and how much noise UC14's values carry.

Used by ``tests/privacy/test_disclosure_twin.py`` (a small twin) and runnable for the
numbers in docs/privacy.md::

    .venv/bin/python -m tests.privacy.twin_releases --connections 400 --seed 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from meetpunt.app.hub import hub_store, ingest_paths
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.privacy.aggregation import relative_noise
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.disclosure import PublicRelease
from meetpunt.privacy.gate import Gate, Grant
from meetpunt.privacy.model import AccessRequest, Party, Period, Role
from meetpunt.register import open_register
from meetpunt.register.csvio import import_file
from meetpunt.twin.generate import TwinSettings, generate

START = date(2025, 7, 1)
WEEK = date(2025, 7, 7)  # the first Monday
GRID = Party("8716874000009", Role.GRID_OPERATOR)
RESEARCHER = Party("ut-1", Role.RESEARCHER, "Universiteit Twente")
QH = frozenset({"quarter_hours"})


def _period(first: date, days: int) -> Period:
    return Period(local_midnight_utc(first), local_midnight_utc(first + timedelta(days=days)))


def _summary(release: PublicRelease | Any, asked: int) -> dict[str, Any]:
    assert isinstance(release, PublicRelease), release
    return {
        "level": release.level,
        "cells_asked": asked,
        "shown": len(release.cells),
        "suppressed": len(release.suppressed),
        "rules": list(release.rules),
        "noisy": release.noisy,
    }


def legitimate_releases(folder: Path, connections: int, seed: int) -> dict[str, Any]:
    """Generate a twin of July 2025, read a week through UC6 (grid management) and the
    month through an energy app (the data UC11 and UC13 may reuse), then release UC11
    per pc4 per day, then per street, UC13 per pc4 for the month and UC14 per pc3 for
    the month; returns what came out."""
    generate(TwinSettings(connections, 31, START, seed), folder / "twin")
    register = open_register(f"sqlite:///{folder / 'register.sqlite'}")
    for name in ("connections", "secondary_allocation_points", "contracts"):
        with register.session() as session:
            import_file(session, folder / "twin" / "register" / f"{name}.csv")
    at = datetime(2025, 8, 2, 9, tzinfo=UTC)
    out: dict[str, Any] = {"connections": connections, "seed": seed}
    with hub_store(folder / "meterdata.duckdb") as store:
        ingest_paths(store, register, [folder / "twin" / "meterdata"])
        gate = Gate(register, store, load_catalogue(), clock=lambda: at)
        with register.session() as session:
            eans = sorted(
                v.ean
                for v in session.connection_versions(WEEK)
                if v.commodity.value == "electricity"
            )
            pc4s = Counter(v.attributes.address.pc4 for v in session.connection_versions(WEEK))
        week = _period(WEEK, 7)
        month = _period(START, 31)
        read = gate.request(AccessRequest(GRID, "UC6", tuple(eans), QH, week, week.start))
        assert isinstance(read, Grant), read
        _app_reads(register, month)
        areas = sorted(pc4s)
        uc11 = gate.request(AccessRequest(GRID, "UC11", (), QH, week, week.start))
        assert isinstance(uc11, Grant)
        daily = uc11.aggregate("quarter_hours", "import_wh", areas, "pc4")
        out["UC11 pc4 per day"] = _summary(daily, 7 * len(areas))
        uc13 = gate.request(AccessRequest(GRID, "UC13", (), QH, month, month.start))
        assert isinstance(uc13, Grant)
        monthly = uc13.aggregate("quarter_hours", "import_wh", areas)
        out["UC13 pc4 per month"] = _summary(monthly, len(areas))
        streets = uc11.aggregate(
            "quarter_hours",
            "import_wh",
            sorted({f"{a}:{s}" for a, s in _streets(register, WEEK)}),
            "street",
        )
        out["UC11 street per day (after pc4)"] = _summary(
            streets, 7 * len(_streets(register, WEEK))
        )
        uc14 = gate.request(AccessRequest(RESEARCHER, "UC14", (), QH, month, month.start))
        assert isinstance(uc14, Grant)
        pc3 = sorted({a[:3] for a in areas})
        research = uc14.aggregate("quarter_hours", "import_wh", pc3)
        out["UC14 pc3 per month"] = _summary(research, len(pc3))
        rule = uc14.rule.aggregate
        assert rule is not None
        noise: list[dict[str, Any]] = []
        for cell in research.cells:
            exact = _exact(store, register, month, cell.area)
            noise.append(
                {
                    "area": cell.area,
                    "exact_kwh": round(exact / 1000, 1),
                    "released_kwh": round(cell.value / 1000, 1),
                    "error_pct": round(100 * abs(cell.value - exact) / exact, 2),
                    "noise_sd_pct": round(100 * relative_noise(rule, exact, 31), 2),
                    "count": cell.count,
                }
            )
        out["UC14 noise"] = noise
    register.dispose()
    return out


def _app_reads(register: Any, month: Period) -> None:
    """An energy app read July's quarter-hours of every connection (the flow UC13 reuses;
    history rows as tests/scenarios write them)."""
    from sqlalchemy import insert

    from meetpunt.register import schema

    with register.session() as session:
        ids = [
            cid
            for (cid,) in session.db.execute(
                schema.connection.select()
                .with_only_columns(schema.connection.c.id)
                .where(schema.connection.c.commodity == "electricity")
            )
        ]
        rows = [
            {
                "audit_seq": 0,
                "party": "app-1",
                "purpose": "app_consent",
                "connection_id": cid,
                "kinds": json.dumps(["quarter_hours"]),
                "period_start": month.start,
                "period_end": month.end,
                "granted_at": month.start,
            }
            for cid in ids
        ]
        session.db.execute(insert(schema.privacy_grant), rows)


def _streets(register: Any, day: date) -> set[tuple[str, str]]:
    with register.session() as session:
        return {
            (v.attributes.address.pc4, v.attributes.address.street)
            for v in session.connection_versions(day)
            if v.commodity.value == "electricity"
        }


def _exact(store: Any, register: Any, period: Period, pc3: str) -> float:
    """The true clipped sum of a pc3 area's members (the oracle, outside the gate)."""
    rule = load_catalogue().get("UC14")
    assert rule is not None and rule.aggregate is not None and rule.aggregate.noise is not None
    bound = rule.aggregate.noise.clip_wh_per_day * 31
    table = store.read("quarter_hours")
    members = _members(register, pc3)
    sums: dict[int, float] = {}
    for cid, start, wh in zip(
        table.column("connection").to_pylist(),
        table.column("start").to_pylist(),
        table.column("import_wh").to_pylist(),
        strict=True,
    ):
        moment = start if start.tzinfo else start.replace(tzinfo=UTC)
        if cid in members and wh is not None and period.start <= moment < period.end:
            sums[cid] = sums.get(cid, 0.0) + wh
    return float(sum(min(max(round(v), 0), bound) for v in sums.values()))


def _members(register: Any, pc3: str) -> set[int]:
    from meetpunt.register import read

    with register.session() as session:
        found = read.members_on(session.db, "pc3", [pc3], START)
    return {c for c, m in found.items() if not m.opted_out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = legitimate_releases(Path(tmp), args.connections, args.seed)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
