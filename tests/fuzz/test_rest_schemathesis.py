"""The REST API fuzzed with schemathesis against its own OpenAPI schema: never a 5xx, every
error is ``{"error": {"code", "message"}}``, and every answer is one the schema documents (its
status and its body).

Schemathesis' pytest plugin does not run under pytest 9 here, so the test drives its hypothesis
strategies directly, one operation at a time.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import make_room


def test_rest_api_never_fails_with_a_server_error(transactional_db):
    from django.core.wsgi import get_wsgi_application

    from lobby.api.auth import api_key_create
    from lobby.models import Room

    make_room("clinic", privacy="private", enable_knocking=True)
    key = api_key_create(name="fuzz")[1]
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    # An Err (invalid operation in the schema) has no .ok(): it fails the test loudly.
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10, "the schema lost its operations"
    tried: list[str] = []
    calls: list[int] = []
    written: set[str] = set()  # operations with a body that succeeded at least once

    for operation in operations:
        # Half the cases name the real room, so typed bodies reach the services behind a 404.
        @given(case=operation.as_strategy(), real_room=st.booleans())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case, real_room):
            if real_room and "name" in (case.path_parameters or {}):
                case.path_parameters["name"] = "clinic"
                # An earlier case may have deleted it or switched it to lecture mode.
                if not Room.objects.filter(name="clinic").update(mode="group"):
                    make_room("clinic", privacy="private", enable_knocking=True)
            for headers in ({"Authorization": f"Bearer {key}"}, {}):
                response = case.call(headers=headers)
                calls.append(response.status_code)
                if case.method in ("POST", "PATCH") and response.status_code < 300:
                    written.add(f"{case.method} {case.operation.path}")
                where = (
                    case.method,
                    case.formatted_path,
                    response.status_code,
                    response.text[:300],
                )
                assert response.status_code < 500, where
                if response.status_code >= 400:
                    body = response.json()
                    assert set(body) == {"error"}, where
                    assert (
                        isinstance(body["error"]["code"], str) and body["error"]["code"].isupper()
                    ), where
                    assert isinstance(body["error"]["message"], str), where
                case.validate_response(
                    response, checks=[status_code_conformance, response_schema_conformance]
                )

        check()
        tried.append(f"{operation.method.upper()} {operation.path}")
    assert "POST /api/v1/meeting-tokens" in tried
    assert len(calls) > 10 * len(operations)
    assert written, "no generated body reached a service and changed something"
    print(len(calls), sorted(set(calls)), sorted(written))
