"""Schemathesis against the API's own OpenAPI document (issue 17), as each role and
without a key: generated requests for every operation, checking that no answer is a
server error (5xx) and that every answer matches its documented schema, status code
and content type. Bounded (a few examples per operation) so it stays well under a
minute."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import World

EXAMPLES = 8
"""Examples per operation and engine; each is sent once per role."""
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
WHO = (None, "S1", "de_vries", "operator", "app")


def test_no_server_error_and_every_answer_as_documented(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            for who in WHO:
                headers = {"Authorization": f"Bearer {world.keys[who]}"} if who else {}
                case.call_and_validate(headers=headers, checks=CHECKS)

        check()
