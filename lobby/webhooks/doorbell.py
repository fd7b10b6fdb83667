"""The doorbell of this process's sending loop: rung on commit by whatever wrote deliveries or
e-mails, so they go out at once instead of at the next poll."""

from __future__ import annotations

import threading

bell = threading.Event()


def wake() -> None:
    """Something was written: look now (cheap when no sending loop runs)."""
    bell.set()
