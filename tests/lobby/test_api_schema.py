"""``/api/schema/`` documents every request and response body with its real properties, and the
responses the API really gives match what it documents (every key listed, no other)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from django.test import Client as HttpClient

from tests.authz.test_matrix import REST_MATRIX, rest_client, rest_path, rest_world

V1 = "/api/v1"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    resp = HttpClient().get("/api/schema/?format=json")
    assert resp.status_code == 200
    return json.loads(resp.content)


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """``node`` with every ``$ref`` replaced by its component (our schemas are not recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return resolve(doc, doc["components"]["schemas"][name])
        return {k: resolve(doc, v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(doc, v) for v in node]
    return node


def request_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    body = doc["paths"][V1 + path][method]["requestBody"]["content"]["application/json"]
    return resolve(doc, body["schema"])


def closed_object(schema: dict[str, Any]) -> None:
    """An object with its properties listed and nothing else allowed, at every level."""
    assert schema["type"] == "object" and schema["additionalProperties"] is False, schema
    for prop in schema["properties"].values():
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "object" and "properties" in branch:
                closed_object(branch)


REQUEST_BODIES = {
    ("post", "/rooms"): {"name", "privacy", "properties"},
    ("patch", "/rooms/{name}"): {"privacy", "properties"},
    ("post", "/meeting-tokens"): {"properties"},
    ("post", "/meeting-tokens/decode"): {"token"},
    ("post", "/meeting-tokens/revoke"): {"jti"},
    ("post", "/rooms/{name}/entry-requests/{request_id}/admit"): {"reason"},
    ("post", "/rooms/{name}/entry-requests/{request_id}/deny"): {"reason"},
    ("post", "/rooms/{name}/pause"): set(),
    ("post", "/rooms/{name}/resume"): set(),
    ("post", "/rooms/{name}/mute"): {"audio", "video"},
    ("post", "/rooms/{name}/unmute"): {"audio", "video"},
    ("post", "/rooms/{name}/breakouts"): {
        "participants",
        "max_rooms",
        "audio",
        "video",
        "canvas",
        "share",
        "duration",
        "invite",
        "force_join",
    },
    ("post", "/rooms/{name}/breakouts/invite"): {"room_id", "clients", "force_join"},
    ("post", "/rooms/{name}/breakouts/move"): {"participant_id", "room_id"},
    ("post", "/rooms/{name}/breakouts/broadcast"): {"text"},
    ("post", "/rooms/{name}/breakouts/extend"): {"room_id", "seconds"},
    ("post", "/rooms/{name}/breakouts/clear"): set(),
    ("post", "/rooms/{name}/breakouts/destroy"): set(),
    ("put", "/rooms/{name}/alerts"): {
        "unattended_after",
        "escalate_after",
        "contacts",
        "escalation_contacts",
    },
    ("post", "/webhooks"): {"url", "events", "room", "description", "active"},
    ("patch", "/webhooks/{webhook_id}"): {"url", "events", "description", "active"},
}


@pytest.mark.django_db
def test_every_request_body_is_typed_with_its_properties(doc):
    documented = {
        (method, path[len(V1) :])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    assert documented == set(REQUEST_BODIES)
    for (method, path), names in REQUEST_BODIES.items():
        schema = request_schema(doc, method, path)
        closed_object(schema)
        assert set(schema["properties"]) == names, (method, path)
        for name, prop in schema["properties"].items():
            assert prop.get("type") or prop.get("anyOf") or prop.get("allOf"), (path, name)


@pytest.mark.django_db
def test_the_room_token_and_breakout_bodies_state_their_rules(doc):
    room = request_schema(doc, "post", "/rooms")
    assert room["properties"]["name"]["anyOf"][0]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    props = room["properties"]["properties"]["properties"]
    assert (props["knock_ttl"]["minimum"], props["knock_ttl"]["maximum"]) == (10, 600)
    talkers = props["max_active_talkers"]
    assert (talkers["minimum"], talkers["maximum"], talkers["type"]) == (3, 50, "integer")
    assert props["enable_knocking"]["type"] == "boolean"

    token = request_schema(doc, "post", "/meeting-tokens")["properties"]["properties"]
    assert set(token["properties"]) == {
        "room_name",
        "user_id",
        "user_name",
        "is_owner",
        "is_viewer",
        "exp",
        "grant",
        "join_policy",
    }
    grant = token["properties"]["grant"]["anyOf"][0]
    assert set(grant["properties"]) == {
        "canPublish",
        "canSubscribe",
        "canPublishData",
        "canSubscribeData",
        "canModerate",
    }
    policy = token["properties"]["join_policy"]["anyOf"][0]
    assert policy["properties"]["ttl"]["anyOf"][0] == {
        "type": "integer",
        "minimum": 10,
        "maximum": 600,
    }

    create = request_schema(doc, "post", "/rooms/{name}/breakouts")
    assert create["required"] == ["participants"]
    duration = create["properties"]["duration"]["anyOf"][0]
    assert (duration["minimum"], duration["maximum"]) == (60, 14400)
    invite = request_schema(doc, "post", "/rooms/{name}/breakouts/invite")
    clients = invite["properties"]["clients"]
    assert (clients["minItems"], clients["maxItems"], clients["items"]["minLength"]) == (1, 1000, 1)
    assert invite["properties"]["room_id"]["format"] == "uuid"
    text = request_schema(doc, "post", "/rooms/{name}/breakouts/broadcast")["properties"]["text"]
    assert text["maxLength"] == 1000


@pytest.mark.django_db
def test_every_response_is_documented_with_its_properties(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert {"401"} <= set(op["responses"]), (method, path)
            for status, response in op["responses"].items():
                schema = resolve(doc, response["content"]["application/json"]["schema"])
                closed_object(schema)
                assert schema["properties"], (method, path, status)
    # No bare object anywhere (what every body was before).
    assert '"additionalProperties": {}' not in json.dumps(doc)


def documented_response(doc: dict[str, Any], method: str, route: str, status: int) -> Any:
    op = doc["paths"]["/" + route.replace("<str:", "{").replace(">", "}")][method.lower()]
    assert str(status) in op["responses"], (method, route, status)
    return resolve(doc, op["responses"][str(status)]["content"]["application/json"]["schema"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "route"), list(REST_MATRIX), ids=[" ".join(k) for k in REST_MATRIX]
)
def test_real_responses_match_the_documented_ones(doc, method, route):
    cell = REST_MATRIX[(method, route)]
    w = rest_world()
    if cell.prep is not None:
        cell.prep(w)
    path = rest_path(route, cell, w)
    body = cell.body(w) if cell.body is not None else None
    for cred in ("no key", "valid key"):
        resp = rest_client(cred, w).generic(
            method,
            path,
            json.dumps(body) if body is not None else "",
            content_type="application/json",
        )
        schema = documented_response(doc, method, route, resp.status_code)
        jsonschema.validate(resp.json(), schema)
    assert resp.status_code == cell.status
