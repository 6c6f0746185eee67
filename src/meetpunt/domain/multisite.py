"""Multisite contracts (MKT-6).

A multisite contract bundles the connections of several customers. It is valid only
when (1) most of the customers are legal persons or act in the course of business,
(2) all take part through one and the same representative, and (3) every one of them
gave that representative a mandate. Small-consumer protections then partly lapse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meetpunt.domain.findings import Finding


@dataclass(frozen=True)
class MultisiteParticipant:
    """One customer in a multisite contract, as declared to the supplier."""

    customer: str
    legal_person: bool
    acts_in_business: bool
    representative: str | None
    mandate_given: bool


def check_multisite(participants: Sequence[MultisiteParticipant]) -> list[Finding]:
    """Every MKT-6 condition the contract breaks (empty when it is valid)."""
    if not participants:
        return [Finding("MKT-6.participants", "a multisite contract needs participants")]
    findings: list[Finding] = []
    business = sum(1 for p in participants if p.legal_person or p.acts_in_business)
    if business * 2 <= len(participants):
        findings.append(
            Finding(
                "MKT-6.business_majority",
                f"only {business} of {len(participants)} customers are legal persons or act "
                "in the course of business; most of them must be",
            )
        )
    representatives = {p.representative for p in participants}
    if None in representatives or len(representatives) != 1:
        named = sorted(r for r in representatives if r is not None)
        missing = [p.customer for p in participants if p.representative is None]
        detail = f"representatives named: {', '.join(named) or 'none'}"
        if missing:
            detail += f"; without representative: {', '.join(missing)}"
        findings.append(
            Finding(
                "MKT-6.one_representative",
                f"all customers must take part through one representative ({detail})",
            )
        )
    without_mandate = [p.customer for p in participants if not p.mandate_given]
    if without_mandate:
        findings.append(
            Finding(
                "MKT-6.mandate",
                "these customers gave the representative no mandate: " + ", ".join(without_mandate),
            )
        )
    return findings
