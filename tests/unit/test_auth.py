"""Login throttling and password checks, without a server (a fake clock, cheap hashes)."""

from __future__ import annotations

import bcrypt
import pytest

from neutrino.api.auth import Throttle, verify


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_locks_doubles_and_forgets() -> None:
    """Locked at the limit for 1 s, then 2, 4...; at most the window; forgotten after a
    quiet window; a success forgets at once."""
    clock = Clock()
    throttle = Throttle(3, 10.0, clock=clock)
    assert [throttle.failed("k") for _ in range(3)] == [False, False, True]
    assert throttle.retry_after("k") == 1.0
    clock.now += 1.0
    assert throttle.retry_after("k") == 0.0
    assert throttle.failed("k") and throttle.retry_after("k") == 2.0
    for _ in range(10):
        throttle.failed("k")
    assert throttle.retry_after("k") == 10.0  # capped at the window
    clock.now += 10.5
    assert not throttle.failed("k")  # quiet for a window: counting starts again
    throttle.succeeded("k")
    assert throttle.retry_after("k") == 0.0 and throttle.retry_after("never") == 0.0


def test_throttle_memory_is_bounded() -> None:
    """Beyond max_keys the oldest keys go."""
    throttle = Throttle(1, 60.0, max_keys=100, clock=Clock())
    for i in range(1000):
        throttle.failed(f"user-{i}")
    assert throttle.retry_after("user-999") > 0 and throttle.retry_after("user-0") == 0.0


HASH = bcrypt.hashpw(b"p" * 72, bcrypt.gensalt(4)).decode()


@pytest.mark.parametrize(("password", "hashed", "expected"), [
    ("p" * 72, HASH, True),
    ("p" * 73, HASH, False),  # bcrypt would read only 72 bytes: refused, not truncated
    ("p" * 72 + "\0", HASH, False),
    ("p" * 1000, HASH, False),
    ("p" * 72, None, False),  # an unknown user: checked against a dummy hash
    ("p" * 72, "not-a-bcrypt-hash", False),
], ids=["72-bytes", "73-bytes", "nul", "1000-bytes", "unknown-user", "bad-hash"])  # the
# hash is made at collection: ids of their own keep pytest-xdist's workers agreeing
def test_verify(password: str, hashed: str | None, expected: bool) -> None:
    """Too long, NUL-carrying and unknown-user passwords are wrong passwords, not errors."""
    assert verify(password, hashed, cost=4) is expected
