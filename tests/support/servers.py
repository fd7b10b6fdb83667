"""Live servers for the process tests: Daphne on an inherited socket (through the launcher
``manage.py loadtest`` uses, ``lobby/loadtest/launch.py``) and ``manage.py`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lobby.loadtest import launch

ROOT = launch.ROOT


def start_daphne(
    env_extra: dict[str, str], log_path: Path, port: int = 0
) -> tuple[subprocess.Popen[bytes], str]:
    """Daphne on 127.0.0.1 (``port`` 0: any free one), up once ``/healthz`` answers; returns
    (the process, its base URL). It runs the sweeper (the tests' own processes do not)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ANTEROOM_RUN_SWEEPER": "1",
        **env_extra,
    }
    proc, port = launch.launch(
        launch.daphne, log_path=log_path, env=env, port=port, backlog=512, timeout=30
    )
    return proc, f"http://127.0.0.1:{port}"


def stop_daphne(proc: subprocess.Popen[bytes], sig: str = "term") -> None:
    launch.stop([proc], kill=sig == "kill")


def manage(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout
