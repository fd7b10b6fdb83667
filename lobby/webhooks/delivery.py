"""Sending the outbox: claims, one attempt, the retry schedule, per-room order.

**Claims.** A process takes a row by a conditional update that sets ``lease_owner`` and
``lease_until`` (on PostgreSQL the candidates are first read ``FOR UPDATE SKIP LOCKED``, so
processes do not queue on each other; on SQLite the writer lock serialises the claims). A
holder that dies leaves its lease to run out (``ANTEROOM_WEBHOOK_LEASE``); another process then
retries the row — a delivery is never lost, and with a crash between the receiver's answer and
the update it may arrive twice, under the same ``Anteroom-Webhook-Id``.

**Order.** Deliveries of one endpoint and one room (``ordering_key``) go out one at a time in
the order their events were written: only the oldest pending one of such a chain can be
claimed. A delivery that is retrying holds the later ones back until it succeeds or gives up.

**Retries.** After a failed attempt ``n`` the next is due in
``min(CAP, BASE * 2**(n-1)) * uniform(0.5, 1)`` seconds; once ``RETRY_FOR`` seconds have passed
since the event, a failure is final (``failed``; a replay sends it again).
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import urllib3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from lobby import clock
from lobby.errors import AnteroomError
from lobby.models import WebhookDelivery

from . import addresses, signing

log = logging.getLogger("anteroom.webhooks")

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Anteroom-Webhooks/1"
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


# Claims ----------------------------------------------------------------------------------------


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def _heads(now: datetime) -> Any:
    """Pending deliveries that are due, unclaimed, and first of their (endpoint, room) chain."""
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        ordering_key=OuterRef("ordering_key"),
        status=WebhookDelivery.Status.PENDING,
        seq__lt=OuterRef("seq"),
    )
    return (
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
            endpoint__active=True,
        )
        .filter(_free(now))
        .exclude(Exists(earlier))
    )


def _claim(pks: list[int], owner: str, now: datetime) -> list[WebhookDelivery]:
    lease = now + timedelta(seconds=settings.ANTEROOM_WEBHOOK_LEASE)
    claimed = []
    for pk in pks:
        # Conditional: of two processes racing for one row, one updates it.
        if (
            WebhookDelivery.objects.filter(pk=pk, status=WebhookDelivery.Status.PENDING)
            .filter(_free(now))
            .update(
                lease_owner=owner,
                lease_until=lease,
                attempts=F("attempts") + 1,
                last_attempt_at=now,
            )
        ):
            claimed.append(pk)
    return list(
        WebhookDelivery.objects.filter(pk__in=claimed)
        .select_related("endpoint", "event")
        .order_by("seq")
    )


def claim_heads(
    *, owner: str, limit: int, skip_endpoints: frozenset[Any] = frozenset()
) -> list[WebhookDelivery]:
    """Claim up to ``limit`` chain heads (oldest first)."""
    now = clock.now()
    with transaction.atomic():
        qs = _heads(now).exclude(endpoint_id__in=skip_endpoints).order_by("seq")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        pks = list(qs.values_list("pk", flat=True)[:limit])
        return _claim(pks, owner, now)


def claim_run(*, owner: str, after: WebhookDelivery, limit: int) -> list[WebhookDelivery]:
    """The next deliveries of ``after``'s chain (the head and those right behind it, all due),
    claimed in one update: a storm in one room costs a few writes, not three per delivery."""
    now = clock.now()
    with transaction.atomic():
        qs = WebhookDelivery.objects.filter(
            endpoint_id=after.endpoint_id,
            ordering_key=after.ordering_key,
            status=WebhookDelivery.Status.PENDING,
            endpoint__active=True,
        ).order_by("seq")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        run: list[int] = []
        for pk, due, lease in qs.values_list("pk", "next_attempt_at", "lease_until")[:limit]:
            if due > now or (lease is not None and lease >= now):
                break  # a retry not due yet, or a row another process holds: the run ends
            run.append(pk)
        if not run:
            return []
        lease_until = now + timedelta(seconds=settings.ANTEROOM_WEBHOOK_LEASE)
        got = (
            WebhookDelivery.objects.filter(pk__in=run, status=WebhookDelivery.Status.PENDING)
            .filter(_free(now))
            .update(
                lease_owner=owner,
                lease_until=lease_until,
                attempts=F("attempts") + 1,
                last_attempt_at=now,
            )
        )
        if got != len(run):
            # Another process took the head meanwhile (it became a head when ``after`` was
            # delivered): give back what this call took, in order that process keeps the run.
            _release(run, owner)
            return []
    return list(
        WebhookDelivery.objects.filter(pk__in=run)
        .select_related("endpoint", "event")
        .order_by("seq")
    )


def _release(pks: list[int], owner: str) -> None:
    """Give back claimed rows that were not attempted (their attempt is not counted)."""
    WebhookDelivery.objects.filter(pk__in=pks, lease_owner=owner, status="pending").update(
        lease_owner="", lease_until=None, attempts=F("attempts") - 1
    )


# One attempt ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""


def retry_delay(attempts: int) -> float:
    """Seconds until the next attempt after ``attempts`` failed ones (with jitter)."""
    base = settings.ANTEROOM_WEBHOOK_RETRY_BASE * 2 ** max(0, min(attempts - 1, 30))
    return min(settings.ANTEROOM_WEBHOOK_RETRY_CAP, base) * random.uniform(0.5, 1.0)  # noqa: S311


def _clean(text: str) -> str:
    return _UNPRINTABLE.sub("?", text)[:300]


def post(d: WebhookDelivery) -> Outcome:
    """One HTTP POST of ``d``: resolve and check the host, connect to that address, send the
    signed body, read at most 64 KiB of the answer. Never raises."""
    ep = d.endpoint
    body = d.event.body.encode()
    try:
        target = addresses.parse_url(ep.url)
        ip = addresses.resolve(target)[0]
    except AnteroomError as exc:
        return Outcome(False, None, _clean(exc.message))
    ts = int(time.time())
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.ID_HEADER: str(d.id),
        signing.EVENT_HEADER: d.event.type,
        signing.TIMESTAMP_HEADER: str(ts),
        signing.SIGNATURE_HEADER: signing.sign(ep.secret, ts, body),
        signing.ATTEMPT_HEADER: str(d.attempts),
    }
    timeout = urllib3.Timeout(
        connect=settings.ANTEROOM_WEBHOOK_CONNECT_TIMEOUT, read=settings.ANTEROOM_WEBHOOK_TIMEOUT
    )
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            str(ip),
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=None if target.is_ip else target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.ANTEROOM_WEBHOOK_CA_FILE,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            str(ip), target.port, timeout=timeout, retries=False, maxsize=1
        )
    started = time.monotonic()
    try:
        resp = pool.urlopen(
            "POST",
            target.target,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            # The answer is read (to keep well-behaved servers happy), capped and timed.
            read = 0
            while read <= MAX_RESPONSE_BYTES:
                if time.monotonic() - started > settings.ANTEROOM_WEBHOOK_TIMEOUT:
                    break
                chunk = resp.read(8192)
                if not chunk:
                    break
                read += len(chunk)
        finally:
            resp.close()
        code = resp.status
    except urllib3.exceptions.HTTPError as exc:
        return Outcome(False, None, _clean(f"{type(exc).__name__}: {exc}"))
    except OSError as exc:
        return Outcome(False, None, _clean(f"{type(exc).__name__}: {exc}"))
    finally:
        pool.close()
    if 200 <= code < 300:
        return Outcome(True, code)
    return Outcome(False, code, f"HTTP {code}")


def record(d: WebhookDelivery, outcome: Outcome, *, owner: str) -> None:
    """Store an attempt's outcome and release the claim. A success is recorded even if the
    lease ran out meanwhile (the receiver has it); a failure only by the lease's holder."""
    now = clock.now()
    q = WebhookDelivery.objects.filter(pk=d.pk, status=WebhookDelivery.Status.PENDING)
    if outcome.ok:
        q.update(
            status=WebhookDelivery.Status.DELIVERED,
            delivered_at=now,
            last_status_code=outcome.status_code,
            last_error="",
            lease_owner="",
            lease_until=None,
        )
        return
    gave_up = now - d.created_at >= timedelta(seconds=settings.ANTEROOM_WEBHOOK_RETRY_FOR)
    q.filter(lease_owner=owner).update(
        status=WebhookDelivery.Status.FAILED if gave_up else WebhookDelivery.Status.PENDING,
        next_attempt_at=now + timedelta(seconds=retry_delay(d.attempts)),
        last_status_code=outcome.status_code,
        last_error=outcome.error,
        lease_owner="",
        lease_until=None,
    )
    log.info(
        "webhook delivery %s to %s failed (attempt %s)%s: %s",
        d.id,
        d.endpoint_id,
        d.attempts,
        ", giving up" if gave_up else "",
        outcome.error,
    )


BATCH = 50


def send_chain(d: WebhookDelivery | None, *, owner: str) -> int:
    """Send ``d`` and, while attempts succeed, the deliveries behind it in its chain (claimed
    in runs of up to 50; each outcome recorded as it comes, so a crash repeats at most the one
    in flight). An attempt is only started while the run's lease outlasts it; the rest of a run
    is given back. Returns how many were delivered."""
    delivered = 0
    run = [d] if d is not None else []
    attempt = timedelta(
        seconds=settings.ANTEROOM_WEBHOOK_TIMEOUT + settings.ANTEROOM_WEBHOOK_CONNECT_TIMEOUT
    )
    while run:
        failed = False
        tried: set[int] = set()
        for x in run:
            if x.lease_until is not None and clock.now() + attempt >= x.lease_until:
                break
            tried.add(x.pk)
            outcome = post(x)
            record(x, outcome, owner=owner)
            if not outcome.ok:
                failed = True
                break
            delivered += 1
        rest = [x.pk for x in run if x.pk not in tried]
        if rest:
            _release(rest, owner)
        if failed or rest:
            break
        run = claim_run(owner=owner, after=run[-1], limit=BATCH)
    return delivered


def deliver_pending(*, owner: str, limit: int = 1000) -> int:
    """Send what is due, one chain at a time in the calling thread (``manage.py sweep``,
    tests): each claim is taken just before its attempt, so no lease runs out waiting. Returns
    how many deliveries succeeded."""
    done = 0
    for _ in range(limit):
        heads = claim_heads(owner=owner, limit=1)
        if not heads:
            break
        done += send_chain(heads[0], owner=owner)
    return done
