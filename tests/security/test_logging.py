"""Logs: JSON lines with request and connection ids, and never a token, API key or resume key."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

# Importing the ASGI application runs django.setup() and so dictConfig(LOGGING) again, which
# drops every handler on the root logger: do it now, before caplog attaches its handler.
import config.asgi  # noqa: F401
from lobby.ops.logs import REDACTED, ContextFilter, JsonFormatter, RedactFilter, redact_text
from tests.support import ROOT

adb = database_sync_to_async


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write about a record."""
    fields = {k: v for k, v in record.__dict__.items() if k not in ("msg", "args")}
    return " ".join(
        [record.getMessage(), json.dumps(fields, default=repr), str(record.exc_text or "")]
    )


@pytest.mark.django_db(transaction=True)
async def test_a_knock_admit_and_rest_flow_logs_ids_but_no_secret(clients, async_client, caplog):
    from lobby.api.auth import api_key_create

    caplog.set_level(logging.INFO)
    _, key = await adb(api_key_create)(name="backend")
    auth = {"Authorization": f"Bearer {key}"}

    async def rest(path: str, body: dict | None = None, headers: dict | None = None):
        h = headers if headers is not None else auth
        if body is None:
            return await async_client.get(path, headers=h)
        return await async_client.post(path, body, content_type="application/json", headers=h)

    made = await rest(
        "/api/v1/rooms",
        {"name": "clinic", "privacy": "private", "properties": {"enable_knocking": True}},
    )
    assert made.status_code == 200
    owner = (
        await rest(
            "/api/v1/meeting-tokens",
            {"properties": {"room_name": "clinic", "is_owner": True, "user_id": "dr"}},
        )
    ).json()["token"]
    guest = (
        await rest(
            "/api/v1/meeting-tokens",
            {"properties": {"room_name": "clinic", "join_policy": {"mode": "ask"}}},
        )
    ).json()["token"]
    assert (await rest("/api/v1/meeting-tokens/decode", {"token": guest})).status_code == 200
    # Mistakes that put secrets where loggers look: a token in a URL, a wrong key.
    page = await async_client.get(f"/r/clinic/?t={guest}")
    bad = await rest("/api/v1/rooms", headers={"Authorization": f"Bearer {key[:-4]}abcd"})
    assert bad.status_code == 401
    await rest(f"/api/v1/rooms?token={owner}")

    mod = await clients("clinic", client=("10.5.0.1", 1))
    mod_join = await mod.request("join", token=owner)
    assert mod_join["ok"]
    mod_resume = (await mod.expect("joined"))["resume"]
    g = await clients("clinic", client=("10.5.0.2", 1))
    await g.send(type="join", token=guest, name="Pat")
    waiting = await g.expect("waiting")
    resume = waiting["resume"]
    request_id = waiting["request"]["id"]
    await mod.expect("entry-requested")
    admitted = await rest(f"/api/v1/rooms/clinic/entry-requests/{request_id}/admit", {})
    assert admitted.json()["effective"] is True
    await g.expect("joined")
    await g.close()
    back = await clients("clinic", client=("10.5.0.2", 2))
    assert (await back.request("join", token=guest, resume=resume))["ok"]
    await back.send(type="join", token=guest, resume=resume)  # a mistake: joins twice
    await back.expect("error")

    secrets = {
        "api key": key,
        "api key secret": key.split(".", 1)[1],
        "owner token": owner,
        "guest token": guest,
        "guest token signature": guest.rsplit(".", 1)[1],
        "guest resume key": resume,
        "moderator resume key": mod_resume,
    }
    texts = [record_text(r) for r in caplog.records]
    assert texts, "the flow logged nothing"
    for what, secret in secrets.items():
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"{what} leaked into logs: {leaks[0][:300]}"

    # The URL token was logged — redacted — by the access log, with the request's id.
    access = [r for r in caplog.records if r.name == "anteroom.http"]
    page_line = next(r for r in access if r.getMessage().startswith("GET /r/clinic/"))
    assert f"t={REDACTED}" in page_line.getMessage()
    assert page_line.request_id == page["X-Request-ID"]
    assert {r.request_id for r in access} >= {made["X-Request-ID"], bad["X-Request-ID"]}
    # Socket lines carry their connection id: connect, join and close of the guest's socket.
    ws = [r for r in caplog.records if r.name == "anteroom.ws"]
    by_conn: dict[str, list[str]] = {}
    for r in ws:
        by_conn.setdefault(r.connection_id, []).append(r.getMessage())
    guest_lines = [
        lines for lines in by_conn.values() if lines[:3] == ["ws connect", "ws join", "ws close"]
    ]
    assert guest_lines, by_conn
    assert all(len(c) == 32 for c in by_conn)


@pytest.mark.parametrize(
    ("msg", "args", "extra"),
    [
        ("joined with %s", ("eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoiYSJ9.c2lnbmF0dXJl",), {}),
        ("GET %s", ("/r/clinic/?name=x&t=SECRETVALUE",), {}),
        ("header %s", ("Authorization: Bearer ak_0123456789ab.SECRETVALUE",), {}),
        ("frame %s", ({"type": "join", "token": "SECRETVALUE", "resume": "SECRETVALUE"},), {}),
        ("frame %r", ('{"type":"join","resume":"SECRETVALUE"}',), {}),
        ("ws join", (), {"payload": {"nested": [{"resume": "SECRETVALUE"}]}}),
        ("ws join", (), {"token": "SECRETVALUE", "url": "/ws/rooms/a/?t=SECRETVALUE"}),
        (
            "three segments %s",
            ("aaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbb.SECRETVALUEcccccccc",),
            {},
        ),
    ],
)
def test_redaction_covers_message_args_and_extras(msg, args, extra):
    logger = logging.getLogger("anteroom.test")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None, extra=extra)
    RedactFilter().filter(record)
    ContextFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "SECRETVALUE" not in line
    assert "c2lnbmF0dXJl" not in line
    assert REDACTED in line
    assert json.loads(line)["logger"] == "anteroom.test"


def test_redaction_covers_tracebacks():
    logger = logging.getLogger("anteroom.test")
    try:
        raise ValueError("bad key ak_0123456789ab.SECRETVALUE")
    except ValueError:
        import sys as _sys

        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "failed", (), _sys.exc_info()
        )
    RedactFilter().filter(record)
    out = json.loads(JsonFormatter().format(record))
    assert "SECRETVALUE" not in out["exc"]
    assert "ValueError: bad key ak_0123456789ab." in out["exc"]


def test_redaction_keeps_what_operators_need():
    text = "admit 5b0c7a9e2f3d4c1b8a6e9d0f1c2b3a4d by api:backend from 10.0.0.7 in 0.25 s"
    assert redact_text(text) == text
    # The API key's prefix is not secret and tells operators which key was used.
    assert redact_text("key ak_0123456789ab.s3cr3t") == f"key ak_0123456789ab.{REDACTED}"


@pytest.mark.django_db
def test_request_id_header(client):
    first = client.get("/healthz")
    assert len(first["X-Request-ID"]) == 32
    assert client.get("/healthz")["X-Request-ID"] != first["X-Request-ID"]
    # A proxy's id is kept, so one id follows a request through both logs; junk is replaced.
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-42.a")["X-Request-ID"] == "lb-42.a"
    junk = client.get("/healthz", HTTP_X_REQUEST_ID="x" * 65 + "\n")["X-Request-ID"]
    assert len(junk) == 32 and junk != "x" * 65


def _log_line(env: dict[str, str]) -> str:
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('anteroom.probe').warning('probe ?t=eyJx.eyJy.zz', "
        "extra={'connection_id': 'c1'})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "json_expected"),
    [
        ({"DEBUG": "0"}, True),
        ({"DEBUG": "1"}, False),
        ({"DEBUG": "1", "LOG_FORMAT": "json"}, True),
        ({"DEBUG": "0", "LOG_FORMAT": "plain"}, False),
    ],
)
def test_log_format_json_in_production_and_plain_with_debug(env, json_expected):
    env = {"LOG_FORMAT": "", **env} if "LOG_FORMAT" not in env else env
    if env.get("LOG_FORMAT") == "":
        env.pop("LOG_FORMAT")
    line = _log_line(env)
    assert "eyJ" not in line
    if json_expected:
        data = json.loads(line)
        assert data["level"] == "WARNING"
        assert data["logger"] == "anteroom.probe"
        assert data["connection_id"] == "c1"
        assert data["message"] == f"probe ?t={REDACTED}"
    else:
        assert line.endswith(f"WARNING anteroom.probe probe ?t={REDACTED} [connection_id=c1]")


async def test_service_lines_carry_the_socket_connection_id(caplog):
    """Lines logged by ORM work done for a socket carry that socket's connection id."""
    from lobby.ops.logs import connection_id_var

    caplog.set_level(logging.INFO)

    async def socket_task() -> None:
        connection_id_var.set("c0ffee")
        # The same thread hop as database_sync_to_async, without touching the database.
        await sync_to_async(lambda: logging.getLogger("anteroom.services").info("did work"))()

    await asyncio.create_task(socket_task())
    logging.getLogger("anteroom.services").info("outside")
    ids = {r.getMessage(): getattr(r, "connection_id", None) for r in caplog.records}
    assert ids == {"did work": "c0ffee", "outside": None}


# The quick look before the six substitutions (``_may_hold_a_secret``) never changes a result.

_SECRETISH = st.sampled_from(
    [
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYXQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
        "abcdefghijklmnop.abcdefghijklmnop.abcdefghijklmnop",
        "ak_0123abcd.s3cr3t",
        "ak_",
        "Bearer abc",
        "BASIC xyz",
        "?t=abc",
        "token=abc",
        '"resume": "r-123"',
        "'key': 'k'",
        ".",
        "=",
        '"',
        "'",
        " ",
        "eyJ",
    ]
)
_TEXT = st.lists(st.one_of(_SECRETISH, st.text(max_size=8)), max_size=6).map("".join)


@hypothesis_settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_the_quick_look_never_lets_a_secret_through(text: str) -> None:
    from lobby.ops import logs

    slow = text
    for pattern, repl in logs._PATTERNS:
        slow = pattern.sub(repl, slow)
    assert redact_text(text) == slow


def test_plain_words_skip_the_substitutions() -> None:
    from lobby.ops import logs

    for text in ("ws join", "clinic", "e1d43d1059ca4adfa2b36440be6aca9a", "full", ""):
        assert not logs._may_hold_a_secret(text)
        assert redact_text(text) == text
