"""Rule normalisation and equality, as pure functions (Neutron's rules, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino import exceptions as exc
from neutrino.schema.request import parse_item
from neutrino.schema.resources import SECURITY_GROUP_RULE
from neutrino.services.security_group_rules import normalize, rule_key

GROUP = "5b0c8f36-0f55-4b7c-9d43-8f5ad6d4c1b1"


def rule(**attrs: Any) -> dict[str, Any]:
    """A parsed and normalised ingress rule."""
    body = {"security_group_id": GROUP, "direction": "ingress", **attrs}
    return normalize(parse_item(SECURITY_GROUP_RULE, body, create=True))


@pytest.mark.parametrize(("given", "expected"), [
    ({"protocol": "UDP"}, {"protocol": "udp"}),
    ({"protocol": "017"}, {"protocol": "017"}),
    ({"protocol": "ANY"}, {"protocol": None}),
    ({"ethertype": "ipv6", "protocol": "icmp"}, {"ethertype": "IPv6", "protocol": "ipv6-icmp"}),
    ({"ethertype": "IPv6", "protocol": "1"}, {"protocol": "58"}),
    ({"port_range_min": 1, "port_range_max": 65535},
     {"port_range_min": None, "port_range_max": None}),
    ({"protocol": "icmp", "port_range_min": 0, "port_range_max": 255},
     {"port_range_min": 0, "port_range_max": 255}),
    ({"remote_ip_prefix": "10.1.2.3/8"},
     {"remote_ip_prefix": "10.1.2.3/8", "normalized_cidr": "10.0.0.0/8"}),
    ({"ethertype": "IPv6", "remote_ip_prefix": "2001:DB8::5"},
     {"remote_ip_prefix": "2001:db8::5/128"}),
    ({"remote_ip_prefix": ""}, {"remote_ip_prefix": None, "normalized_cidr": None}),
])
def test_normalised(given: dict[str, Any], expected: dict[str, Any]) -> None:
    """What Neutron stores for what clients send."""
    made = rule(**given)
    assert {k: made[k] for k in expected} == expected


@pytest.mark.parametrize(("given", "error"), [
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 0},
     exc.SecurityGroupInvalidPortValue),
    ({"protocol": "dccp", "port_range_max": 5}, exc.SecurityGroupInvalidPortRange),
    ({"protocol": "58", "ethertype": "IPv6", "port_range_min": 300},
     exc.SecurityGroupInvalidIcmpValue),
    ({"protocol": "icmp", "port_range_max": 3}, exc.SecurityGroupMissingIcmpType),
    ({"protocol": "47", "port_range_min": 1, "port_range_max": 1},
     exc.SecurityGroupInvalidProtocolForPort),
    ({"port_range_min": 5, "port_range_max": 6}, exc.SecurityGroupProtocolRequiredWithPorts),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
     exc.SecurityGroupRuleParameterConflict),
    ({"protocol": "icmpv6"}, exc.SecurityGroupEthertypeConflictWithProtocol),
    ({"protocol": "ipv6-route"}, exc.SecurityGroupEthertypeConflictWithProtocol),
    ({"remote_ip_prefix": "10.0.0.0/8", "remote_address_group_id": GROUP},
     exc.SecurityGroupMultipleRemoteEntites),
    ({"protocol": -1}, exc.SecurityGroupRuleInvalidProtocol),
    ({"ethertype": "ip"}, exc.SecurityGroupRuleInvalidEtherType),
    ({"port_range_min": 65536}, exc.SecurityGroupInvalidPortValue),
    ({"remote_ip_prefix": "10.0.0.256"}, exc.InvalidCIDR),
    ({"remote_ip_prefix": 10}, exc.InvalidCIDR),
])
def test_refused(given: dict[str, Any], error: type[exc.NeutronException]) -> None:
    """Each rule Neutron refuses, with its error."""
    with pytest.raises(error):
        rule(**given)


def test_equal_rules() -> None:
    """Protocols compare by number and "anywhere" has three spellings; host bits count."""
    assert rule_key(rule(protocol="tcp")) == rule_key(rule(protocol="6"))
    assert rule_key(rule()) == rule_key(rule(remote_ip_prefix="0.0.0.0/0"))
    assert rule_key(rule(ethertype="IPv6")) == rule_key(rule(ethertype="IPv6",
                                                             remote_ip_prefix="::/0"))
    assert rule_key(rule(ethertype="IPv6", protocol="icmp")) \
        == rule_key(rule(ethertype="IPv6", protocol="58"))
    assert rule_key(rule(remote_ip_prefix="10.0.0.1/8")) \
        != rule_key(rule(remote_ip_prefix="10.0.0.0/8"))
    assert rule_key(rule()) != rule_key(rule(direction="egress"))
