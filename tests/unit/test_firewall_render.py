# ruff: noqa: E501 -- the expected texts are nft's own lines, as long as nft writes them
"""The security group firewall's pure rendering, against whole expected texts, and what
changes from one plan to the next."""

from __future__ import annotations

import dataclasses

from neutrino.agent.linux import firewall as fw
from neutrino.agent.linux.netfilter import digest, render, render_changes

GROUP = fw.group_of({"id": "g1", "stateful": True, "rules": [
    {"direction": "egress", "ethertype": "IPv4"},
    {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "g1"},
    {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
     "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
    {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "port_range_min": 8,
     "port_range_max": 0, "remote_ip_prefix": "10.0.0.0/8"}]})
PORT = fw.port_of("n1", {"id": "p1", "mac_address": "FA:16:3E:00:00:01",
                         "fixed_ips": [{"ip_address": "10.0.0.5"}],
                         "allowed_address_pairs": [{"ip_address": "10.0.1.0/24"}],
                         "security_groups": ["g1"]})
PLAN = fw.Plan((PORT,), {"g1": GROUP},
               {"g1": fw.Members.of({"10.0.0.5", "10.0.0.6", "10.0.1.0/24", "10.0.1.7"})},
               {}, {"n1": 4100})


def test_bridge_table_is_the_spoofing_filter() -> None:
    """One chain for every port: no DHCP server or router advertisement, DHCP discovery,
    then only a port's MAC with its addresses and pairs (ARP too) and its link-local
    address, else drop; what a port may send are elements of sets."""
    bridge, _ = fw.render(PLAN)
    assert render(bridge) == f"""table bridge neutrino_sg {{
\tcomment "{digest(bridge)}"
\tset filtered {{
\t\ttype ifname
\t}}
\tset sources {{
\t\ttype ifname . ether_addr
\t}}
\tset sources4 {{
\t\ttype ifname . ether_addr . ipv4_addr
\t}}
\tset sources6 {{
\t\ttype ifname . ether_addr . ipv6_addr
\t}}
\tset unaddressed {{
\t\ttype ifname . ether_addr
\t}}
\tset sources4n {{
\t\ttype ifname . ether_addr . ipv4_addr
\t\tflags interval
\t}}
\tchain spoofing {{
\t\ttype filter hook prerouting priority -200; policy accept;
\t\tiifname != @filtered accept
\t\tmeta l4proto udp udp sport 67 udp dport 68 drop
\t\tmeta l4proto udp udp sport 547 udp dport 546 drop
\t\ticmpv6 type nd-router-advert drop
\t\tiifname . ether saddr @sources ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
\t\tiifname . ether saddr @sources ip6 saddr :: ip6 daddr ff02::/16 accept
\t\tether type arp iifname . ether saddr . arp saddr ip @sources4 accept
\t\tether type arp iifname . ether saddr . arp saddr ip @sources4n accept
\t\tether type arp drop
\t\tmeta protocol ip iifname . ether saddr . ip saddr @sources4 accept
\t\tmeta protocol ip6 iifname . ether saddr . ip6 saddr @sources6 accept
\t\tmeta protocol ip iifname . ether saddr . ip saddr @sources4n accept
\t\tiifname . ether saddr @unaddressed accept
\t\tdrop
\t}}
}}
add element bridge neutrino_sg filtered {{ "tapp1" }}
add element bridge neutrino_sg sources {{ "tapp1" . fa:16:3e:00:00:01 }}
add element bridge neutrino_sg sources4 {{ "tapp1" . fa:16:3e:00:00:01 . 10.0.0.5 }}
add element bridge neutrino_sg sources6 {{ "tapp1" . fa:16:3e:00:00:01 . fe80::f816:3eff:fe00:1 }}
add element bridge neutrino_sg sources4n {{ "tapp1" . fa:16:3e:00:00:01 . 10.0.1.0/24 }}
"""


def test_inet_table_is_stateful_per_port_verdicts() -> None:
    """Zones per network, ports found by bridge and MAC and sent to the chains of their
    profile (groups and statefulness), the group's rules in one chain per direction,
    members' addresses as a hash set and their CIDR pairs as an interval set."""
    _, inet = fw.render(PLAN)
    assert render(inet) == f"""table inet neutrino_sg {{
\tcomment "{digest(inet)}"
\tmap zones {{
\t\ttypeof iifname : ct zone
\t}}
\tmap to_port {{
\t\ttype ifname . ether_addr : verdict
\t}}
\tmap from_port {{
\t\ttype ifname . ether_addr : verdict
\t}}
\tset untracked {{
\t\ttype ifname . ether_addr
\t}}
\tset rg4-g1 {{
\t\ttype ipv4_addr
\t}}
\tset rn4-g1 {{
\t\ttype ipv4_addr
\t\tflags interval
\t}}
\tset rg6-g1 {{
\t\ttype ipv6_addr
\t}}
\tchain conntrack_zone {{
\t\ttype filter hook prerouting priority -300; policy accept;
\t\tiifname . ether saddr @untracked notrack accept
\t\tiifname . ether daddr @untracked notrack accept
\t\tct zone set iifname map @zones
\t}}
\tchain ingress {{
\t\ttype filter hook forward priority 0; policy accept;
\t\tiifname . ether daddr vmap @to_port
\t}}
\tchain egress {{
\t\ttype filter hook forward priority 1; policy accept;
\t\tiifname . ether saddr vmap @from_port
\t}}
\tchain common_ingress {{
\t\tmeta l4proto udp udp sport 67 udp dport 68 accept
\t\tmeta l4proto udp udp sport 547 udp dport 546 accept
\t\ticmpv6 type {{ mld-listener-query, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }} accept
\t}}
\tchain common_egress {{
\t\tmeta l4proto udp udp sport 68 udp dport 67 accept
\t\tmeta l4proto udp udp sport 546 udp dport 547 accept
\t\tmeta l4proto ipv6-icmp accept
\t}}
\tchain gi-g1 {{
\t\tmeta nfproto ipv4 ip saddr 10.0.0.0/8 meta l4proto 1 icmp type 8 icmp code 0 accept
\t\tmeta nfproto ipv4 meta l4proto 6 th dport 22 accept
\t\tmeta nfproto ipv4 ip saddr @rg4-g1 accept
\t\tmeta nfproto ipv4 ip saddr @rn4-g1 accept
\t}}
\tchain ge-g1 {{
\t\tmeta nfproto ipv4 accept
\t}}
\tchain i-se1763854a7ddcd77 {{
\t\tct state established,related accept
\t\tct state invalid drop
\t\tjump common_ingress
\t\tjump gi-g1
\t\tdrop
\t}}
\tchain e-se1763854a7ddcd77 {{
\t\tct state established,related accept
\t\tct state invalid drop
\t\tjump common_egress
\t\tjump ge-g1
\t\tdrop
\t}}
}}
add element inet neutrino_sg zones {{ "brqn1" : 4100 }}
add element inet neutrino_sg to_port {{ "brqn1" . fa:16:3e:00:00:01 : jump i-se1763854a7ddcd77 }}
add element inet neutrino_sg from_port {{ "brqn1" . fa:16:3e:00:00:01 : jump e-se1763854a7ddcd77 }}
add element inet neutrino_sg rg4-g1 {{ 10.0.0.5, 10.0.0.6, 10.0.1.7 }}
add element inet neutrino_sg rn4-g1 {{ 10.0.1.0/24 }}
"""


def test_a_member_joining_is_one_element() -> None:
    """A member more: only an element added; no chain is touched."""
    _, before = fw.render(PLAN)
    joined = fw.Members.union([PLAN.members["g1"], fw.Members.of(["10.0.0.9"])])
    more = dataclasses.replace(PLAN, members={"g1": joined})
    _, after = fw.render(more)
    assert render_changes(before, after) == \
        "add element inet neutrino_sg rg4-g1 { 10.0.0.9 }\n"


def test_a_rule_added_rewrites_only_its_group_chain() -> None:
    """A rule more: the group's ingress chain flushed and written again, nothing else."""
    _, before = fw.render(PLAN)
    group = fw.group_of({"id": "g1", "rules": [
        *[dataclasses.asdict(r) for r in GROUP.rules],
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "udp",
         "port_range_min": 53, "port_range_max": 53}]})
    _, after = fw.render(dataclasses.replace(PLAN, groups={"g1": group}))
    lines = render_changes(before, after).splitlines()
    assert lines[0] == "flush chain inet neutrino_sg gi-g1"
    assert "add rule inet neutrino_sg gi-g1 meta nfproto ipv4 meta l4proto 17 th dport 53 " \
        "accept" in lines
    assert all(line.startswith(("flush chain inet neutrino_sg gi-g1",
                                "add rule inet neutrino_sg gi-g1")) for line in lines)


def test_a_port_removed_goes_with_its_chains_after_its_elements() -> None:
    """The last port of a profile gone: its map elements deleted before the profile's
    chains are."""
    _, before = fw.render(PLAN)
    _, after = fw.render(dataclasses.replace(PLAN, ports=()))
    lines = render_changes(before, after).splitlines()
    chain = f"i-{fw.profile(('g1',), True)}"
    assert lines.index('delete element inet neutrino_sg to_port '
                       f'{{ "brqn1" . fa:16:3e:00:00:01 : jump {chain} }}') < \
        lines.index(f"delete chain inet neutrino_sg {chain}")


def test_a_removed_rule_ends_its_flows_a_rule_added_does_not() -> None:
    """Removing a rule or a remote member marks the direction whose flows end; adding
    one marks nothing."""
    fewer = dataclasses.replace(GROUP, rules=GROUP.rules[1:])
    assert fw.ended(PLAN, dataclasses.replace(PLAN, groups={"g1": fewer})) == \
        {"p1": {"ingress"} if GROUP.rules[0].direction == "ingress" else {"egress"}}
    assert fw.ended(dataclasses.replace(PLAN, groups={"g1": fewer}), PLAN) == {}
    gone = dataclasses.replace(PLAN, members={"g1": fw.Members.of(["10.0.0.5"])})
    assert fw.ended(PLAN, gone) == {"p1": {"ingress"}}


def test_rules_of_the_other_family_or_unknown_protocols_render_nothing() -> None:
    """An IPv6 prefix on an IPv4 rule can never match: no statement."""
    assert fw.rule_text(fw.Rule("ingress", "IPv4", remote_ip_prefix="::/0")) is None
    assert fw.rule_text(fw.Rule("egress", "IPv6", protocol="58", port_range_min=128)) == \
        "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 accept"


def test_a_port_more_in_a_known_profile_is_elements_only() -> None:
    """A second port in the same groups: no chain added or rewritten."""
    _, before = fw.render(PLAN)
    other = dataclasses.replace(PORT, id="p2", mac="fa:16:3e:00:00:02",
                                addresses=("10.0.0.6",), pairs=())
    bridge_before, _ = fw.render(PLAN)
    bridge_after, after = fw.render(dataclasses.replace(PLAN, ports=(PORT, other)))
    for old, new in ((before, after), (bridge_before, bridge_after)):
        lines = render_changes(old, new).splitlines()
        assert lines and all(line.startswith("add element ") for line in lines), lines
