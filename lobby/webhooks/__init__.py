"""Signed webhooks with a durable outbox, and unattended-knock alerts (docs/webhooks.md).

* ``outbox`` — the event catalogue and :func:`emit`: services call it inside their transaction,
  so an event's delivery rows commit (or roll back) with the change they report;
* ``addresses`` — which URLs may be registered and reached (SSRF rules, docs/security.md);
* ``signing`` — the HMAC-SHA256 signature over ``"<timestamp>.<body>"``;
* ``delivery`` — claiming rows (a lease; ``SKIP LOCKED`` on PostgreSQL), one HTTP attempt,
  the retry schedule, per-room order; ``dispatcher`` — the sending threads of a process;
* ``alerts`` — unattended knocks: stored deadlines read by every sweeper, notices once;
* ``services``, ``commands``, ``api`` — endpoints, replays and room alert settings for REST and
  the admin.

Breakouts report their events through :func:`emit` too (the lobby never imports breakouts).
"""

from .outbox import EVENT_TYPES, emit, emit_many, request_data

__all__ = ["EVENT_TYPES", "emit", "emit_many", "request_data"]
