"""Daphne's own access log (on by default) must not carry the tokens in page URLs."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.support.servers import manage, start_daphne, stop_daphne

pytestmark = pytest.mark.slow


def test_daphne_access_log_redacts_tokens_in_urls(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ANTEROOM_SIGNING_KEY": "access-log-test-" + "k" * 32,
    }
    manage("migrate", "--noinput", "-v0", env=env)
    out = manage("demo", "--room", "logs", env=env)
    dashboard = next(line for line in out.splitlines() if "dashboard" in line).split(": ", 1)[1]
    token = dashboard.split("?t=", 1)[1]
    log = tmp_path / "daphne.log"
    proc, base = start_daphne(env, log)
    try:
        path = dashboard.split("8000", 1)[1]
        try:
            urllib.request.urlopen(base + path, timeout=5).read()
        except urllib.error.HTTPError:
            pass  # the page answering (or redirecting) is not what is tested here
        urllib.request.urlopen(base + "/healthz?resume=secret-resume-key", timeout=5).read()
    finally:
        stop_daphne(proc)
    text = log.read_text()
    assert "/r/logs/dashboard/?t=" in text, "the access log should still show the request"
    assert token not in text
    assert token.split(".")[1] not in text  # not even the payload segment
    assert "secret-resume-key" not in text
