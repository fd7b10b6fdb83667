"""What a knock and a connect cost in round trips on PostgreSQL (issue 13), and the health check
that no longer spends one per socket action (lobby/runtime/postgresql/base.py).

The PostgreSQL pass of scripts/test runs this module (DATABASE_URL + REDIS_URL); on SQLite it is
skipped — tests/lobby/test_query_counts.py pins SQLite's statements. Statements are pinned, not
timings: a change that adds a round trip to a hot path shows up here.
"""

from __future__ import annotations

import os
import select
import time

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from lobby import cache, services
from tests.factories import conn, make_room, make_token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="PostgreSQL's statements (the PostgreSQL + Redis pass of scripts/test)",
    ),
]


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)


@pytest.fixture
def undelivered(monkeypatch):
    """Events are handed over but not delivered: only the service's own statements count."""
    from lobby import events

    monkeypatch.setattr(events, "_send_now", lambda group, message: None)

    async def nothing(batch):
        return None

    monkeypatch.setattr(events, "_send_batch", nothing)


@pytest.fixture
def select_ones(monkeypatch):
    """Counts Django's health-check queries (``is_usable`` sends ``SELECT 1``)."""
    calls: list[int] = []
    from django.db import connections

    wrapper = type(connections["default"])
    real = wrapper.is_usable

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(wrapper, "is_usable", counting)
    return calls


def as_a_socket_does(fn, *args, **kwargs):
    """One hop to the ORM thread: Channels' ``database_sync_to_async`` closes old connections
    before and after, which re-arms Django's health check."""
    close_old_connections()
    try:
        with CaptureQueriesContext(connection) as ctx:
            out = fn(*args, **kwargs)
    finally:
        close_old_connections()
    return out, [q["sql"].split()[0].upper() for q in ctx.captured_queries]


KNOCK = [
    "BEGIN",
    # The room lock (FOR NO KEY UPDATE) and, above it in the same statement, the token's
    # rate-limit key (pg_advisory_xact_lock): lobby/services/locks.py, lock_knock.
    "SELECT",
    # What the knock decides on, in a statement after the locks (READ COMMITTED: it sees every
    # knock committed before them): the queue, the guest's own pending knock, the rate limit
    # and the active webhook endpoints (not cached with Redis). knocks._read_before_knock.
    "SELECT",
    "WITH",  # the knock's INSERT in a WITH, and the audit row's INSERT: one statement
    "COMMIT",
]


def test_a_token_knock_on_postgresql_is_these_statements_and_no_health_check(
    clinic, undelivered, select_ones
):
    assert connection.vendor == "postgresql" and not cache.enabled()
    token = make_token(sub="pat", name="Pat", join_policy={"mode": "ask"})
    services.preauth(room_name="clinic", token=token)
    access, connect = as_a_socket_does(services.preauth, room_name="clinic", token=token)
    assert access.level == "lobby"
    assert connect == ["SELECT"]  # the room with an EXISTS on the token's revocation
    plan, planned = as_a_socket_does(services.join_plan, room_name="clinic", token=token)
    assert planned == ["SELECT"]
    w, knock = as_a_socket_does(
        services.entry_request_knock, plan=plan, conn=conn(address="10.0.0.1")
    )
    assert knock == KNOCK
    assert (w.position, w.total) == (1, 1)
    assert select_ones == []  # Django's CONN_HEALTH_CHECKS sent one SELECT 1 per hop


def test_a_sockets_knock_reads_its_wait_estimate_in_the_knocks_read(clinic, undelivered):
    # entry_request_knock_for_socket: nothing cached with Redis, and no query after the commit.
    token = make_token(sub="pat", name="Pat", join_policy={"mode": "ask"})
    plan = services.join_plan(room_name="clinic", token=token)
    w, knock = as_a_socket_does(
        services.entry_request_knock_for_socket, plan=plan, conn=conn(address="10.0.0.1")
    )
    assert knock == KNOCK
    assert w.seconds_per_guest is None  # too few admissions


def test_a_connection_the_server_ended_is_replaced_before_it_is_used(clinic, select_ones):
    """The guarantee the health check gives: a kept connection that PostgreSQL closed while it
    sat idle (a restart, an administrator, a proxy) is dropped before the next action uses
    it, so the action reconnects instead of failing."""
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    params = connection.get_connection_params()
    with psycopg.connect(**{**params, "autocommit": True}) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's termination reaches our socket (readable: the notice, then EOF).
    sock = connection.connection.pgconn.socket
    deadline = time.monotonic() + 5
    while not select.select([sock], [], [], 0.05)[0]:
        assert time.monotonic() < deadline, "the termination never reached the socket"
    close_old_connections()  # the next socket action
    assert services.get_room("clinic").name == "clinic"  # reconnected, not OperationalError
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
    assert select_ones == [1]  # the socket said "look": Django's SELECT 1 found it dead
