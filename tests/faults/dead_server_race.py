"""Run as ``python -m tests.faults.dead_server_race`` with ``DATABASE_URL`` set to a fresh,
migrated PostgreSQL database; prints one JSON line. Used by ``test_dead_server_race.py``.

A guest of a process that died resumes on a live process at the moment a sweeper declares the
dead process dead. The interleaving is forced with a row lock held by a third connection: the
resume's re-attach waits on it first, then the sweeper's dead-process pass; the lock is
released and both finish in that order. Nothing in the code under test is patched.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import timedelta
from typing import Any

import django


def main() -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    import psycopg
    from django.db import connection

    from lobby import clock, services
    from lobby.models import EntryRequest, ServerProcess

    services.room_create(
        actor=services.Actor.command("tests"),
        name="race",
        privacy="private",
        enable_knocking=True,
        knock_ttl=600,
    )
    plan = services.join_plan(room_name="race", token=None, name="Pat")
    dead = services.Connection(
        server_id="dead-1", connection_id="c-dead", client_address="10.0.0.1"
    )
    w = services.entry_request_knock(plan=plan, conn=dead)
    now = clock.now()
    # The process that held Pat's socket was SIGKILLed 30 s ago: its heartbeat stopped.
    ServerProcess.objects.create(
        server_id="dead-1",
        started_at=now - timedelta(minutes=5),
        heartbeat_at=now - timedelta(seconds=30),
    )
    connection.close()

    url = os.environ["DATABASE_URL"]
    gate = psycopg.connect(url)
    gate.execute("SELECT 1 FROM lobby_entryrequest WHERE id = %s FOR UPDATE", (w.request.id,))
    errors: list[BaseException] = []

    def run(fn: Any) -> threading.Thread:
        def target() -> None:
            try:
                fn()
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connection.close()

        t = threading.Thread(target=target)
        t.start()
        return t

    def resume() -> None:
        again = services.join_plan(room_name="race", token=None, resume=w.resume)
        alive = services.Connection(
            server_id="alive-2", connection_id="c-alive", client_address="10.0.0.1"
        )
        services.entry_request_knock(plan=again, conn=alive)

    def waiting_on_locks() -> int:
        with psycopg.connect(url, autocommit=True) as c:
            row = c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            return int(row[0]) if row else 0

    def until(n: int) -> None:
        deadline = time.monotonic() + 10
        while waiting_on_locks() < n:
            if errors or time.monotonic() > deadline:
                raise RuntimeError(f"never {n} waiting on the row lock: {errors}")
            time.sleep(0.02)

    threads = [run(resume)]
    until(1)  # the resume waits for the row
    threads.append(run(lambda: services.sweep()))
    until(2)  # so does the sweeper, after it has chosen which knocks the dead process held
    gate.commit()
    gate.close()
    for t in threads:
        t.join(20)
    if errors:
        raise errors[0]
    after = EntryRequest.objects.get(pk=w.request.id)
    result = {
        "after_race": {
            "status": after.status,
            "server_id": after.server_id,
            "connected": after.disconnected_at is None,
        }
    }
    services.sweep()  # a later pass, as the sweepers keep running
    after = EntryRequest.objects.get(pk=w.request.id)
    result["after_next_sweep"] = {
        "status": after.status,
        "cancel_reason": after.cancel_reason or None,
        "connected": after.disconnected_at is None,
    }
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
