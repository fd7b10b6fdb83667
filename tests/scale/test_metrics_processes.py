"""Several Daphne processes on one host report one truth at ``/metrics``
(prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request

import pytest

from tests.security.test_metrics import parse
from tests.support.ws import Ws

from .cluster import REDIS_URL, Cluster, fresh_database, require_services

pytestmark = [pytest.mark.slow, pytest.mark.scale]

TOKEN = "scrape-s3cret"


@pytest.fixture(scope="module")
def database():
    require_services()
    with fresh_database() as url:
        yield url


def scrape(base: str) -> dict[str, float]:
    req = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return parse(resp.read().decode())


async def _until(check, timeout: float = 10):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = await asyncio.to_thread(check)
        if last is True:
            return
        if loop.time() > deadline:
            raise AssertionError(f"never true: {last}")
        await asyncio.sleep(0.2)


async def test_each_process_reports_the_hosts_counters_and_sockets(tmp_path, database):
    prom = tmp_path / "prom"
    prom.mkdir()
    cluster = Cluster(
        tmp_path,
        database,
        REDIS_URL,
        PROMETHEUS_MULTIPROC_DIR=str(prom),
        ANTEROOM_METRICS_TOKEN=TOKEN,
    ).start(2)
    a, b = cluster.bases
    socks: list[Ws] = []
    try:
        cluster.room("clinic")
        # Two knocks on A, one on B; a moderator-less lobby keeps them waiting.
        for base, name in ((a, "Ann"), (a, "Bo"), (b, "Cy")):
            guest = await Ws.open(base, "clinic", name)
            socks.append(guest)
            assert (await guest.request("join", name=name))["ok"]
            await guest.expect("waiting")
        on_a, on_b = scrape(a), scrape(b)
        for seen in (on_a, on_b):
            assert seen["anteroom_knocks_total"] == 3
            assert seen["anteroom_open_sockets"] == 3
            assert seen["anteroom_waiting_guests"] == 3
        ids = {k for k in {**on_a, **on_b} if k.startswith("anteroom_process_info")}
        assert len(ids) == 2, ids  # each scrape names the process that answered it

        # A process killed with its sockets open: its open sockets leave the host's gauge, its
        # counted knocks stay counted.
        cluster.procs[0].send_signal(signal.SIGKILL)
        cluster.procs[0].wait(timeout=10)

        def b_forgot_a() -> bool | dict[str, float]:
            seen = scrape(b)
            return seen["anteroom_open_sockets"] == 1 or seen

        await _until(b_forgot_a)
        assert scrape(b)["anteroom_knocks_total"] == 3
        assert os.listdir(prom), "the processes wrote no value files"
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        for s in socks:
            await s.close()
        await asyncio.to_thread(cluster.stop)
