"""Per-process caps on open WebSocket connections (abuse limits, docs/security.md).

``ANTEROOM_MAX_SOCKETS_PER_ADDRESS`` (default 50) sockets per client address, and
``ANTEROOM_MAX_SOCKETS_PER_TOKEN`` (default 10) per personal meeting token — one with a ``sub``;
reusable audience tokens (no ``sub``) are shared by design and only the address cap applies to
them. One socket more is answered ``RATE_LIMITED`` and closed with 4429. Loopback addresses are
not capped: behind a reverse proxy on the same host every client would share one (run Daphne
with ``--proxy-headers`` so the cap sees real client addresses). A cap of 0 turns it off.

The counts live in the process, like the sockets they count (``RUNTIME.addresses`` and
``RUNTIME.tokens``, lobby/runtime/process.py): with several processes the caps apply to each.
"""

from __future__ import annotations

import ipaddress
import threading

from ..errors import RateLimited


class TooManySockets(RateLimited):
    close_code = 4429
    default_message = "Too many open connections; close some and retry."


class SocketSlots:
    """Counts of open sockets by key, with a cap checked on ``claim``."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def claim(self, key: str, limit: int) -> bool:
        """Take a slot for ``key``; False (and nothing taken) when ``limit`` are in use."""
        with self._lock:
            n = self._counts.get(key, 0)
            if 0 < limit <= n:
                return False
            self._counts[key] = n + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            n = self._counts.get(key, 0) - 1
            if n > 0:
                self._counts[key] = n
            else:
                self._counts.pop(key, None)

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)


def address_key(address: str) -> str:
    """The key the address cap counts under; empty (no cap) for loopback and unknown."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    return "" if ip.is_loopback else str(ip)
