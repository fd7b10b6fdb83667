"""Fixtures for the security and observability tests (their helpers: tests/security/helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def api_key(db) -> str:
    from lobby.api.auth import api_key_create

    return api_key_create(name="ops")[1]


@pytest.fixture
def api(client, api_key):
    """The Django test client, authenticated with a REST API key."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    return client
