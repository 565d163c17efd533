"""What the host links' file says, and which link events make the agent read it again."""

from __future__ import annotations

import struct

from neutrino.agent.l3.host_links import RTM_DELLINK, RTM_NEWLINK, _touches, down
from neutrino.agent.linux.kernel import Link


def link(name: str, up: bool = True, carrier: bool = True) -> Link:
    return Link(name, 7, None, None, up, carrier=carrier)


def test_a_link_down_without_carrier_or_missing_is_down() -> None:
    assert down({"ul0": link("ul0"), "ext0": link("ext0")}) == []
    assert down({"ul0": link("ul0", up=False), "ext0": link("ext0", carrier=False)}) == \
        ["ext0", "ul0"]
    assert down({"ul0": None, "ext0": link("ext0")}) == ["ul0"]


def message(kind: int, index: int, length: int | None = None) -> bytes:
    """A link message: the netlink header, an ifinfomsg, one attribute's worth of room."""
    body = struct.pack("=BxHiII", 0, 1, index, 0, 0) + b"\0" * 8
    size = 16 + len(body) if length is None else length
    return struct.pack("=IHHII", size, kind, 0, 0, 0) + body


def test_only_events_of_tracked_links_count() -> None:
    """A batch of events matters when one of them names a tracked link's index."""
    others = message(RTM_NEWLINK, 40) + message(RTM_NEWLINK, 41)
    assert not _touches(others, frozenset({3, 5}))
    assert _touches(others + message(RTM_DELLINK, 5), frozenset({3, 5}))
    assert not _touches(message(20, 5), frozenset({5}))  # an address event, not a link's
    assert _touches(message(RTM_NEWLINK, 40, length=4), frozenset({5}))  # malformed: look
