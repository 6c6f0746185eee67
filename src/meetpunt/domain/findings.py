"""Decisions as values: a rule ID from docs/requirements.md plus a plain-language message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken (or noteworthy) rule.

    ``rule`` is a rule ID such as ``REG-1.check_digit`` or ``REG-5.capacity``;
    ``message`` says what was wrong and what to do about it.
    """

    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form ``{"rule", "message"}``."""
        return {"rule": self.rule, "message": self.message}
