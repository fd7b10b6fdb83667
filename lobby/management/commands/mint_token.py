from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lobby.errors import AnteroomError
from lobby.tokens import mint_token


class Command(BaseCommand):
    help = "Mint a meeting token (printed alone on the last line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--room", help="room name (omit: valid for every room)")
        parser.add_argument("--sub", help="participant id")
        parser.add_argument("--name", help="display name")
        parser.add_argument("--owner", action="store_true")
        parser.add_argument("--viewer", action="store_true")
        parser.add_argument("--moderator", action="store_true", help="grant.canModerate")
        parser.add_argument("--ask", action="store_true", help='joinPolicy.mode "ask"')
        parser.add_argument("--ttl", type=int, help="joinPolicy.ttl (with --ask)")
        parser.add_argument("--expires-in", type=int, default=24 * 3600, help="seconds")
        parser.add_argument("--grant", help="grant as JSON")

    def handle(self, *args: Any, **o: Any) -> None:
        grant = json.loads(o["grant"]) if o["grant"] else None
        if o["moderator"]:
            grant = {**(grant or {}), "canModerate": True}
        policy = None
        if o["ask"] or o["ttl"] is not None:
            policy = {"mode": "ask" if o["ask"] else "direct"}
            if o["ttl"] is not None:
                policy["ttl"] = o["ttl"]
        try:
            token = mint_token(
                room=o["room"],
                sub=o["sub"],
                name=o["name"],
                owner=o["owner"],
                viewer=o["viewer"],
                grant=grant,
                join_policy=policy,
                exp=int(time.time()) + o["expires_in"],
                issued_by="cli",
            )
        except AnteroomError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(token)
