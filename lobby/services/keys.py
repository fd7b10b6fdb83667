"""Secrets handed to clients and their stored hashes."""

from __future__ import annotations

import hashlib
import secrets


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_resume_key() -> str:
    return secrets.token_urlsafe(24)
