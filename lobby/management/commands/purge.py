from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lobby.audit import retention_purge
from lobby.webhooks.services import webhooks_purge


class Command(BaseCommand):
    help = (
        "Delete resolved entry requests, audit rows, finished webhook deliveries and alert "
        "e-mails older than ANTEROOM_RETENTION_DAYS (default 30). Pending ones are kept. "
        "--dry-run only counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="retention in days (overrides the setting)"
        )
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **o: Any) -> None:
        days = o["days"] if o["days"] is not None else settings.ANTEROOM_RETENTION_DAYS
        if days < 0:
            raise CommandError("--days must not be negative.")
        result = retention_purge(days=days, dry_run=o["dry_run"])
        verb = "would delete" if o["dry_run"] else "deleted"
        self.stdout.write(f"Retention {days} days: older than {result.cutoff.isoformat()}")
        self.stdout.write(f"entry requests {verb}: {result.entry_requests}")
        self.stdout.write(f"audit events {verb}: {result.audit_events}")
        deliveries, events, emails = webhooks_purge(cutoff=result.cutoff, dry_run=o["dry_run"])
        self.stdout.write(f"webhook deliveries {verb}: {deliveries}")
        self.stdout.write(f"webhook events {verb}: {events}")
        self.stdout.write(f"alert e-mails {verb}: {emails}")
