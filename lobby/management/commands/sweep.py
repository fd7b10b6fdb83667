from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lobby.runtime.process import SERVER_ID
from lobby.services import sweep
from lobby.webhooks.alerts import send_pending_emails
from lobby.webhooks.delivery import deliver_pending


class Command(BaseCommand):
    help = (
        "Enforce stored deadlines once (or --loop), then send due webhook deliveries and alert "
        "e-mails. Server processes already do this."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args: Any, **o: Any) -> None:
        if o["loop"]:
            # A standing sender: the same sending threads as a server process (webhooks.md).
            from lobby.webhooks import dispatcher

            dispatcher.ensure_started()
        while True:
            result = sweep()
            delivered = emails = 0
            if not o["loop"]:
                delivered = deliver_pending(owner=SERVER_ID)
                emails = send_pending_emails(owner=SERVER_ID)
            self.stdout.write(
                f"timed_out={result.timed_out} disconnected={result.disconnected} "
                f"left={result.left} dead_servers={result.dead_servers}"
                + "".join(f" {name}={n}" for name, n in result.extensions.items())
                + f" notices={result.notices} webhooks_delivered={delivered}"
                f" emails_sent={emails}"
            )
            if not o["loop"]:
                return
            time.sleep(o["interval"])
