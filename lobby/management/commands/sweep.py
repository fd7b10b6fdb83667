from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lobby.services import sweep


class Command(BaseCommand):
    help = "Enforce stored deadlines once (or --loop). Server processes already do this."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args: Any, **o: Any) -> None:
        while True:
            result = sweep()
            self.stdout.write(
                f"timed_out={result.timed_out} disconnected={result.disconnected} "
                f"left={result.left} dead_servers={result.dead_servers}"
                + "".join(f" {name}={n}" for name, n in result.extensions.items())
            )
            if not o["loop"]:
                return
            time.sleep(o["interval"])
