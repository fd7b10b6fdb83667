"""``manage.py loadtest_webhooks``: webhook delivery latency under a knock storm.

Starts Anteroom (``runner.start_anteroom``: SQLite, or PostgreSQL + Redis with several
processes), a webhook receiver on 127.0.0.1 (verifying every signature), registers it for
``knock.created``, then ``--knocks`` guests knock at once (spread over ``--rooms`` rooms). For
each delivery: *commit → receiver*, from the event's ``created_at`` (stamped inside the knock's
transaction, so it also counts the commit) to its arrival; and each knock's *knock → waiting*
time as the guest sees it. Reports p50/p90/p99/max, deliveries lost and duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import os
import queue
import tempfile
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import runner


def _serve(conn: Any, out: Any) -> None:
    """The receiver, in a process of its own (its threads must not slow the measuring client):
    sends its port, reads the secret, then puts (arrival, created_at, id, signature ok) on
    ``out`` for every delivery."""
    secret = ""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            at = time.time()
            ts = self.headers.get("Anteroom-Webhook-Timestamp", "")
            mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256)
            ok = hmac.compare_digest(
                "v1=" + mac.hexdigest(), self.headers.get("Anteroom-Webhook-Signature", "")
            )
            created = json.loads(body)["created_at"]
            out.put((at, created, self.headers.get("Anteroom-Webhook-Id", ""), ok))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    conn.send(server.server_address[1])
    secret = conn.recv()
    server.serve_forever()


class _Receiver:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.out = ctx.Queue()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.out), daemon=True)
        self.proc.start()
        self.port = int(self.conn.recv())
        self.got: list[tuple[float, str, str, bool]] = []

    def set_secret(self, secret: str) -> None:
        self.conn.send(secret)

    def collect(self) -> int:
        with contextlib.suppress(queue.Empty):
            while True:
                self.got.append(self.out.get_nowait())
        return len(self.got)

    def close(self) -> None:
        self.proc.kill()
        self.proc.join(5)


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))], 1)


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": _pct(values, 50),
        "p90_ms": _pct(values, 90),
        "p99_ms": _pct(values, 99),
        "max_ms": round(max(values), 1) if values else None,
    }


async def run(
    *,
    knocks: int = 200,
    rooms: int = 1,
    processes: int = 1,
    database_url: str | None = None,
    redis_url: str | None = None,
    timeout: float = 120.0,
    log_dir: Path | None = None,
    webhook: bool = True,
) -> dict[str, Any]:
    """One storm; ``webhook=False`` registers no endpoint (the knocks' baseline)."""
    runner.raise_fd_limit()
    os.environ["ANTEROOM_WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="anteroom-webhook-lt-"))
    rx = _Receiver()
    hook: dict[str, Any] = {}
    target = runner.start_anteroom(
        processes=processes, database_url=database_url, redis_url=redis_url, log_dir=log_dir
    )
    try:
        if webhook:
            hook = await asyncio.to_thread(
                target.rest.call,
                "POST",
                "/webhooks",
                {"url": f"http://127.0.0.1:{rx.port}/hook", "events": ["knock.created"]},
            )
            rx.set_secret(hook["secret"])
        else:
            rx.set_secret("")
        names = [await target.room(size_hint=knocks) for _ in range(rooms)]
        guests: list[runner.Sock] = []
        toks: list[str] = []
        per_room = [knocks // rooms + (1 if i < knocks % rooms else 0) for i in range(rooms)]
        for name, n in zip(names, per_room, strict=True):
            socks, t = await runner.knocking_guests(target, name, n, f"{name}-g")
            guests += socks
            toks += t
        await runner.settle(target, limit=5.0)
        waited: dict[int, float] = {}
        sent_at: dict[int, float] = {}

        def on_frame(sock: runner.Sock, frame: dict[str, Any], t: float) -> None:
            if frame.get("type") == "waiting":
                waited.setdefault(int(sock.tag), t)

        for i, g in enumerate(guests):
            g.tag = i
            g.on_frame = on_frame
        for i, g in enumerate(guests):  # the storm: every knock sent back to back
            sent_at[i] = time.perf_counter()
            await g.send(type="join", token=toks[i])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rx.collect() >= knocks or (not webhook and len(waited) >= knocks):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # late duplicates, if any
        rx.collect()
        got = list(rx.got)
        latencies = [
            (at - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()) * 1000
            for at, created, _, _ in got
        ]
        ids = [i for _, _, i, _ in got]
        knock_ms = [(waited[i] - sent_at[i]) * 1000 for i in waited]
        await runner.close_all(guests)
        return {
            "webhook": webhook,
            "knocks": knocks,
            "rooms": rooms,
            "target": target.name,
            "delivered": len(set(ids)),
            "lost": knocks - len(set(ids)),
            "duplicates": len(ids) - len(set(ids)),
            "bad_signatures": sum(1 for *_, ok in got if not ok),
            "commit_to_receiver": _stats(latencies),
            "knock_to_waiting": _stats(knock_ms),
            "all_delivered_after_s": round(
                (max(at for at, *_ in got) - min(at for at, *_ in got)), 2
            )
            if got
            else None,
        }
    finally:
        if hook:  # a reused PostgreSQL database must not keep it for the next run
            with contextlib.suppress(Exception):
                target.rest.call("DELETE", f"/webhooks/{hook['id']}")
        with contextlib.suppress(Exception):
            target.close()
        rx.close()
