from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lobby.models import Room
from lobby.services import Actor, room_create
from lobby.tokens import mint_token


class Command(BaseCommand):
    help = (
        "Create (or reuse) a private demo room with knocking on; print the owner and guest links."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--room", default="demo")
        parser.add_argument("--base", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **o: Any) -> None:
        room = Room.objects.filter(name=o["room"], parent__isnull=True).first()
        if room is None:
            room = room_create(
                actor=Actor.command("demo"), name=o["room"], privacy="private", enable_knocking=True
            )
        token = mint_token(
            room=room.name, sub="owner", name="Demo owner", owner=True, issued_by="demo"
        )
        base = o["base"].rstrip("/")
        self.stdout.write(
            f"Room {room.name!r}: private; guests knock and wait up to {room.knock_ttl} s for the "
            f"host (knock_ttl: change it in the admin or with PATCH /api/v1/rooms/{room.name})"
        )
        if room.opens_at is not None or room.closes_at is not None:
            opens = room.opens_at.isoformat() if room.opens_at else "-"
            closes = room.closes_at.isoformat() if room.closes_at else "-"
            self.stdout.write(
                f"Appointment window: opens {opens}, closes {closes}; knocks wait until it closes"
            )
        else:
            self.stdout.write(
                "Appointments: give the room opens_at/closes_at (admin or PATCH) and early guests "
                "wait for the opening, up to the close (docs/getting-started.md, section 6)"
            )
        self.stdout.write(f"Owner dashboard: {base}/r/{room.name}/dashboard/?t={token}")
        self.stdout.write(f"Guest knock page: {base}/r/{room.name}/")
