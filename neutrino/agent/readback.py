"""When each key's host state was last read back in full.

Drivers trust what they applied between full read-backs (a network's state changes with
every port turning ACTIVE; reading the kernel back each time was most of the work) and read
everything again once `interval` has passed, or at once after a failure or a drift that
forgets the key.
"""

from __future__ import annotations

import time


class ReadBacks:
    """Per key (a network or router id), the monotonic time of its last full read-back."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def recent(self, key: str, interval: float, now: float | None = None) -> bool:
        """Whether `key` was read back less than `interval` seconds ago."""
        at = self._at.get(key)
        return at is not None and (time.monotonic() if now is None else now) - at < interval

    def mark(self, key: str, now: float | None = None) -> None:
        """`key` was read back in full now."""
        self._at[key] = time.monotonic() if now is None else now

    def forget(self, key: str) -> None:
        """Read `key` back in full next time (removed, failed, or drifted)."""
        self._at.pop(key, None)
