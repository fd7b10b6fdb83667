from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lobby.audit import retention_purge
from lobby.webhooks.services import webhooks_purge


class Command(BaseCommand):
    help = (
        "Delete resolved entry requests, audit rows, finished webhook deliveries and alert "
        "e-mails older than ANTEROOM_RETENTION_DAYS (default 30), and participants who left "
        "more than ANTEROOM_PARTICIPANT_RETENTION_DAYS ago (default: the same). Pending "
        "requests, deliveries and e-mails and present participants are kept. "
        "--dry-run only counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="retention in days (overrides the setting)"
        )
        parser.add_argument(
            "--participant-days",
            type=int,
            default=None,
            help="retention of departed participants in days (default: the setting, or --days)",
        )
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **o: Any) -> None:
        days = o["days"] if o["days"] is not None else settings.ANTEROOM_RETENTION_DAYS
        if o["participant_days"] is not None:
            participant_days = o["participant_days"]
        elif o["days"] is not None:
            participant_days = o["days"]
        else:
            participant_days = settings.ANTEROOM_PARTICIPANT_RETENTION_DAYS
        if days < 0 or participant_days < 0:
            raise CommandError("--days must not be negative.")
        result = retention_purge(days=days, participant_days=participant_days, dry_run=o["dry_run"])
        verb = "would delete" if o["dry_run"] else "deleted"
        self.stdout.write(f"Retention {days} days: older than {result.cutoff.isoformat()}")
        self.stdout.write(f"entry requests {verb}: {result.entry_requests}")
        self.stdout.write(f"audit events {verb}: {result.audit_events}")
        assert result.participant_cutoff is not None
        self.stdout.write(
            f"departed participants {verb}: {result.participants} "
            f"(left before {result.participant_cutoff.isoformat()})"
        )
        deliveries, events, emails = webhooks_purge(cutoff=result.cutoff, dry_run=o["dry_run"])
        self.stdout.write(f"webhook deliveries {verb}: {deliveries}")
        self.stdout.write(f"webhook events {verb}: {events}")
        self.stdout.write(f"alert e-mails {verb}: {emails}")
