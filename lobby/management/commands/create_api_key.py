from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lobby.api.auth import api_key_create
from lobby.models import ApiKey


class Command(BaseCommand):
    help = "Create a REST API key. The key is printed alone on the last line and never again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **opts: Any) -> None:
        if ApiKey.objects.filter(name=opts["name"]).exists():
            raise CommandError(f"An API key named {opts['name']!r} already exists.")
        _, key = api_key_create(name=opts["name"])
        self.stdout.write(f"Created API key {opts['name']!r}. Store it now; only a hash is kept:")
        self.stdout.write(key)
