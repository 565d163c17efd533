"""Routers and floating IPs through the real CLI, the SDK and plain HTTP: what clients see,
Neutron's errors, policy and project isolation (http_basic: admin, alice in A, bob in B)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ALICE, BOB
from tests.functional.test_api import error, ok
from tests.support import Server, openstack_cli

pytestmark = pytest.mark.cli


def sqlite_only(server: Server) -> None:
    """The CLI journeys run on SQLite: the HTTP tests cover every backend, and a second
    per CLI command on each of three backends is the suite's time for nothing."""
    if not server.db_url.startswith("sqlite"):
        pytest.skip("CLI journey: SQLite only (the HTTP tests cover every backend)")


@pytest.fixture(scope="module")
def server(basic_server: Server) -> Server:
    """One http_basic server per backend for the module."""
    return basic_server


@pytest.fixture(scope="module")
def external(admin: httpx.Client) -> dict[str, Any]:
    """ext-net (flat, external) with 203.0.113.0/24, pool .101-.200, no DHCP."""
    net = ok(admin.post("/v2.0/networks", json={"network": {
        "name": f"ext-{uuid.uuid4().hex[:6]}", "router:external": True,
        "provider:network_type": "flat",
        "provider:physical_network": f"ext{uuid.uuid4().hex[:6]}"}}), 201)["network"]
    subnet = ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "203.0.113.0/24", "ip_version": 4,
        "enable_dhcp": False, "gateway_ip": "203.0.113.1",
        "allocation_pools": [{"start": "203.0.113.101", "end": "203.0.113.200"}]}}),
        201)["subnet"]
    return {"network": net, "subnet": subnet}


def tenant_net(client: httpx.Client, cidr: str) -> tuple[dict[str, Any], dict[str, Any]]:
    net = ok(client.post("/v2.0/networks", json={"network": {
        "name": f"t-{uuid.uuid4().hex[:6]}"}}), 201)["network"]
    subnet = ok(client.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 4}}), 201)["subnet"]
    return net, subnet


def test_router_journey_through_the_cli(server: Server, external: dict[str, Any]) -> None:
    """Seed 004's router commands as a member: create, interface, gateway, routes, show."""
    sqlite_only(server)
    env = server.cli_env(*ALICE)
    with server.http(basic=ALICE) as alice:
        net, subnet = tenant_net(alice, "192.168.51.0/24")
    name = f"r-{uuid.uuid4().hex[:6]}"
    created = openstack_cli(env, "router", "create", name, "-f", "json")
    assert created["status"] == "ACTIVE" and created["admin_state_up"] is True
    assert "ha" not in created and "distributed" not in created  # admin-only attributes
    openstack_cli(env, "router", "add", "subnet", name, subnet["id"])
    openstack_cli(env, "router", "set", name, "--external-gateway", external["network"]["id"])
    shown = openstack_cli(env, "router", "show", name, "-f", "json")
    gateway = shown["external_gateway_info"]
    assert gateway["network_id"] == external["network"]["id"] and gateway["enable_snat"]
    [fixed] = gateway["external_fixed_ips"]
    assert fixed["subnet_id"] == external["subnet"]["id"]
    assert fixed["ip_address"].startswith("203.0.113.")
    interfaces = shown["interfaces_info"]
    assert [i["ip_address"] for i in interfaces] == ["192.168.51.1"]
    ports = openstack_cli(env, "port", "list", "--router", name, "-f", "json")
    assert len(ports) == 1  # the gateway port is not the project's

    openstack_cli(env, "router", "add", "route", name, "--route",
                  "destination=10.20.0.0/16,gateway=192.168.51.254")
    routes = openstack_cli(env, "router", "show", name, "-f", "json")["routes"]
    assert routes == [{"destination": "10.20.0.0/16", "nexthop": "192.168.51.254"}]
    refused = openstack_cli(env, "router", "add", "route", name, "--route",
                            "destination=10.30.0.0/16,gateway=10.99.0.1", check=False)
    assert refused.returncode != 0 and "not connected with router" in refused.stderr
    openstack_cli(env, "router", "remove", "route", name, "--route",
                  "destination=10.20.0.0/16,gateway=192.168.51.254")
    assert openstack_cli(env, "router", "show", name, "-f", "json")["routes"] == []

    in_use = openstack_cli(env, "subnet", "delete", subnet["id"], check=False)
    assert in_use.returncode != 0
    still = openstack_cli(env, "router", "delete", name, check=False)
    assert still.returncode != 0 and "has ports still attached" in still.stderr
    openstack_cli(env, "router", "unset", "--external-gateway", name)
    assert openstack_cli(env, "router", "show", name, "-f", "json")[
        "external_gateway_info"] in (None, {}, "null")
    openstack_cli(env, "router", "remove", "subnet", name, subnet["id"])
    openstack_cli(env, "router", "delete", name)
    openstack_cli(env, "subnet", "delete", subnet["id"])
    openstack_cli(env, "network", "delete", net["id"])


def test_router_errors_and_policy(alice: httpx.Client, admin: httpx.Client,
                                  external: dict[str, Any]) -> None:
    """Neutron's codes and messages for interfaces, gateways and admin-only attributes."""
    net, subnet = tenant_net(alice, "192.168.52.0/24")
    router = ok(alice.post("/v2.0/routers", json={"router": {"name": "e"}}), 201)["router"]
    url = f"/v2.0/routers/{router['id']}"
    assert "Either subnet_id or port_id must be specified" in error(
        alice.put(f"{url}/add_router_interface", json={}), 400, "BadRequest")
    assert "Cannot specify both subnet-id and port-id" in error(alice.put(
        f"{url}/add_router_interface", json={"subnet_id": subnet["id"],
                                              "port_id": str(uuid.uuid4())}), 400, "BadRequest")
    info = ok(alice.put(f"{url}/add_router_interface", json={"subnet_id": subnet["id"]}))
    assert set(info) == {"id", "tenant_id", "project_id", "port_id", "network_id",
                         "subnet_id", "subnet_ids"}
    assert info["subnet_ids"] == [subnet["id"]] and info["network_id"] == net["id"]
    assert f"Router already has a port on subnet {subnet['id']}" in error(alice.put(
        f"{url}/add_router_interface", json={"subnet_id": subnet["id"]}), 400, "BadRequest")
    assert "cannot be deleted directly via the port API" in error(
        alice.delete(f"/v2.0/ports/{info['port_id']}"), 409, "ServicePortInUse")
    error(alice.put(f"{url}/remove_router_interface", json={"port_id": str(uuid.uuid4())}),
          404, "RouterInterfaceNotFound")
    # A port of the project becomes an interface; one with a device is refused.
    _net2, sub2 = tenant_net(alice, "192.168.53.0/24")
    port = ok(alice.post("/v2.0/ports", json={"port": {
        "network_id": sub2["network_id"], "device_id": "vm-1"}}), 201)["port"]
    error(alice.put(f"{url}/add_router_interface", json={"port_id": port["id"]}), 409,
          "PortInUse")
    free = ok(alice.post("/v2.0/ports", json={"port": {"network_id": sub2["network_id"]}}),
              201)["port"]
    by_port = ok(alice.put(f"{url}/add_router_interface", json={"port_id": free["id"]}))
    assert by_port["port_id"] == free["id"]
    got = ok(alice.get(f"/v2.0/ports/{free['id']}"))["port"]
    assert (got["device_id"], got["device_owner"]) == (router["id"], "network:router_interface")
    error(alice.put(f"{url}/remove_router_interface", json={
        "port_id": free["id"], "subnet_id": subnet["id"]}), 400, "SubnetMismatchForPort")
    ok(alice.put(f"{url}/remove_router_interface", json={"subnet_id": sub2["id"]}))
    error(alice.get(f"/v2.0/ports/{free['id']}"), 404, "PortNotFound")

    # Gateways: an external network only; SNAT and addresses are the admin's to choose.
    assert "is not an external network" in error(alice.put(url, json={"router": {
        "external_gateway_info": {"network_id": net["id"]}}}), 400, "BadRequest")
    error(alice.put(url, json={"router": {"external_gateway_info": {
        "network_id": external["network"]["id"], "enable_snat": False}}}), 403,
        "PolicyNotAuthorized")
    ok(admin.put(url, json={"router": {"external_gateway_info": {
        "network_id": external["network"]["id"], "enable_snat": False,
        "external_fixed_ips": [{"ip_address": "203.0.113.177"}]}}}))
    gw = ok(alice.get(url))["router"]["external_gateway_info"]
    assert gw["enable_snat"] is False
    assert gw["external_fixed_ips"][0]["ip_address"] == "203.0.113.177"
    assert "is the same as the gateway IP" in error(admin.put(url, json={"router": {
        "external_gateway_info": {"network_id": external["network"]["id"],
                                  "external_fixed_ips": [{"ip_address": "203.0.113.1"}]}}}),
        400, "BadRequest")
    error(admin.put(f"/v2.0/networks/{external['network']['id']}", json={"network": {
        "router:external": False}}), 409, "ExternalNetworkInUse")
    error(admin.delete(f"/v2.0/networks/{external['network']['id']}"), 409, "NetworkInUse")

    # HA and distributed: admin-only; distributed only False until it lands.
    error(alice.post("/v2.0/routers", json={"router": {"ha": False}}), 403,
          "PolicyNotAuthorized")
    assert "Distributed routers are not supported" in error(admin.post("/v2.0/routers", json={
        "router": {"distributed": True}}), 400, "BadRequest")
    shown = ok(admin.get(url))["router"]
    assert shown["ha"] is False and shown["distributed"] is False
    error(alice.put(url, json={"router": {"routes": [
        {"destination": "10.0.0.0/8", "nexthop": "192.168.52.1"}]}}), 400, "InvalidRoutes")
    # `routes: null` clears them, as Neutron (and tempest's extra route tests) have it.
    assert ok(alice.put(url, json={"router": {"routes": None}}))["router"]["routes"] == []
    ok(alice.put(url, json={"router": {"external_gateway_info": {}}}))
    assert ok(alice.get(url))["router"]["external_gateway_info"] is None
    ok(alice.put(f"{url}/remove_router_interface", json={"subnet_id": subnet["id"]}))
    ok(alice.delete(url), 204)
    error(alice.get(url), 404, "RouterNotFound")


def test_floating_ips_through_the_cli(server: Server, alice: httpx.Client,
                                      external: dict[str, Any]) -> None:
    """Create, associate by address, show, list by port, disassociate, delete."""
    sqlite_only(server)
    env = server.cli_env(*ALICE)
    net, subnet = tenant_net(alice, "192.168.54.0/24")
    router = ok(alice.post("/v2.0/routers", json={"router": {
        "name": "fip-r", "external_gateway_info": {
            "network_id": external["network"]["id"]}}}), 201)["router"]
    ok(alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                 json={"subnet_id": subnet["id"]}))
    vm = ok(alice.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                     "device_owner": "compute:nova"}}),
            201)["port"]
    fip = openstack_cli(env, "floating", "ip", "create", external["network"]["id"], "-f",
                        "json")
    address = fip["floating_ip_address"]
    assert fip["status"] == "DOWN" and fip["port_id"] is None and fip["router_id"] is None
    openstack_cli(env, "floating", "ip", "set", "--port", vm["id"], address)
    shown = openstack_cli(env, "floating", "ip", "show", address, "-f", "json")
    assert shown["port_id"] == vm["id"] and shown["router_id"] == router["id"]
    assert shown["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]
    assert shown["port_details"]["network_id"] == net["id"]
    listed = openstack_cli(env, "floating", "ip", "list", "--port", vm["id"], "-f", "json")
    assert [f["Floating IP Address"] for f in listed] == [address]
    assert "required by one or more floating IPs" in error(alice.put(
        f"/v2.0/routers/{router['id']}/remove_router_interface",
        json={"subnet_id": subnet["id"]}), 409, "RouterInterfaceInUseByFloatingIP")
    error(alice.put(f"/v2.0/routers/{router['id']}", json={"router": {
        "external_gateway_info": {}}}), 409, "RouterExternalGatewayInUseByFloatingIp")
    openstack_cli(env, "floating", "ip", "unset", "--port", address)
    shown = openstack_cli(env, "floating", "ip", "show", address, "-f", "json")
    assert shown["port_id"] is None and shown["status"] == "DOWN"
    openstack_cli(env, "floating", "ip", "delete", address)
    assert openstack_cli(env, "floating", "ip", "list", "-f", "json") == [] or all(
        f["Floating IP Address"] != address for f in openstack_cli(
            env, "floating", "ip", "list", "-f", "json"))


def test_floating_ip_errors(alice: httpx.Client, admin: httpx.Client,
                            external: dict[str, Any]) -> None:
    """Neutron's association errors, in its words."""
    net, subnet = tenant_net(alice, "192.168.55.0/24")
    ext_id = external["network"]["id"]
    assert "is not a valid external network" in error(alice.post("/v2.0/floatingips", json={
        "floatingip": {"floating_network_id": net["id"]}}), 400, "BadRequest")
    error(alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": ext_id, "floating_ip_address": "203.0.113.199"}}), 403,
        "PolicyNotAuthorized")
    fip = ok(alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": ext_id}}), 201)["floatingip"]
    url = f"/v2.0/floatingips/{fip['id']}"
    vm = ok(alice.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 201)["port"]
    error(alice.put(url, json={"floatingip": {"port_id": vm["id"]}}), 404,
          "ExternalGatewayForFloatingIPNotFound")
    router = ok(alice.post("/v2.0/routers", json={"router": {"external_gateway_info": {
        "network_id": ext_id}}}), 201)["router"]
    ok(alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                 json={"subnet_id": subnet["id"]}))
    other = next(f"192.168.55.{i}" for i in (250, 251)  # an address that is not the VM's
                 if f"192.168.55.{i}" != vm["fixed_ips"][0]["ip_address"])
    assert f"does not have fixed ip {other}" in error(alice.put(url, json={
        "floatingip": {"port_id": vm["id"], "fixed_ip_address": other}}), 400, "BadRequest")
    dhcp = ok(admin.post("/v2.0/ports", json={"port": {
        "network_id": net["id"], "device_owner": "network:dhcp"}}), 201)["port"]
    assert "Port %(id)s is unable to be assigned a floating IP" in error(admin.put(url, json={
        "floatingip": {"port_id": dhcp["id"]}}), 400, "BadRequest")
    ok(alice.put(url, json={"floatingip": {"port_id": vm["id"]}}))
    other = ok(alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": ext_id}}), 201)["floatingip"]
    error(alice.put(f"/v2.0/floatingips/{other['id']}", json={"floatingip": {
        "port_id": vm["id"]}}), 409, "FloatingIPPortAlreadyAssociated")
    assert "fixed_ip_address cannot be specified without a port_id" in error(alice.post(
        "/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext_id,
                                                  "fixed_ip_address": "10.0.0.1"}}),
        400, "BadRequest")
    error(alice.get(f"/v2.0/floatingips/{uuid.uuid4()}"), 404, "FloatingIPNotFound")
    # Deleting the VM's port leaves the floating IP, pointing nowhere.
    ok(alice.delete(f"/v2.0/ports/{vm['id']}"), 204)
    gone = ok(alice.get(url))["floatingip"]
    assert gone["port_id"] is None and gone["router_id"] is None


def test_routers_and_floating_ips_are_isolated(alice: httpx.Client, server: Server,
                                               external: dict[str, Any]) -> None:
    """Bob sees none of Alice's routers or floating IPs and cannot act on them."""
    router = ok(alice.post("/v2.0/routers", json={"router": {"name": "alice-r"}}), 201)[
        "router"]
    fip = ok(alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": external["network"]["id"]}}), 201)["floatingip"]
    with server.http(basic=BOB) as bob:
        assert router["id"] not in {r["id"] for r in ok(bob.get("/v2.0/routers"))["routers"]}
        assert fip["id"] not in {f["id"] for f in ok(bob.get("/v2.0/floatingips"))[
            "floatingips"]}
        error(bob.get(f"/v2.0/routers/{router['id']}"), 404, "RouterNotFound")
        error(bob.put(f"/v2.0/routers/{router['id']}", json={"router": {"name": "x"}}), 404,
              "RouterNotFound")
        error(bob.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                      json={"subnet_id": str(uuid.uuid4())}), 404, "RouterNotFound")
        error(bob.delete(f"/v2.0/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
        net, subnet = tenant_net(bob, "192.168.56.0/24")
        error(alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                        json={"subnet_id": subnet["id"]}), 404, "SubnetNotFound")
        del net


def test_sdk_router_calls(server: Server, external: dict[str, Any]) -> None:
    """openstacksdk: routers, interfaces, extra routes and floating IPs."""
    conn = server.sdk(*ALICE)
    net = conn.network.create_network(name="sdk-net")
    subnet = conn.network.create_subnet(network_id=net.id, cidr="192.168.57.0/24",
                                        ip_version=4)
    router = conn.network.create_router(name="sdk-r", external_gateway_info={
        "network_id": external["network"]["id"]})
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    conn.network.add_extra_routes_to_router(router, body={"router": {"routes": [
        {"destination": "10.40.0.0/16", "nexthop": "192.168.57.9"}]}})
    assert conn.network.get_router(router.id).routes == [
        {"destination": "10.40.0.0/16", "nexthop": "192.168.57.9"}]
    port = conn.network.create_port(network_id=net.id)
    fip = conn.network.create_ip(floating_network_id=external["network"]["id"],
                                 port_id=port.id)
    assert fip.router_id == router.id and fip.fixed_ip_address == port.fixed_ips[0][
        "ip_address"]
    assert conn.network.find_ip(fip.floating_ip_address).id == fip.id
    conn.network.delete_ip(fip)
    conn.network.remove_extra_routes_from_router(router, body={"router": {"routes": [
        {"destination": "10.40.0.0/16", "nexthop": "192.168.57.9"}]}})
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_port(port)
    conn.network.delete_network(net)
