"""openstacksdk against a running server, with auth none and http_basic."""

from __future__ import annotations

from typing import Any

import openstack.exceptions
import pytest

from tests.conftest import ALICE
from tests.support import Server


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
    assert updated.name == f"{prefix}-port2" and updated.revision_number == 1
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
