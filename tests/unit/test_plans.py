"""The data planes' pure plans, table-driven: what a host should have for a state."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino.agent.dhcp.plan import Settings, plan
from neutrino.agent.linux import l2
from tests.unit.test_dnsmasq_render import S1, S2, VM1, VM2, network

SETTINGS = Settings("/state/dhcp", "/usr/sbin/dnsmasq", 600, "lab-HostA")


def test_dhcp_plan_of_a_served_network() -> None:
    """Namespace, veth ends, the DHCP port's addresses, files and dnsmasq as a daemon."""
    wanted = plan(network(), SETTINGS)
    assert wanted is not None
    assert wanted.namespace == "lab-HostA-qdhcp-net2"
    assert (wanted.outer, wanted.inner, wanted.mac) == ("tapd0", "ns-d0", "fa:16:3e:00:00:01")
    assert wanted.addresses == {"198.51.100.2/24", "203.0.113.2/28"}
    assert wanted.served == {VM1, VM2} and wanted.subnets == {S1, S2}
    assert wanted.daemon.pid_file == "/state/dhcp/net2/pid"
    assert wanted.daemon.netns == wanted.namespace and wanted.daemon.marker == "net2"
    assert wanted.daemon.argv[0] == "/usr/sbin/dnsmasq"
    assert "--keep-in-foreground" not in wanted.daemon.argv  # it detaches
    assert "--dhcp-hostsdir=/state/dhcp/net2/hosts.d" in wanted.daemon.argv
    unwatched = plan(network(), SETTINGS, watched=False)
    assert unwatched is not None
    assert "--dhcp-hostsfile=/state/dhcp/net2/host" in unwatched.daemon.argv
    assert plan(network(), SETTINGS) == wanted  # pure: the same state, the same plan


@pytest.mark.parametrize("change", [
    {"dhcp_port_id": None},
    {"dhcp_port_id": "someone-else"},
    {"subnets": []},
])
def test_dhcp_plan_of_nothing_to_serve(change: dict[str, Any]) -> None:
    """No DHCP port of ours, or no DHCP subnet: nothing to serve (the driver removes it)."""
    assert plan(network(**change), SETTINGS) is None


def l2_network(kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": "5f2c9a10-6c1e-4c36-9b0b-2d1e7c3f0a11", "network_type": kind,
            "segmentation_id": 77 if kind == "vxlan" else None,
            "physical_network": "physnet1" if kind == "flat" else None,
            "ports": [{"id": "bbbb2222-0000", "admin_state_up": False},
                      {"id": "aaaa1111-0000", "admin_state_up": True}],
            "remote_endpoints": [{"host": "B", "ip_address": "172.30.0.12"},
                                 {"host": "A", "ip_address": "172.30.0.11"}], **extra}


@pytest.mark.parametrize(("kind", "local_ip", "vxlan", "remotes", "uplink"), [
    ("vxlan", "172.30.0.11", "vxlan-77", {"172.30.0.12"}, None),  # itself is no remote
    ("vxlan", "", None, set(), None),  # no tunnel address: no VXLAN device
    ("flat", "172.30.0.11", None, set(), "ext0"),
    ("local", "172.30.0.11", None, set(), None),
])
def test_l2_plan(kind: str, local_ip: str, vxlan: str | None, remotes: set[str],
                 uplink: str | None) -> None:
    """Bridge, VXLAN device and remotes, uplink, and the ports' taps in a stable order."""
    wanted = l2.plan(l2_network(kind), local_ip, {"physnet1": "ext0"})
    assert wanted.bridge == "brq5f2c9a10-6c"
    assert (wanted.vxlan, wanted.remotes, wanted.uplink) == (vxlan, remotes, uplink)
    assert [p.tap for p in wanted.ports] == ["tapaaaa1111-00", "tapbbbb2222-00"]
    assert l2.port_statuses([wanted], {"tapaaaa1111-00", "tapbbbb2222-00"}) == {
        "aaaa1111-0000": "ACTIVE", "bbbb2222-0000": "DOWN"}  # admin down stays DOWN
    assert l2.port_statuses([wanted], set()) == {"aaaa1111-0000": "DOWN",
                                                 "bbbb2222-0000": "DOWN"}


def test_ha_router_fence_as_nft_writes_it() -> None:
    """An HA router's fence, whole: adverts sent renew the lease for three intervals, adverts
    heard from another primary close it as long; the HA network and loopback pass always."""
    from neutrino.agent.l3.plan import fence_table
    from neutrino.agent.linux.netfilter import render
    text = render(fence_table(0.2))
    assert text.split("\n", 2)[2] == """\
\tset lease {
\t\ttype devgroup
\t\tflags timeout
\t}
\tset heard {
\t\ttype devgroup
\t\tflags timeout
\t}
\tchain prerouting {
\t\ttype filter hook prerouting priority -300; policy accept;
\t\tiifname "ha-*" ip protocol vrrp fib saddr type != local update @heard { iifgroup \
timeout 600ms }
\t\tiifname "ha-*" accept
\t\tiifname "lo" accept
\t\tiifgroup != @lease drop
\t\tiifgroup @heard drop
\t}
\tchain output {
\t\ttype filter hook output priority -300; policy accept;
\t\toifname "ha-*" ip protocol vrrp update @lease { oifgroup timeout 600ms }
\t\toifname "ha-*" accept
\t\toifname "lo" accept
\t\toifgroup != @lease drop
\t\toifgroup @heard drop
\t}
}
"""
    assert "timeout 6000ms" in render(fence_table(2))


def test_ha_router_arp_fence_as_nft_writes_it() -> None:
    """The ARP side of the fence, whole, from an HA router's plan: its adverts on the ha-
    device renew the lease; its qr- and qg- devices send ARP replies only while it holds;
    no ARP from the VRID's address leaves the ha- device. A router with only its HA port
    has the ha- chains alone."""
    from neutrino.agent.l3.plan import ARP_FENCE_TABLE, FENCE_TABLE, arp_fence_table, plan
    from neutrino.agent.linux.netfilter import render

    def port(port_id: str, cidr: str, address: str) -> dict[str, Any]:
        return {"id": port_id, "mac_address": f"fa:16:3e:00:00:0{port_id[0]}", "network_id": "n",
                "fixed_ips": [{"subnet_id": "s", "ip_address": address, "cidr": cidr}]}
    state = {"id": "r1", "interfaces": [port("11111111-aaaa", "10.0.0.0/24", "10.0.0.1")],
             "gateway": port("22222222-bbbb", "203.0.113.0/24", "203.0.113.10"),
             "ha": {"vr_id": 3, "port": port("33333333-cccc", "169.254.192.0/18",
                                              "169.254.192.3")}}
    wanted = plan(state)
    assert wanted is not None
    assert [t.key for t in wanted.fences] == [("inet", FENCE_TABLE),
                                              ("netdev", ARP_FENCE_TABLE)]
    assert render(wanted.fences[1]).split("\n", 2)[2] == """\
\tset lease {
\t\ttype devgroup
\t\tflags timeout
\t}
\tset heard {
\t\ttype devgroup
\t\tflags timeout
\t}
\tchain ha-egress {
\t\ttype filter hook egress devices = { "ha-33333333-cc" } priority -300; policy accept;
\t\tip protocol vrrp update @lease { oifgroup timeout 6000ms }
\t\tarp saddr ip 169.254.0.0/24 drop
\t}
\tchain ha-ingress {
\t\ttype filter hook ingress devices = { "ha-33333333-cc" } priority -300; policy accept;
\t\tip protocol vrrp ether saddr != fa:16:3e:00:00:03 update @heard { iifgroup timeout \
6000ms }
\t}
\tchain replies {
\t\ttype filter hook egress devices = { "qr-11111111-aa", "qg-22222222-bb" } priority \
-300; policy accept;
\t\tarp operation reply oifgroup != @lease drop
\t\tarp operation reply oifgroup @heard drop
\t}
}
"""
    assert wanted.ha_port is not None
    alone = arp_fence_table(0.2, wanted.ha_port, ())
    assert [c.name for c in alone.chains] == ["ha-egress", "ha-ingress"]


@pytest.mark.parametrize(("bindings", "shown"), [
    ([("active", True, 1.0), ("standby", True, 2.0)], ["active", "standby"]),
    ([("active", True, 1.0), ("active", True, 2.0)], ["standby", "active"]),
    ([("active", True, 3.0), ("active", True, None), ("active", True, 2.0)],
     ["active", "standby", "standby"]),
    ([("active", False, 5.0), ("active", True, 2.0)], ["standby", "active"]),
    ([("active", False, 5.0), ("standby", False, 2.0)], ["unknown", "unknown"]),
])
def test_ha_states_shown(bindings: list[tuple[str, bool, float | None]],
                         shown: list[str]) -> None:
    """What the API shows of a router's bindings: a dead agent's active is not believed,
    and of two live actives only the later one."""
    from neutrino.services.l3_ha import shown_states
    assert shown_states(bindings) == shown
