"""``/metrics``: Prometheus text format, protected by ``ANTEROOM_METRICS_TOKEN``."""

from __future__ import annotations

import asyncio
import re

import pytest
from django.test import override_settings

from lobby import clock, services
from tests.factories import make_room
from tests.security.helpers import decide, knock

TOKEN = "metrics-s3cret-token"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> dict[str, float]:
    """Samples by ``name{labels}``; asserts every sample's family was declared with TYPE."""
    declared: set[str] = set()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        assert m.group(1) in declared or family in declared, f"no TYPE for {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def scrape(client) -> dict[str, float]:
    resp = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert resp.status_code == 200
    assert resp["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(resp.content.decode())


@pytest.mark.django_db
def test_metrics_are_off_unless_a_token_is_configured(client):
    with override_settings(ANTEROOM_METRICS_TOKEN=""):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
@override_settings(ANTEROOM_METRICS_TOKEN=TOKEN)
def test_metrics_need_the_bearer_token(client):
    for header in (None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"):
        extra = {"HTTP_AUTHORIZATION": header} if header else {}
        resp = client.get("/metrics", **extra)
        assert resp.status_code == 401, header
        assert resp["WWW-Authenticate"].startswith("Bearer")
        assert b"anteroom_" not in resp.content
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert "anteroom_knocks_total" in scrape(client)


@pytest.mark.django_db(transaction=True)
@override_settings(ANTEROOM_METRICS_TOKEN=TOKEN)
def test_metrics_follow_the_lobby(client):
    room = make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)
    before = scrape(client)
    w = [knock(room, name=f"g{i}", address=f"10.9.0.{i}") for i in range(4)]
    clock.advance(12)
    decide(room, w[0].request.id)
    decide(room, w[1].request.id, "denied")
    services.entry_request_cancel(room=room, request_id=w[2].request.id)
    now = scrape(client)

    def delta(name: str) -> float:
        return now.get(name, 0) - before.get(name, 0)

    assert delta("anteroom_knocks_total") == 4
    assert delta('anteroom_decisions_total{outcome="admitted"}') == 1
    assert delta('anteroom_decisions_total{outcome="denied"}') == 1
    assert delta('anteroom_entry_cancellations_total{reason="aborted"}') == 1
    # One admission after ~12 s: in the 15 s bucket, not in the 10 s one.
    assert delta("anteroom_time_to_admit_seconds_count") == 1
    assert delta('anteroom_time_to_admit_seconds_bucket{le="10.0"}') == 0
    assert delta('anteroom_time_to_admit_seconds_bucket{le="15.0"}') == 1
    assert 12 <= delta("anteroom_time_to_admit_seconds_sum") < 14
    assert now["anteroom_waiting_guests"] == 1
    assert now["anteroom_sweeper_lag_seconds"] == 0
    assert now["anteroom_database_up"] == 1

    # The last guest's deadline passes with no sweep: the lag shows it, and waiting drops.
    clock.advance(60)
    stale = scrape(client)
    assert stale["anteroom_waiting_guests"] == 0
    assert 11 <= stale["anteroom_sweeper_lag_seconds"] < 14
    services.sweep()
    swept = scrape(client)
    assert swept["anteroom_sweeper_lag_seconds"] == 0
    assert swept["anteroom_sweeps_total"] == stale.get("anteroom_sweeps_total", 0) + 1
    assert (
        swept['anteroom_entry_cancellations_total{reason="timeout"}']
        == stale.get('anteroom_entry_cancellations_total{reason="timeout"}', 0) + 1
    )


@pytest.mark.django_db(transaction=True)
@override_settings(ANTEROOM_METRICS_TOKEN=TOKEN)
def test_histogram_buckets_are_cumulative(client):
    samples = scrape(client)
    buckets = [
        (k, v) for k, v in samples.items() if k.startswith("anteroom_time_to_admit_seconds_bucket")
    ]
    values = [v for _, v in buckets]
    assert values == sorted(values)
    assert buckets[-1][0].endswith('le="+Inf"}')
    assert values[-1] == samples["anteroom_time_to_admit_seconds_count"]


@pytest.mark.django_db(transaction=True)
@override_settings(ANTEROOM_METRICS_TOKEN=TOKEN)
async def test_open_sockets_gauge_counts_this_process(clients, async_client):

    async def open_sockets() -> float:
        resp = await async_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        return parse(resp.content.decode())["anteroom_open_sockets"]

    base = await open_sockets()
    a = await clients("clinic")
    b = await clients("clinic")
    assert await open_sockets() == base + 2
    await a.close()
    await b.close()
    await asyncio.sleep(0.05)
    assert await open_sockets() == base
