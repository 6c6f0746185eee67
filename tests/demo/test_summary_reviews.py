"""The demo console's review counts (issue 16): UC1's reviews per class, UC4's review
reasons counted by kind."""

from __future__ import annotations

from meetpunt.demo.summary import review_kind, review_reasons


def test_review_reasons_are_counted_without_their_particulars() -> None:
    reasons = [
        "meter without a log on faulted feeder OS003-K2: 3 of 4 neighbours dark",
        "meter without a log on faulted feeder OS001-K1: 1 of 2 neighbours dark",
        "logged the outage but is not in the register",
        "suspected GIS feeder error; not paid on its registration, no log of its own",
    ]
    assert review_reasons(reasons) == [
        ("meter without a log on faulted feeder", 2),
        ("logged the outage but is not in the register", 1),
        ("suspected GIS feeder error", 1),
    ]
    # a reason that is all particulars is kept whole rather than lost
    assert review_kind("871687400000004562") == "871687400000004562"
