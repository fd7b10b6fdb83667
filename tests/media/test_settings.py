"""Media settings are validated at start-up, and TURN credentials follow coturn's REST scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from lobby import media


@pytest.fixture
def fresh(settings):
    media.config.cache_clear()
    yield settings
    media.config.cache_clear()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ANTEROOM_MEDIA", "sfu", "ANTEROOM_MEDIA"),
        ("ANTEROOM_ICE_SERVERS", "stun:x", "ANTEROOM_ICE_SERVERS"),
        ("ANTEROOM_ICE_SERVERS", '{"urls": "stun:x"}', "ANTEROOM_ICE_SERVERS"),
        ("ANTEROOM_ICE_SERVERS", '[{"url": "stun:x"}]', "ANTEROOM_ICE_SERVERS"),
        ("ANTEROOM_ICE_SERVERS", '[{"urls": "http://x"}]', "ANTEROOM_ICE_SERVERS"),
        ("ANTEROOM_ICE_SERVERS", '[{"urls": "turn:x", "credential": 5}]', "ANTEROOM_ICE_SERVERS"),
        ("ANTEROOM_TURN_URLS", "turn:turn.example:3478", "ANTEROOM_TURN_SECRET"),
        ("ANTEROOM_TURN_TTL", "ten", "ANTEROOM_TURN_TTL"),
        ("ANTEROOM_TURN_TTL", "5", "ANTEROOM_TURN_TTL"),
        ("ANTEROOM_MESH_MAX_PUBLISHERS", "0", "ANTEROOM_MESH_MAX_PUBLISHERS"),
    ],
)
def test_bad_media_settings_are_refused_naming_the_variable(fresh, name, value, says):
    setattr(fresh, name, value)
    with pytest.raises(ImproperlyConfigured, match=says):
        media.config()


def test_the_server_does_not_start_with_a_bad_media_setting():
    env = {
        **os.environ,
        "ANTEROOM_ICE_SERVERS": "not json",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "ANTEROOM_ICE_SERVERS must be a JSON list" in out.stderr


def test_ice_servers_and_short_lived_turn_credentials(fresh):
    fresh.ANTEROOM_ICE_SERVERS = '[{"urls": ["stun:stun.example:3478"]}]'
    fresh.ANTEROOM_TURN_SECRET = "s3cret-s3cret-s3cret"
    fresh.ANTEROOM_TURN_URLS = "turn:turn.example:3478?transport=udp, turns:turn.example:5349"
    fresh.ANTEROOM_TURN_TTL = "600"
    servers = media.ice_servers("pat-1")
    assert servers[0] == {"urls": ["stun:stun.example:3478"]}
    turn = servers[1]
    assert turn["urls"] == ["turn:turn.example:3478?transport=udp", "turns:turn.example:5349"]
    expiry, who = turn["username"].split(":", 1)
    assert who == "pat-1"
    import time

    assert 590 <= int(expiry) - time.time() <= 601
    want = base64.b64encode(
        hmac.new(b"s3cret-s3cret-s3cret", turn["username"].encode(), hashlib.sha1).digest()
    ).decode()
    assert turn["credential"] == want
    # Fixed clock: exactly coturn's formula.
    fixed = media.turn_credentials("pat-1", now=1_000_000)
    assert fixed is not None and fixed["username"] == "1000600:pat-1"


def test_no_turn_without_a_secret(fresh):
    assert media.turn_credentials("x") is None
    assert media.ice_servers("x") == []
