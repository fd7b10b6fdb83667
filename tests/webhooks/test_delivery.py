"""Sending: a real receiver on 127.0.0.1 checks signatures, payloads and idempotency ids;
retries with backoff while it is down; per-room order; giving up; replay; no redirects; the
address rules checked again at send time."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client as HttpClient

from lobby import clock, services
from lobby.api.auth import api_key_create
from lobby.models import WebhookDelivery, WebhookEvent
from lobby.runtime.process import SERVER_ID
from lobby.webhooks import delivery, signing
from lobby.webhooks.delivery import deliver_pending
from tests.factories import make_room
from tests.webhooks.helpers import endpoint, knock, mod_actor
from tests.webhooks.receiver import Receiver


@pytest.fixture
def room(db, settings):
    settings.ANTEROOM_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.ANTEROOM_WEBHOOK_RETRY_BASE = 2
    settings.ANTEROOM_WEBHOOK_RETRY_CAP = 60
    settings.ANTEROOM_WEBHOOK_RETRY_FOR = 600
    settings.ANTEROOM_WEBHOOK_TIMEOUT = 2
    return make_room("clinic", privacy="private", enable_knocking=True)


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def start(**kw) -> Receiver:
        r = Receiver(**kw).start()
        made.append(r)
        return r

    yield start
    for r in made:
        r.stop()


def send() -> int:
    return deliver_pending(owner=SERVER_ID)


def test_signed_deliveries_with_payloads_and_idempotency_ids(room, receiver):
    rx = receiver()
    _, secret = endpoint(rx.url)
    rx.secret = secret
    r = knock(name="Ada")
    services.entry_request_decide(room=room, request_id=r.id, actor=mod_actor(), outcome="admitted")
    assert send() == 3
    got = rx.wait_for(3)
    assert [g.json["type"] for g in got] == [
        "knock.created",
        "knock.resolved",
        "participant.joined",
    ]
    for g in got:
        assert g.signature_ok, g.headers
        assert g.path == "/hooks/anteroom?x=1"
        assert g.headers["content-type"] == "application/json"
        assert g.headers["user-agent"] == "Anteroom-Webhooks/1"
        assert g.headers["anteroom-webhook-event"] == g.json["type"]
        assert g.headers["host"] == f"127.0.0.1:{rx.port}"
    rows = list(WebhookDelivery.objects.select_related("event").order_by("seq"))
    assert [g.delivery_id for g in got] == [str(d.id) for d in rows]
    assert [g.body.decode() for g in got] == [d.event.body for d in rows]  # the signed bytes
    assert got[0].json["data"]["request"]["id"] == str(r.id)
    assert all(d.status == "delivered" and d.attempts == 1 for d in rows)
    assert all(d.last_status_code == 200 and d.delivered_at for d in rows)
    # A wrong secret or a changed body does not verify.
    g = got[0]
    ts = g.headers["anteroom-webhook-timestamp"]
    sig = g.headers["anteroom-webhook-signature"]
    now = time.time()
    assert signing.verify(secret, ts, g.body, sig, now=now)
    assert not signing.verify("whsec_other", ts, g.body, sig, now=now)
    assert not signing.verify(secret, ts, g.body + b" ", sig, now=now)
    assert not signing.verify(secret, ts, g.body, sig, now=now + 3600)  # replayed much later
    assert send() == 0 and len(rx.got) == 3  # nothing is sent twice


def test_the_receiver_down_for_a_while_gets_everything_once_it_is_back(room, receiver):
    rx = receiver()
    port = rx.port
    _, rx.secret = endpoint(rx.url)
    rx.stop()
    first = [knock(name=f"G{i}") for i in range(3)]
    assert send() == 0
    d = WebhookDelivery.objects.order_by("seq")[0]
    assert d.status == "pending" and d.attempts == 1 and "Connection" in d.last_error
    # Only the head of the room's chain was tried; the next retry is 1-2 s away (jitter).
    assert list(WebhookDelivery.objects.values_list("attempts", flat=True)) == [1, 0, 0]
    wait = (d.next_attempt_at - clock.now()).total_seconds()
    assert 0.9 <= wait <= 2.1, wait
    clock.advance(1)
    send()
    assert WebhookDelivery.objects.order_by("seq")[0].attempts in (1, 2)
    for expected in (2, 3, 4):
        clock.advance(60)
        assert send() == 0
        head = WebhookDelivery.objects.order_by("seq")[0]
        assert head.attempts == expected
    # Backoff doubles: attempt 4 failed, the next is 2*2^3 = 16 s * [0.5, 1] away.
    wait = (head.next_attempt_at - clock.now()).total_seconds()
    assert 7.9 <= wait <= 16.1, wait
    later = knock(name="Late")  # written while the receiver is down, too
    rx2 = receiver(port=port, secret=rx.secret)
    clock.advance(60)
    assert send() == 4
    got = rx2.wait_for(4)
    assert [g.json["data"]["request"]["name"] for g in got] == ["G0", "G1", "G2", "Late"]
    assert all(g.signature_ok for g in got)
    assert got[0].headers["anteroom-webhook-attempt"] == "5"
    ids = [str(i) for i in WebhookDelivery.objects.order_by("seq").values_list("id", flat=True)]
    assert [g.delivery_id for g in got] == ids  # the same id on every attempt
    assert first and later


def test_order_is_per_room_and_other_rooms_do_not_wait(room, receiver):
    make_room("other", privacy="private", enable_knocking=True)
    rx = receiver(status=500)
    _, rx.secret = endpoint(rx.url)
    a1 = knock("clinic", name="A1")
    knock("clinic", name="A2")
    send()
    assert WebhookDelivery.objects.filter(status="pending").count() == 2
    rx.status = 200
    knock("other", name="B1")
    send()  # clinic's head waits for its retry; other's goes at once
    names = [b["data"]["request"]["name"] for b in rx.bodies()]
    assert names == ["A1", "B1"]  # A1's failed attempt, then B1
    assert [g.headers["anteroom-webhook-attempt"] for g in rx.got] == ["1", "1"]
    clock.advance(3)
    send()
    names = [b["data"]["request"]["name"] for b in rx.bodies()]
    assert names == ["A1", "B1", "A1", "A2"]
    assert a1


def test_a_delivery_gives_up_after_the_retry_window_and_can_be_replayed(room, receiver, settings):
    settings.ANTEROOM_WEBHOOK_RETRY_FOR = 30
    rx = receiver(status=503)
    ep, rx.secret = endpoint(rx.url)
    knock(name="A")
    send()
    clock.advance(20)
    knock(name="B")  # waits behind A, its window (from its own event) runs to t=50
    send()
    for _ in range(2):
        clock.advance(8)
        send()
    first, second = WebhookDelivery.objects.order_by("seq")
    assert first.status == "failed" and first.last_error == "HTTP 503"
    assert first.last_status_code == 503 and first.attempts >= 3
    # Giving up unblocks the room's next delivery, which keeps retrying within its own window.
    assert second.status == "pending" and second.attempts >= 1
    rx.status = 200
    clock.advance(60)
    send()
    second.refresh_from_db()
    assert second.status == "delivered"
    # Manual replay over REST: a new delivery id, the same event id, after the queue.
    _, key = api_key_create(name="ops")
    http = HttpClient(headers={"authorization": f"Bearer {key}"})
    resp = http.post(f"/api/v1/webhooks/{ep.pk}/deliveries/{first.id}/replay")
    assert resp.status_code == 200, resp.content
    replay = resp.json()
    assert replay["replay_of"] == str(first.id) and replay["id"] != str(first.id)
    assert replay["event_id"] == str(first.event_id) and replay["status"] == "pending"
    send()
    last = rx.got[-1]
    assert last.delivery_id == replay["id"] and last.json["id"] == str(first.event_id)
    log = http.get(f"/api/v1/webhooks/{ep.pk}/deliveries").json()
    assert log["total_count"] == 3
    assert [d["status"] for d in log["data"]] == ["delivered", "delivered", "failed"]
    assert log["data"][2]["attempts"] >= 3 and log["data"][2]["last_error"] == "HTTP 503"
    failed = http.get(f"/api/v1/webhooks/{ep.pk}/deliveries?status=failed").json()
    assert failed["total_count"] == 1
    assert http.get(f"/api/v1/webhooks/{ep.pk}/deliveries?status=nope").status_code == 400
    other = http.post(f"/api/v1/webhooks/{ep.pk}/deliveries/not-a-uuid/replay")
    assert other.json()["error"]["code"] == "WEBHOOK_DELIVERY_NOT_FOUND"


def test_redirects_are_not_followed(room, receiver):
    target = receiver()
    rx = receiver(status=302, location=target.url)
    _, rx.secret = endpoint(rx.url)
    knock()
    send()
    d = WebhookDelivery.objects.get()
    assert d.status == "pending" and d.last_error == "HTTP 302" and len(rx.got) == 1
    assert target.got == []


def test_the_address_rules_are_checked_again_before_each_attempt(room, receiver, settings):
    rx = receiver()
    endpoint(rx.url)
    knock()
    settings.ANTEROOM_WEBHOOK_ALLOWED_HOSTS = []  # e.g. the name now resolves elsewhere
    send()
    d = WebhookDelivery.objects.get()
    assert d.status == "pending" and "loopback" in d.last_error
    assert rx.got == []


def test_a_slow_receiver_times_out_and_is_retried(room, receiver, settings):
    settings.ANTEROOM_WEBHOOK_TIMEOUT = 0.5
    rx = receiver(delay=3)
    endpoint(rx.url)
    knock()
    started = time.monotonic()
    send()
    assert time.monotonic() - started < 2.5
    d = WebhookDelivery.objects.get()
    assert d.status == "pending" and "Timeout" in d.last_error


def test_a_huge_answer_is_read_only_up_to_the_cap(room, receiver):
    rx = receiver(answer=b"x" * (5 * 1024 * 1024))
    endpoint(rx.url)
    knock()
    assert send() == 1
    assert WebhookDelivery.objects.get().status == "delivered"


def test_two_claims_of_one_row_one_wins(room):
    endpoint("http://127.0.0.1:9/")
    knock()
    a = delivery.claim_heads(owner="proc-a", limit=10)
    b = delivery.claim_heads(owner="proc-b", limit=10)
    assert len(a) == 1 and b == []
    d = WebhookDelivery.objects.get()
    assert d.lease_owner == "proc-a" and d.attempts == 1
    # The holder died: once its lease ran out, another process retries the row.
    clock.advance(61)
    b = delivery.claim_heads(owner="proc-b", limit=10)
    assert [x.pk for x in b] == [d.pk] and b[0].attempts == 2


def test_event_bodies_are_compact_json(room, receiver):
    rx = receiver()
    endpoint(rx.url)
    knock(name="Zoë")
    send()
    body = rx.got[0].body
    assert json.loads(body)["data"]["request"]["name"] == "Zoë"
    assert body == WebhookEvent.objects.get().body.encode()


def test_a_storm_in_one_room_is_claimed_in_runs_and_a_raced_head_is_given_back(room, receiver):
    rx = receiver()
    _, rx.secret = endpoint(rx.url)
    for i in range(5):
        knock(name=f"S{i}")
    head = delivery.claim_heads(owner="proc-a", limit=10)
    assert len(head) == 1
    # Another process cannot take the rows behind a head that is held.
    assert delivery.claim_heads(owner="proc-b", limit=10) == []
    assert delivery.send_chain(head[0], owner="proc-a") == 5
    assert [b["data"]["request"]["name"] for b in rx.bodies()] == [f"S{i}" for i in range(5)]
    rows = list(WebhookDelivery.objects.order_by("seq"))
    assert all(d.status == "delivered" and d.attempts == 1 for d in rows)
    assert all(d.lease_owner == "" for d in rows)
    # A run whose head another process took meanwhile is given back whole, uncounted.
    knock(name="T0")
    knock(name="T1")
    other = delivery.claim_heads(owner="proc-b", limit=10)
    assert len(other) == 1
    assert delivery.claim_run(owner="proc-a", after=rows[-1], limit=50) == []
    assert list(
        WebhookDelivery.objects.filter(status="pending")
        .order_by("seq")
        .values_list("lease_owner", "attempts")
    ) == [("proc-b", 1), ("", 0)]


def test_purge_deletes_finished_deliveries_past_retention_and_keeps_pending_ones(room, receiver):
    from io import StringIO

    from django.core.management import call_command

    rx = receiver()
    ep, rx.secret = endpoint(rx.url)
    knock(name="Old")
    send()
    rx.status = 500
    knock(name="Stuck")
    send()
    clock.advance(31 * 86400)
    out = StringIO()
    call_command("purge", stdout=out)
    assert "webhook deliveries deleted: 1" in out.getvalue()
    assert "webhook events deleted: 1" in out.getvalue()
    left = WebhookDelivery.objects.select_related("event").get()
    assert left.status == "pending" and "Stuck" in left.event.body
    assert ep.pk


def test_two_processes_racing_for_one_row_one_claim_wins(room):
    """Both read the row as free before either wrote its claim (the race the conditional
    update settles)."""
    endpoint("http://127.0.0.1:9/")
    knock()
    d = WebhookDelivery.objects.get()
    now = clock.now()
    a = delivery._claim([d.pk], "proc-a", now)
    b = delivery._claim([d.pk], "proc-b", now)
    assert [x.pk for x in a] == [d.pk] and b == []
    d.refresh_from_db()
    assert d.lease_owner == "proc-a" and d.attempts == 1


def test_manage_py_sweep_sends_what_is_due(room, receiver):
    from io import StringIO

    from django.core.management import call_command

    rx = receiver()
    _, rx.secret = endpoint(rx.url)
    knock(name="Cron")
    out = StringIO()
    call_command("sweep", stdout=out)
    assert "webhooks_delivered=1" in out.getvalue()
    assert [b["data"]["request"]["name"] for b in rx.bodies()] == ["Cron"]
    assert rx.got[0].signature_ok


def _self_signed(tmp_path, *, ip: str):
    """A certificate for ``ip`` signed by a throwaway CA; returns (ca.pem, server context)."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return str(ca_pem), ctx


def test_https_receivers_certificates_are_verified(room, receiver, settings, tmp_path):
    ca, ctx = _self_signed(tmp_path, ip="127.0.0.1")
    rx = receiver(tls=ctx)
    _, rx.secret = endpoint(rx.https_url)
    knock(name="Tls")
    send()  # the system's trust store does not know this CA: refused, nothing sent
    d = WebhookDelivery.objects.get()
    assert d.status == "pending" and "SSL" in d.last_error and rx.got == []
    settings.ANTEROOM_WEBHOOK_CA_FILE = ca  # the operator's private CA
    clock.advance(5)
    assert send() == 1
    assert rx.got[0].signature_ok and rx.got[0].json["data"]["request"]["name"] == "Tls"


def test_an_https_certificate_for_another_address_is_refused(room, receiver, settings, tmp_path):
    ca, ctx = _self_signed(tmp_path, ip="127.0.0.2")
    settings.ANTEROOM_WEBHOOK_CA_FILE = ca
    rx = receiver(tls=ctx)
    endpoint(rx.https_url)
    knock()
    send()
    d = WebhookDelivery.objects.get()
    assert d.status == "pending" and rx.got == []
    assert "SSL" in d.last_error or "match" in d.last_error
