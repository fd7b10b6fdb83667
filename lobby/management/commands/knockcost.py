"""``python manage.py knockcost``: what one knock costs the server's ORM thread, counted in
process — CPU, statements and (on PostgreSQL) round trips — without sockets, a client or the
load of the machine in the figure.

Each knock does what a guest's socket does (``lobby/consumers.py``): ``preauth``, ``join_plan``
and ``entry_request_knock_for_socket``, each as one hop to the ORM thread (wrapped in
``close_old_connections()`` as Channels' ``database_sync_to_async`` does), with a personal
token of its own (the load test's guests). Events are built and handed over after the commit
as on a server, but not sent: delivery is the event loop's work (``lobby/events.py``), not the
ORM thread's. Runs on the configured database (``DATABASE_URL``; ``REDIS_URL`` turns the
process caches off as on a scaled-out server), in a new room per round.

CPU is this thread's (``time.thread_time``), so other processes on the machine do not add to
it, but a busy machine still slows it (shared caches, frequency). For figures that do not move
with the load, run it under callgrind and compare instruction counts (see
docs/deployment.md, "Benchmark (issue 13"): ``--knocks`` twice and take the difference, which
removes start-up.
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection

from lobby import cache, events, services
from lobby.tokens import mint_token


class Command(BaseCommand):
    help = (
        "CPU, statements and round trips per knock through the service layer, in process "
        "(preauth, join_plan, the knock: three ORM hops as a socket does; no delivery)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--knocks", type=int, default=200, help="knocks per round")
        parser.add_argument("--rounds", type=int, default=3, help="rounds (a new room each)")
        parser.add_argument("--warmup", type=int, default=20, help="untimed knocks first")
        parser.add_argument("--migrate", action="store_true", help="run migrate first")
        parser.add_argument(
            "--guest",
            action="store_true",
            help="token-less guests (a browser key and an address each) instead of tokens",
        )
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")
        parser.add_argument(
            "--callgrind",
            action="store_true",
            help="under valgrind --tool=callgrind --instr-atstart=no: instrument only the "
            "measured rounds, one dump each (needs gcc and valgrind's callgrind.h)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["migrate"]:
            call_command("migrate", verbosity=0)
        handed: list[int] = []

        def hand_over(send: Any, batch: list[Any]) -> None:
            handed.append(len(batch))  # built after the commit, as on a server; not sent

        events._deliver = hand_over
        counter = _RoundTrips()
        callgrind = _Callgrind() if opts["callgrind"] else None
        if callgrind is not None:
            # Under valgrind a knock takes ~0.5 s: the process caches' 2-second lapse (for edits
            # made outside the process, none here) would turn hits into misses by the clock.
            cache.TTL = 1e9
        if opts["warmup"] > 0:
            self._knocks(*self._prepare(opts["warmup"], guest=opts["guest"]), timers=None)
        rounds: list[dict[str, float]] = []
        for _ in range(opts["rounds"]):
            timers: dict[str, float] = {"preauth": 0.0, "join_plan": 0.0, "knock": 0.0}
            prepared = self._prepare(opts["knocks"], guest=opts["guest"])
            with counter, connection.execute_wrapper(counter.statement):
                if callgrind is not None:
                    callgrind.start()
                t0 = time.thread_time()
                self._knocks(*prepared, timers=timers)
                cpu = time.thread_time() - t0
                if callgrind is not None:
                    callgrind.stop(f"knocks-{len(rounds) + 1}")
            n = opts["knocks"]
            rounds.append(
                {
                    "cpu_ms_per_knock": cpu * 1000 / n,
                    **{f"{k}_ms": v * 1000 / n for k, v in timers.items()},
                    "statements_per_knock": counter.take_statements() / n,
                    "round_trips_per_knock": counter.take_waits() / n,
                }
            )
        summary = {
            "vendor": connection.vendor,
            "knocks": opts["knocks"],
            "rounds": rounds,
            "median_cpu_ms_per_knock": statistics.median(r["cpu_ms_per_knock"] for r in rounds),
            "events_handed_over": sum(handed),
        }
        if opts["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        for r in rounds:
            self.stdout.write(
                f"{connection.vendor}: {r['cpu_ms_per_knock']:.3f} ms CPU per knock "
                f"(preauth {r['preauth_ms']:.3f}, join_plan {r['join_plan_ms']:.3f}, "
                f"knock {r['knock_ms']:.3f}); {r['statements_per_knock']:.2f} statements, "
                f"{r['round_trips_per_knock']:.2f} round trips per knock"
            )

    def _prepare(self, n: int, *, guest: bool) -> tuple[str, str, list[str | None]]:
        """A new room and ``n`` guests' tokens (None: token-less guests)."""
        room = services.room_create(
            actor=services.Actor.command("knockcost"),
            name=f"knockcost-{secrets.token_hex(4)}",
            privacy="private",
            enable_knocking=True,
            knock_ttl=600,
        )
        tag = secrets.token_hex(3)
        tokens: list[str | None] = (
            [None] * n
            if guest
            else [
                mint_token(
                    room=room.name, sub=f"{tag}-{i}", name=f"g{i}", join_policy={"mode": "ask"}
                )
                for i in range(n)
            ]
        )
        return room.name, tag, tokens

    def _knocks(
        self, room: str, tag: str, tokens: list[str | None], *, timers: dict[str, float] | None
    ) -> None:
        close_old_connections()

        def hop(label: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
            t0 = time.thread_time()
            close_old_connections()
            try:
                return fn(**kwargs)
            finally:
                close_old_connections()
                if timers is not None:
                    timers[label] += time.thread_time() - t0

        for i, token in enumerate(tokens):
            conn = services.Connection(
                server_id="knockcost",
                connection_id=secrets.token_hex(16),
                browser_key=f"{tag}-browser-{i}" if token is None else "",
                # Token-less guests also count against their address: one each.
                client_address="127.0.0.1"
                if token
                else f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            )
            hop("preauth", services.preauth, room_name=room, token=token)
            plan = hop("join_plan", services.join_plan, room_name=room, token=token, name=f"g{i}")
            hop("knock", services.entry_request_knock_for_socket, plan=plan, conn=conn)


class _RoundTrips:
    """Counts statements (Django's execute wrapper: not BEGIN/COMMIT) and, on PostgreSQL,
    round trips (psycopg's ``Connection.wait``: one per message exchange, BEGIN and COMMIT
    included)."""

    def __init__(self) -> None:
        self.statements = 0
        self.waits = 0
        self._real: Any = None

    def statement(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements += 1
        return execute(sql, params, many, context)

    def __enter__(self) -> _RoundTrips:
        if connection.vendor == "postgresql":
            import psycopg

            real = self._real = psycopg.Connection.wait

            def counting(conn: Any, gen: Any, *a: Any, **k: Any) -> Any:
                self.waits += 1
                return real(conn, gen, *a, **k)

            psycopg.Connection.wait = counting  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._real is not None:
            import psycopg

            psycopg.Connection.wait = self._real  # type: ignore[method-assign]
            self._real = None

    def take_statements(self) -> int:
        n, self.statements = self.statements, 0
        return n

    def take_waits(self) -> int:
        n, self.waits = self.waits, 0
        return n


_CALLGRIND_C = r"""
#include <valgrind/callgrind.h>
void knockcost_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void knockcost_stop(const char *label) {
    CALLGRIND_DUMP_STATS_AT(label);
    CALLGRIND_STOP_INSTRUMENTATION;
}
"""


class _Callgrind:
    """Callgrind's client requests (zero, start, dump, stop) from a tiny C helper compiled on
    first use: Python cannot issue them itself."""

    def __init__(self) -> None:
        import ctypes
        import hashlib
        import subprocess
        import tempfile
        from pathlib import Path

        digest = hashlib.sha256(_CALLGRIND_C.encode()).hexdigest()[:12]
        lib = Path(tempfile.gettempdir()) / f"knockcost-callgrind-{digest}.so"
        if not lib.exists():
            src = lib.with_suffix(".c")
            src.write_text(_CALLGRIND_C)
            subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        self.lib = ctypes.CDLL(str(lib))
        self.lib.knockcost_stop.argtypes = [ctypes.c_char_p]

    def start(self) -> None:
        self.lib.knockcost_start()

    def stop(self, label: str) -> None:
        self.lib.knockcost_stop(label.encode())
