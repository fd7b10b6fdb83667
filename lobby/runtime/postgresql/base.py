"""Django's PostgreSQL backend, with a health check that costs no round trip.

``CONN_HEALTH_CHECKS`` makes Django send ``SELECT 1`` before the first query after every
``close_old_connections()`` — and Channels' ``database_sync_to_async`` calls that around every
socket action, so a knock paid three extra round trips (its three hops to the ORM thread), a
connect one: on a busy two-core machine ~10 % of the ORM thread's time (docs/deployment.md,
issue 13). The single ORM thread of a process waits for every round trip, so they bound its
throughput as much as its CPU.

What the check is for: a kept connection that the server (or the network path) closed while it
sat idle — a PostgreSQL restart, ``pg_terminate_backend``, a proxy cut — must be dropped before
it is used, so the action reconnects instead of failing. Such a connection is always visible
locally: an idle connection receives nothing unless the server ends it (the termination notice
or EOF make the socket readable; Anteroom never ``LISTEN``s). So the check first asks the
socket, with a zero-timeout ``poll``: quiet and in a good state means usable, with no query.
Anything else (readable, a bad libpq status, no socket) falls back to Django's ``SELECT 1``,
which closes the connection if it fails. A connection that is silently unreachable (no FIN, no
RST) fails ``SELECT 1`` no sooner: both wait for TCP.
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        # Django's own flags (not in django-stubs): checks on, and not yet done since the last
        # close_old_connections().
        armed = getattr(self, "health_check_enabled", False) and not getattr(
            self, "health_check_done", True
        )
        if armed and self.connection is not None and not self.pool and self.socket_is_quiet():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def socket_is_quiet(self) -> bool:
        """True if the kept connection is idle, in a good state and nothing arrived on it."""
        conn = self.connection
        if conn is None or conn.closed:
            return False
        pgconn = conn.pgconn
        if (
            pgconn.status != pq.ConnStatus.OK
            or pgconn.transaction_status != pq.TransactionStatus.IDLE
        ):
            return False
        try:
            poller = select.poll()  # not select(): a busy process has fds above FD_SETSIZE
            poller.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
            return not poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return False  # no usable socket: let SELECT 1 decide
