"""Webhooks and alerts with real Daphne processes (slow):

* a receiver down while 40 guests knock, the sending process SIGKILLed mid-delivery and started
  again: every delivery arrives once the receiver is back, none is lost, and a repeat (a crash
  between the answer and its record) carries the same idempotency id;
* two Daphne processes on PostgreSQL + Redis: each event delivered exactly once, each
  unattended notice (e-mail and webhook, first and escalated) sent exactly once;
* a receiver that takes 8 s per request never slows knocks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.faults.helpers import db_rows, join, kill, restart, sqlite_cluster, teardown
from tests.scale.cluster import REDIS_URL, Cluster, fresh_database, require_services
from tests.support.ws import Ws
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.slow

HOOK_ENV = {
    "ANTEROOM_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "ANTEROOM_WEBHOOK_RETRY_BASE": "0.5",
    "ANTEROOM_WEBHOOK_RETRY_CAP": "2",
    "ANTEROOM_WEBHOOK_CONNECT_TIMEOUT": "1",
    "ANTEROOM_WEBHOOK_TIMEOUT": "2",
    "ANTEROOM_WEBHOOK_LEASE": "4",
    "ANTEROOM_ADDRESS_KNOCK_LIMIT": "1000/300",
    "ANTEROOM_MAX_SOCKETS_PER_ADDRESS": "1000",
}


def register(cluster: Cluster, rx: Receiver, events: list[str]) -> None:
    code, body, _ = cluster.rest("POST", "/webhooks", {"url": rx.url, "events": events})
    assert code == 200, body
    rx.secret = body["secret"]


async def knock_all(base: str, room: str, n: int, tag: str) -> list[tuple[Ws, dict[str, Any]]]:
    return list(
        await asyncio.gather(*(join(base, room, f"{tag}{i}", name=f"{tag}{i}") for i in range(n)))
    )


def request_ids(joined: list[tuple[Ws, dict[str, Any]]]) -> set[str]:
    out = set()
    for ws, ack in joined:
        assert ack["ok"], ack
        waiting = [f for f in ws.unread + ws.seen if f["type"] == "waiting"]
        out.add(waiting[0]["request"]["id"] if waiting else ack["data"]["request"]["id"])
    return out


async def close(joined: list[tuple[Ws, dict[str, Any]]]) -> None:
    for ws, _ in joined:
        ws.ws.transport.abort()


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# SIGKILL of the sending process ------------------------------------------------------------------


async def test_receiver_down_then_sigkill_then_back_every_delivery_arrives(tmp_path: Path):
    rx = Receiver().start()
    port = rx.port
    try:
        with sqlite_cluster(tmp_path, **HOOK_ENV) as cluster:
            cluster.room("clinic")
            register(cluster, rx, ["knock.created"])
            rx.stop()  # down
            joined = await knock_all(cluster.bases[0], "clinic", 40, "g")
            ids = request_ids(joined)
            assert len(ids) == 40
            url = cluster.env["DATABASE_URL"]
            sql = "SELECT COUNT(*), MAX(attempts) FROM lobby_webhookdelivery WHERE status=%s"
            # The server keeps retrying the head of the room's chain while the receiver is down.
            wait_until(lambda: db_rows(url, sql, "pending")[0][1] >= 2, 20, "retries")
            assert db_rows(url, sql, "pending")[0][0] == 40
            # Back, but slow: the process is killed while it is delivering.
            rx = Receiver(port=port, secret=rx.secret, delay=0.2).start()
            wait_until(lambda: len(rx.got) >= 5, 30, "the first deliveries")
            await close(joined)
            kill(cluster)
            before_restart = len(rx.got)
            assert before_restart < 40
            rx.delay = 0
            restart(cluster)
            wait_until(lambda: len(set(rx.ids())) >= 40, 60, "every delivery")
            wait_until(
                lambda: db_rows(url, sql, "delivered")[0][0] == 40, 30, "every row delivered"
            )
            got = list(rx.got)
            assert all(g.signature_ok for g in got)
            by_id = collections.Counter(g.delivery_id for g in got)
            delivered_ids = {
                str(uuid.UUID(str(r[0])))
                for r in db_rows(url, "SELECT id FROM lobby_webhookdelivery")
            }
            assert set(by_id) == delivered_ids  # nothing lost, nothing invented
            # A repeat is the same delivery (same id, same body): at most the one in flight.
            assert sum(n - 1 for n in by_id.values()) <= 1
            bodies: dict[str, set[bytes]] = collections.defaultdict(set)
            for g in got:
                bodies[g.delivery_id].add(g.body)
            assert all(len(b) == 1 for b in bodies.values())
            knocked = {g.json["data"]["request"]["id"] for g in got}
            assert knocked == ids
            # In order: the room's knocks arrive as they were written.
            first_seen = list(dict.fromkeys(g.delivery_id for g in got))
            seq = [
                str(uuid.UUID(str(r[0])))
                for r in db_rows(url, "SELECT id FROM lobby_webhookdelivery ORDER BY seq")
            ]
            assert first_seen == seq
    finally:
        rx.stop()


# Two processes on PostgreSQL + Redis ------------------------------------------------------------


@contextlib.contextmanager
def pg_cluster(tmp: Path, **env: str):
    require_services()
    with fresh_database() as url:
        cluster = Cluster(tmp, url, REDIS_URL, **env)
        cluster.start(2)
        try:
            yield cluster
        except BaseException:
            print(cluster.logs_text())
            raise
        finally:
            teardown(cluster)


def mails(folder: Path) -> list[str]:
    return [p.read_text() for p in sorted(folder.glob("*.log"))] if folder.exists() else []


async def test_two_processes_deliver_each_event_and_send_each_notice_exactly_once(tmp_path):
    rx = Receiver().start()
    mail_dir = tmp_path / "mail"
    env = {
        **HOOK_ENV,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    try:
        with pg_cluster(tmp_path, **env) as cluster:
            cluster.room("clinic", knock_ttl=120)
            code, body, _ = cluster.rest(
                "PUT",
                "/rooms/clinic/alerts",
                {
                    "unattended_after": 10,
                    "escalate_after": 10,
                    "contacts": ["desk@clinic.example"],
                    "escalation_contacts": ["head@clinic.example"],
                },
            )
            assert code == 200, body
            register(cluster, rx, ["*"])
            # 30 guests knock, half through each process.
            joined = await knock_all(cluster.bases[0], "clinic", 15, "a")
            joined += await knock_all(cluster.bases[1], "clinic", 15, "b")
            ids = request_ids(joined)
            assert len(ids) == 30

            def kinds() -> collections.Counter[tuple[str, str, str]]:
                out: collections.Counter[tuple[str, str, str]] = collections.Counter()
                for b in rx.bodies():
                    if not b["type"].startswith("knock."):
                        continue
                    level = b["data"].get("notice", {}).get("level", "")
                    out[(b["type"], b["data"]["request"]["id"], level)] += 1
                return out

            # No moderator anywhere: after 10 s each knock is unattended, 10 s later escalated.
            wait_until(
                lambda: sum(1 for k in kinds() if k[2] == "escalated") >= 30, 60, "escalations"
            )
            # Admit them all over REST (through process 0): resolved + joined events.
            for rid in ids:
                code, body, _ = cluster.rest(
                    "POST", f"/rooms/clinic/entry-requests/{rid}/admit", {}, i=1
                )
                assert code == 200 and body["effective"], body
            wait_until(lambda: len(rx.got) >= 30 * 5, 60, "every event")
            time.sleep(3)  # anything duplicated would have arrived by now
            got = list(rx.got)
            assert all(g.signature_ok for g in got)
            by_id = collections.Counter(g.delivery_id for g in got)
            assert max(by_id.values()) == 1, "a delivery arrived twice"
            k = kinds()
            for rid in ids:
                assert k[("knock.created", rid, "")] == 1
                assert k[("knock.unattended", rid, "unattended")] == 1
                assert k[("knock.unattended", rid, "escalated")] == 1
                assert k[("knock.resolved", rid, "")] == 1
            joined_events = [b for b in rx.bodies() if b["type"] == "participant.joined"]
            assert len(joined_events) == 30
            assert len(got) == 150
            # Each notice e-mailed once: 30 first notices, 30 escalations.
            sent = mails(mail_dir)
            firsts = sum(m.count("To: desk@clinic.example") for m in sent)
            escalations = sum(m.count("To: head@clinic.example") for m in sent)
            assert (firsts, escalations) == (30, 30)
            rows = db_rows(
                cluster.env["DATABASE_URL"],
                "SELECT level, COUNT(*) FROM lobby_alertemail WHERE status='sent' GROUP BY level",
            )
            assert sorted(rows) == [(1, 30), (2, 30)]
            # Both processes sent some deliveries (the work is shared).
            owners = db_rows(
                cluster.env["DATABASE_URL"],
                "SELECT COUNT(*) FROM lobby_webhookdelivery WHERE status='delivered'",
            )
            assert owners == [(150,)]
            await close(joined)
    finally:
        rx.stop()


# A slow receiver never slows knocks ---------------------------------------------------------


async def test_a_slow_receiver_never_slows_knocks(tmp_path):
    rx = Receiver(delay=8).start()
    env = {**HOOK_ENV, "ANTEROOM_WEBHOOK_TIMEOUT": "10", "ANTEROOM_WEBHOOK_LEASE": "30"}
    try:
        with sqlite_cluster(tmp_path, **env) as cluster:
            for i in range(4):
                cluster.room(f"room{i}")
            register(cluster, rx, ["*"])
            joined: list[tuple[Ws, dict[str, Any]]] = []
            started = time.monotonic()
            took = []
            for i in range(30):
                t = time.monotonic()
                joined.append(await join(cluster.bases[0], f"room{i % 4}", f"g{i}", name=f"g{i}"))
                took.append(time.monotonic() - t)
            elapsed = time.monotonic() - started
            # Every knock was answered while the receiver was still busy with the first ones:
            # no knock waited for a delivery (each one would cost 8 s).
            assert all(ack["ok"] for _, ack in joined)
            assert elapsed < 8, (elapsed, took)
            assert max(took) < 4, took
            assert len(rx.got) <= 4 * 4, len(rx.got)  # at most 4 attempts per endpoint at once
            await close(joined)
    finally:
        rx.stop()
