from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Create the demo's staff user (a superuser for the admin) with a generated password, "
        "printed once on standard output and nowhere else. Run again, it only says the user "
        "exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--base", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **o: Any) -> None:
        users = get_user_model()
        username: str = o["username"]
        admin_url = f"{o['base'].rstrip('/')}/admin/"
        if users.objects.filter(**{users.USERNAME_FIELD: username}).exists():
            self.stdout.write(
                f"Staff user {username!r} exists (its password was shown once, when it was "
                f"created). Admin: {admin_url}"
            )
            self.stdout.write(f"Forgot it? .venv/bin/python manage.py changepassword {username}")
            return
        password = secrets.token_urlsafe(12)
        # Only its hash is stored; the plain password goes to this terminal, never to a log.
        users.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(f"Staff user {username!r} created. Admin: {admin_url}")
        self.stdout.write(f"Password (shown only this once, write it down): {password}")
