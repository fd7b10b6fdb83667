"""``python manage.py loadtest_webhooks``: webhook delivery latency (commit → receiver) under a
knock storm; see lobby/loadtest/webhooks.py and docs/webhooks.md."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lobby.loadtest import runner, webhooks


class Command(BaseCommand):
    help = (
        "Start Anteroom and a signed-webhook receiver on 127.0.0.1, knock --knocks guests at "
        "once and report the delivery latency from commit to receiver (p50/p90/p99/max)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--knocks", type=int, default=200)
        parser.add_argument("--rooms", type=int, default=1, help="spread the knocks over rooms")
        parser.add_argument("--processes", type=int, default=1)
        parser.add_argument("--database-url", help="PostgreSQL for the started servers")
        parser.add_argument("--redis-url", help="Redis (needed with --processes 2)")
        parser.add_argument("--timeout", type=float, default=120.0)
        parser.add_argument(
            "--baseline", action="store_true", help="also a storm with no webhook registered"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **o: Any) -> None:
        reports = []
        try:
            for webhook in (True, False) if o["baseline"] else (True,):
                reports.append(
                    asyncio.run(
                        webhooks.run(
                            knocks=o["knocks"],
                            rooms=o["rooms"],
                            processes=o["processes"],
                            database_url=o["database_url"],
                            redis_url=o["redis_url"],
                            timeout=o["timeout"],
                            webhook=webhook,
                        )
                    )
                )
        finally:
            runner.stop_all()
        if o["json"]:
            self.stdout.write(json.dumps(reports, indent=2))
            return
        for report in reports:
            for key, value in report.items():
                self.stdout.write(f"{key:24} {value}")
            self.stdout.write("")
