"""openstacksdk against a running server, with auth none and http_basic, on SQLite: what
the SDK sends does not depend on the database (test_api runs on every backend)."""

from __future__ import annotations

from typing import Any

import openstack.exceptions
import pytest

from tests.conftest import ALICE
from tests.support import Server


@pytest.fixture(scope="module")
def backend() -> str:
    """SQLite only, for this module's servers."""
    return "sqlite"


def _crud(conn: Any, prefix: str) -> None:
    """Create, find, list with filters, update and delete through the SDK's proxy."""
    net = conn.network.create_network(name=f"{prefix}-net", description="sdk")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="192.0.2.0/24",
                                        name=f"{prefix}-subnet",
                                        dns_nameservers=["192.0.2.53"])
    port = conn.network.create_port(network_id=net.id, name=f"{prefix}-port")
    assert port.fixed_ips[0]["subnet_id"] == subnet.id
    assert conn.network.find_network(f"{prefix}-net").id == net.id
    assert conn.network.get_subnet(subnet.id).dns_nameservers == ["192.0.2.53"]
    assert [p.id for p in conn.network.ports(network_id=net.id)] == [port.id]
    # The SDK pages with limit and marker until an empty page.
    assert port.id in [p.id for p in conn.network.ports(limit=1)]
    updated = conn.network.update_port(port, name=f"{prefix}-port2")
    assert updated.name == f"{prefix}-port2" and updated.revision_number == 2  # made at 1
    conn.network.set_tags(net, ["a", "b"])
    assert conn.network.get_network(net.id).tags == ["a", "b"]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_network(net)
    conn.network.delete_port(port)
    conn.network.delete_subnet(subnet)
    conn.network.delete_network(net)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_network(net.id)
    assert conn.network.find_network(f"{prefix}-net") is None


def test_sdk_noauth(server: Server) -> None:
    """The SDK's network proxy works with auth none."""
    _crud(server.sdk(), "sdk-na")


def test_sdk_http_basic(basic_server: Server) -> None:
    """The SDK's network proxy works logged in with http_basic."""
    _crud(basic_server.sdk(*ALICE), "sdk-hb")


def test_sdk_error_message(sqlite_server: Server) -> None:
    """The SDK shows Neutron's message for an error."""
    conn = sqlite_server.sdk()
    with pytest.raises(openstack.exceptions.NotFoundException) as raised:
        conn.network.get_network("0b8c0d6e-5b1f-4a4e-9f7e-0d6a2f1d3c11")
    assert "Network 0b8c0d6e-5b1f-4a4e-9f7e-0d6a2f1d3c11 could not be found" in str(raised.value)


def test_sdk_security_groups(sqlite_server: Server) -> None:
    """The SDK's security group, rule, address group and port calls."""
    conn = sqlite_server.sdk()
    group = conn.network.create_security_group(name="sdk-sg", description="sdk", stateful=True)
    assert len(group.security_group_rules) == 2 and group.stateful is True
    rule = conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="tcp", port_range_min=22,
        port_range_max=22, remote_ip_prefix="192.0.2.1", ether_type="IPv4")
    assert rule.remote_ip_prefix == "192.0.2.1/32" and rule.port_range_min == 22
    with pytest.raises(openstack.exceptions.ConflictException) as raised:
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", protocol="6", port_range_min=22,
            port_range_max=22, remote_ip_prefix="192.0.2.1/32")
    assert f"Rule id is {rule.id}" in str(raised.value)
    assert conn.network.find_security_group("sdk-sg").id == group.id
    assert "default" in {g.name for g in conn.network.security_groups()}
    assert rule.id in {r.id for r in conn.network.security_group_rules(
        security_group_id=group.id)}
    updated = conn.network.update_security_group(group, description="changed")
    assert updated.description == "changed"
    ag = conn.network.create_address_group(name="sdk-ag", addresses=["198.51.100.0/24"])
    ag = conn.network.add_addresses_to_address_group(ag, ["203.0.113.9/32"])
    assert sorted(ag.addresses) == ["198.51.100.0/24", "203.0.113.9/32"]
    net = conn.network.create_network(name="sdk-sg-net")
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="192.0.2.0/24")
    port = conn.network.create_port(network_id=net.id, security_group_ids=[group.id])
    assert port.security_group_ids == [group.id] and port.is_port_security_enabled
    port = conn.network.update_port(port, allowed_address_pairs=[{"ip_address": "192.0.2.99"}])
    assert port.allowed_address_pairs == [{"ip_address": "192.0.2.99",
                                           "mac_address": port.mac_address}]
    assert [p.id for p in conn.network.ports(security_group_ids=[group.id])] == [port.id]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_security_group(group)
    conn.network.delete_port(port)
    conn.network.delete_security_group_rule(rule)
    conn.network.delete_security_group(group)
    conn.network.delete_address_group(ag)
    assert conn.network.find_security_group("sdk-sg") is None
