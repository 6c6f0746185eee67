"""What every use case does the same way: ask the gate once and stop on a refusal."""

from __future__ import annotations

from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate, Grant
from meetpunt.privacy.model import AccessRequest


def ask(gate: Gate, request: AccessRequest, error: type[MeetpuntError]) -> Grant:
    """The grant for ``request``, or ``error`` carrying every rule the gate named."""
    answer = gate.request(request)
    if isinstance(answer, Grant):
        return answer
    rules = ", ".join(answer.rules)
    raise error(f"the privacy gate refused {request.purpose}: {rules}", answer.findings)
