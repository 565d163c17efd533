"""The netfilter driver in throwaway namespaces, with real packets."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from neutrino.agent.linux import netns
from neutrino.agent.linux.kernel import Kernel
from neutrino.agent.linux.netfilter import (
    Chain,
    NamedSet,
    Netfilter,
    NetfilterError,
    Table,
    check,
    render,
)
from tests.support import root_network_snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                                reason="needs root and nftables (tools/install installs it)")


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth: `a` (10.44.0.1) and `b` (10.44.0.2, 10.44.0.3)."""
    before = root_network_snapshot()
    tag = uuid.uuid4().hex[:6]
    a, b = f"ntt-a{tag}", f"ntt-b{tag}"
    for name in (a, b):
        netns.create(name)
    try:
        Kernel(a, owned=True).ensure_veth("v-a", "v-b", b)
        Kernel(a, owned=True).ensure_link("v-a", up=True)
        Kernel(b, owned=True).ensure_link("v-b", up=True)
        Kernel(a, owned=True).ensure_addresses("v-a", ["10.44.0.1/24"])
        Kernel(b, owned=True).ensure_addresses("v-b", ["10.44.0.2/24", "10.44.0.3/24"])
        yield a, b
    finally:
        for name in (a, b):
            netns.remove(name)
        assert root_network_snapshot() == before
        assert "neutrino" not in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                                text=True).stdout


def pings(ns: str, address: str) -> bool:
    """One ping from a namespace."""
    return netns.run(ns, ["ping", "-c", "1", "-W", "1", address]).returncode == 0


def filter_table(blocked: set[str]) -> Table:
    """Drop packets to the blocked addresses (a set: members change without rules)."""
    return Table("inet", "neutrino", chains=(
        Chain("input", ("ip daddr @blocked drop",), type="filter", hook="input", priority=0,
              policy="accept"),), sets=(NamedSet("blocked", "ipv4_addr", frozenset(blocked)),))


def test_apply_is_atomic_idempotent_and_elements_change_alone(pair: tuple[str, str]) -> None:
    """The table filters real packets; a second apply changes nothing; a set member added
    or removed changes the packets' fate without rewriting the table."""
    a, b = pair
    nft = Netfilter(b)
    assert pings(a, "10.44.0.2") and pings(a, "10.44.0.3")
    assert nft.apply(filter_table({"10.44.0.2"})) is True
    assert not pings(a, "10.44.0.2") and pings(a, "10.44.0.3")
    assert nft.apply(filter_table({"10.44.0.2"})) is False
    listed = nft.list_ruleset()
    assert nft.apply(filter_table({"10.44.0.2", "10.44.0.3"})) is True
    assert not pings(a, "10.44.0.3")
    # Only the elements changed: same chain and rule handles as before.
    handles = subprocess.run(["ip", "netns", "exec", b, "nft", "-a", "list", "chain", "inet",
                              "neutrino", "input"], capture_output=True, text=True).stdout
    assert nft.apply(filter_table(set())) is True
    after = subprocess.run(["ip", "netns", "exec", b, "nft", "-a", "list", "chain", "inet",
                            "neutrino", "input"], capture_output=True, text=True).stdout
    assert handles == after and "10.44.0.2" in listed
    assert pings(a, "10.44.0.2") and pings(a, "10.44.0.3")
    # A rule change replaces the table whole, in one transaction.
    accept_all = dataclasses.replace(filter_table(set()), chains=(
        Chain("input", ("ip daddr 10.44.0.3 drop",), type="filter", hook="input",
              priority=0, policy="accept"),))
    assert nft.apply(accept_all) is True
    assert pings(a, "10.44.0.2") and not pings(a, "10.44.0.3")
    assert nft.remove("inet", "neutrino") is True and nft.remove("inet", "neutrino") is False
    assert pings(a, "10.44.0.3")


def test_a_restarted_agent_replaces_once_then_changes_nothing(pair: tuple[str, str]) -> None:
    """A new driver (an agent restart) has no memory of the elements: it replaces the table
    once (atomically), then a second pass changes nothing."""
    _a, b = pair
    Netfilter(b).apply(filter_table({"10.44.0.2"}))
    fresh = Netfilter(b)
    assert fresh.apply(filter_table({"10.44.0.2"})) is True
    assert fresh.apply(filter_table({"10.44.0.2"})) is False


def test_other_tables_and_the_root_namespace_are_never_touched(pair: tuple[str, str]) -> None:
    """A table of someone else's in the namespace survives our applies and removals; the
    root namespace is refused outright; a bad ruleset is refused before anything changes."""
    _a, b = pair
    subprocess.run(["ip", "netns", "exec", b, "nft", "add", "table", "ip", "theirs"],
                   check=True)
    nft = Netfilter(b)
    nft.apply(filter_table({"10.44.0.2"}))
    nft.remove("inet", "neutrino")
    assert "table ip theirs" in nft.list_ruleset()
    with pytest.raises(NetfilterError, match="root namespace"):
        Netfilter(None)
    check(render(filter_table({"10.44.0.9"})), b)
    with pytest.raises(NetfilterError):
        nft.apply(dataclasses.replace(filter_table(set()), chains=(
            Chain("input", ("ip daddr @nosuchset drop",), type="filter", hook="input"),)))
    assert "neutrino" not in nft.list_ruleset()
