"""The real `openstack` CLI against a running server, with both auth strategies, on SQLite:
what the CLI sends and shows does not depend on the database (test_api runs on every
backend)."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, ALICE, BOB
from tests.support import Server, openstack_cli


@pytest.fixture(scope="module")
def backend() -> str:
    """SQLite only, for this module's servers."""
    return "sqlite"


pytestmark = pytest.mark.cli


def _journey(env: dict[str, str], prefix: str) -> None:
    """Seed 000's commands for networks, subnets and ports, asserting what the CLI shows."""
    net = openstack_cli(env, "network", "create", f"{prefix}-net2", "-f", "json")
    assert net["name"] == f"{prefix}-net2"
    assert net["status"] == "ACTIVE"
    subnet = openstack_cli(env, "subnet", "create", "--network", f"{prefix}-net2",
                           "--subnet-range", "198.51.100.0/24", f"{prefix}-subnet2",
                           "-f", "json")
    assert subnet["cidr"] == "198.51.100.0/24"
    assert subnet["gateway_ip"] == "198.51.100.1"
    assert subnet["allocation_pools"] == [{"start": "198.51.100.2", "end": "198.51.100.254"}]
    port = openstack_cli(env, "port", "create", f"{prefix}-port2", "--network",
                         f"{prefix}-net2", "-f", "json")
    [fixed] = port["fixed_ips"]
    assert fixed["subnet_id"] == subnet["id"]
    assert fixed["ip_address"].startswith("198.51.100.")
    assert port["mac_address"].startswith("fa:16:3e:")

    # show by name and by id
    by_name = openstack_cli(env, "network", "show", f"{prefix}-net2", "-f", "json")
    by_id = openstack_cli(env, "network", "show", net["id"], "-f", "json")
    assert by_name["id"] == by_id["id"] == net["id"]
    assert by_name["subnets"] == [subnet["id"]]
    assert openstack_cli(env, "subnet", "show", f"{prefix}-subnet2", "-f", "json")["id"] \
        == subnet["id"]
    assert openstack_cli(env, "port", "show", port["id"], "-f", "json")["name"] \
        == f"{prefix}-port2"

    # list with filters
    listed = openstack_cli(env, "port", "list", "--network", f"{prefix}-net2", "-f", "json")
    assert [p["ID"] for p in listed] == [port["id"]]
    by_ip = openstack_cli(env, "port", "list", "--fixed-ip",
                          f"ip-address={fixed['ip_address']}", "-f", "json")
    assert [p["ID"] for p in by_ip] == [port["id"]]
    nets = openstack_cli(env, "network", "list", "--name", f"{prefix}-net2", "-f", "json")
    assert [n["ID"] for n in nets] == [net["id"]]
    subnets = openstack_cli(env, "subnet", "list", "--network", net["id"], "-f", "json")
    assert [s["ID"] for s in subnets] == [subnet["id"]]

    # set
    openstack_cli(env, "network", "set", "--name", f"{prefix}-net2b", "--description", "moved",
                  f"{prefix}-net2")
    renamed = openstack_cli(env, "network", "show", f"{prefix}-net2b", "-f", "json")
    assert renamed["description"] == "moved"
    assert renamed["revision_number"] > by_id["revision_number"]
    openstack_cli(env, "subnet", "set", "--dns-nameserver", "192.0.2.53", f"{prefix}-subnet2")
    assert openstack_cli(env, "subnet", "show", f"{prefix}-subnet2", "-f", "json")[
        "dns_nameservers"] == ["192.0.2.53"]
    openstack_cli(env, "port", "set", "--name", f"{prefix}-port2b", port["id"])
    assert openstack_cli(env, "port", "show", port["id"], "-f", "json")["name"] \
        == f"{prefix}-port2b"

    # delete: a subnet with a VM port is in use, and so is its network
    refused = openstack_cli(env, "subnet", "delete", f"{prefix}-subnet2", check=False)
    assert refused.returncode != 0 and "409" in refused.stderr
    refused = openstack_cli(env, "network", "delete", f"{prefix}-net2b", check=False)
    assert refused.returncode != 0 and "409" in refused.stderr
    openstack_cli(env, "port", "delete", port["id"])
    openstack_cli(env, "subnet", "delete", f"{prefix}-subnet2")
    openstack_cli(env, "network", "delete", f"{prefix}-net2b")
    gone = openstack_cli(env, "network", "show", net["id"], check=False)
    assert gone.returncode != 0


@pytest.mark.slow
def test_journey_noauth(server: Server) -> None:
    """Create, list with filters, show by name and id, set and delete, with auth none."""
    _journey(server.cli_env(), "na")


@pytest.mark.slow
def test_journey_http_basic(basic_server: Server) -> None:
    """The same journey logged in through keystoneauth's http_basic plugin."""
    _journey(basic_server.cli_env(*ALICE), "hb")


def test_extension_list(sqlite_server: Server) -> None:
    """`openstack extension list --network` shows what is implemented, by alias."""
    rows = openstack_cli(sqlite_server.cli_env(), "extension", "list", "--network", "-f", "json")
    aliases = {r["Alias"] for r in rows}
    assert {"external-net", "provider", "binding", "net-mtu", "standard-attr-tag",
            "standard-attr-revisions", "standard-attr-timestamp", "pagination",
            "sorting", "project-id", "agent", "dhcp_agent_scheduler", "availability_zone",
            "network_availability_zone", "router", "ext-gw-mode", "extraroute",
            "extraroute-atomic", "router_availability_zone", "l3_agent_scheduler",
            "fip-port-details", "security-group", "port-security", "allowed-address-pairs",
            "address-group", "quotas", "quota_details", "network-ip-availability",
            "revision-if-match", "tag-creation", "subnet-service-types", "service-type",
            "quota-check-limit", "rbac-policies", "subnet_allocation", "address-scope",
            "l3-ha"} <= aliases
    names = {r["Alias"]: r["Name"] for r in rows}
    assert names["external-net"] == "Neutron external network"
    # Not implemented yet, so not advertised: clients would change their requests.
    assert not aliases & {"dvr", "rbac-security-groups",
                          "security-groups-default-rules", "external-gateway-multihoming"}


def test_http_basic_refuses_bad_password(basic_server: Server) -> None:
    """A wrong password is a 401, not an empty answer."""
    env = basic_server.cli_env(ALICE[0], "wrong")
    refused = openstack_cli(env, "network", "list", check=False)
    assert refused.returncode != 0 and "401" in refused.stderr


def test_http_basic_projects_are_isolated(basic_server: Server) -> None:
    """Bob does not see Alice's network; the admin sees both and admin-only attributes."""
    alice, bob, admin = (basic_server.cli_env(*u) for u in (ALICE, BOB, ADMIN))
    net = openstack_cli(alice, "network", "create", "alice-only", "-f", "json")
    assert net["project_id"] == "project-a"
    assert net["provider:network_type"] is None  # admin-only, hidden from a member
    assert "alice-only" not in [n["Name"] for n in openstack_cli(bob, "network", "list",
                                                                  "-f", "json")]
    assert openstack_cli(bob, "network", "show", "alice-only", check=False).returncode != 0
    shown = openstack_cli(admin, "network", "show", "alice-only", "-f", "json")
    assert shown["provider:network_type"] == "vxlan"
    openstack_cli(alice, "network", "delete", "alice-only")


def test_service_provider_list(basic_server: Server) -> None:
    """`openstack network service provider list` (service-type) shows the router kinds
    neutrino has: the legacy, centralised one."""
    rows = openstack_cli(basic_server.cli_env(*ALICE), "network", "service", "provider",
                         "list", "-f", "json")
    assert rows == [{"Service Type": "L3_ROUTER_NAT", "Name": "single_node",
                     "Default": False}]
