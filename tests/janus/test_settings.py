"""Settings for a media server: the page CSP lets the browser reach Janus's public API (its
origin only), and only when ANTEROOM_MEDIA=janus."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT


def csp_connect_src(**env: str) -> list[str]:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps([str(x) for x in settings.SECURE_CSP['connect-src']]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_csp_allows_the_janus_origin_only_in_janus_mode():
    janus = {
        "ANTEROOM_JANUS_URL": "http://127.0.0.1:8088/janus",
        "ANTEROOM_JANUS_PUBLIC_URL": "https://meet.example.org:8443/janus",
        "ANTEROOM_JANUS_ADMIN_URL": "http://127.0.0.1:7088/admin",
        "ANTEROOM_JANUS_API_SECRET": "a" * 20,
        "ANTEROOM_JANUS_ADMIN_SECRET": "b" * 20,
        "ANTEROOM_JANUS_ROOM_ADMIN_KEY": "c" * 20,
    }
    assert csp_connect_src(ANTEROOM_MEDIA="janus", **janus) == [
        "'self'",
        "https://meet.example.org:8443",
    ]
    assert csp_connect_src(ANTEROOM_MEDIA="mesh", **janus) == ["'self'"]
