"""Launch a server process on an inherited listening socket: the one copy used by
``manage.py loadtest`` (Daphne and the relay baseline) and by the tests' live servers
(``tests/support/servers.py``).

The parent binds ``127.0.0.1:<port>`` (0 = any free port) and listens, the child gets the open
socket (``--fd``), so the port is known before the child starts and no two servers race for
it. Standard library only.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def daphne(fd: int, python: str = sys.executable) -> list[str]:
    """The command that serves ``config.asgi:application`` on the inherited socket ``fd``."""
    return [python, "-m", "daphne", "--fd", str(fd), "config.asgi:application"]


def listen(port: int = 0, backlog: int = 4096) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    return sock


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float, path: str = "") -> None:
    """Until ``GET path`` answers (or, without a path, the port accepts a connection)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early ({proc.returncode}); see its log")
        try:
            if path:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                    return
            else:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"server on port {port} not up after {timeout:.0f}s")


def launch(
    command: Callable[[int], list[str]],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    port: int = 0,
    backlog: int = 4096,
    ready_path: str = "/healthz",
    timeout: float = 60,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command(fd)`` in the repository root with its output appended to ``log_path``;
    return (the process, its port) once it is up. A server that does not come up is killed."""
    sock = listen(port, backlog)
    port = sock.getsockname()[1]
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                command(sock.fileno()),
                cwd=ROOT,
                env=dict(env) if env is not None else None,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[sock.fileno()],
            )
    finally:
        sock.close()
    try:
        wait_up(port, proc, timeout, ready_path)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, port


def stop(procs: Iterable[subprocess.Popen[bytes]], *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) each process still running, then wait; kill what outlives 10 s."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.kill() if kill else p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
