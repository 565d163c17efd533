"""A port's own DHCP options (`extra_dhcp_opt`) through the HTTP API, the CLI and
openstacksdk: stored, merged on update, refused when dnsmasq could not serve them. What
dnsmasq gives the VM is shown in test_linux_dhcp (a real client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ALICE, _server
from tests.functional.test_api import error, ok
from tests.support import Server, openstack_cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An http_basic server on SQLite (the options are rows like any other)."""
    yield from _server(tmp_path_factory.mktemp("dhcp-opts"), "sqlite", "http_basic")


@pytest.fixture(scope="module")
def network(alice: httpx.Client) -> str:
    """Alice's network with a DHCP subnet."""
    net = ok(alice.post("/v2.0/networks", json={"network": {"name": "pxe"}}), 201)["network"]
    ok(alice.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": "10.74.0.0/24"}}), 201)
    return str(net["id"])


def _port(client: httpx.Client, network: str, opts: Any, status: int = 201) -> Any:
    return ok(client.post("/v2.0/ports", json={"port": {
        "network_id": network, "extra_dhcp_opts": opts}}), status)


def test_options_are_stored_and_merged(alice: httpx.Client, network: str) -> None:
    """Created, shown, merged by an update (a null value removes one), as Neutron does."""
    port = _port(alice, network, [
        {"opt_name": "tftp-server", "opt_value": "10.74.0.7"},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": "4"},
        {"opt_name": "router", "opt_value": ""},
        {"opt_name": "ntp-server", "opt_value": None}])["port"]
    assert port["extra_dhcp_opts"] == [
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
        {"opt_name": "router", "opt_value": "", "ip_version": 4},
        {"opt_name": "tftp-server", "opt_value": "10.74.0.7", "ip_version": 4}]
    url = f"/v2.0/ports/{port['id']}"
    updated = ok(alice.put(url, json={"port": {"extra_dhcp_opts": [
        {"opt_name": "tftp-server", "opt_value": "10.74.0.8"},
        {"opt_name": "router", "opt_value": None},
        {"opt_name": "66", "opt_value": "10.74.0.9"}]}}))["port"]
    assert updated["extra_dhcp_opts"] == [
        {"opt_name": "66", "opt_value": "10.74.0.9", "ip_version": 4},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
        {"opt_name": "tftp-server", "opt_value": "10.74.0.8", "ip_version": 4}]
    assert updated["revision_number"] == port["revision_number"] + 1
    listed = ok(alice.get("/v2.0/ports", params={"id": port["id"]}))["ports"]
    assert listed[0]["extra_dhcp_opts"] == updated["extra_dhcp_opts"]
    plain = _port(alice, network, [])["port"]
    assert plain["extra_dhcp_opts"] == []
    for made in (port, plain):
        ok(alice.delete(f"/v2.0/ports/{made['id']}"), 204)


@pytest.mark.parametrize(("opts", "kind"), [
    ([{"opt_name": "no-such-option", "opt_value": "x"}], "InvalidInput"),
    ([{"opt_name": "tftp-server", "opt_value": "a\nb"}], "InvalidInput"),
    ([{"opt_name": "tftp-server", "opt_value": ""}], "InvalidInput"),
    ([{"opt_name": "tftp-server", "opt_value": "x", "ip_version": 5}], "InvalidInput"),
    ([{"opt_name": "bootfile-name", "opt_value": "x", "ip_version": 6}], "InvalidInput"),
    ([{"opt_name": "tftp-server"}], "InvalidInput"),
    ([{"opt_name": "tftp-server", "opt_value": "x", "extra": 1}], "InvalidInput"),
    ([{"opt_name": "tftp-server", "opt_value": "a"},
      {"opt_name": "tftp-server", "opt_value": "b"}], "InvalidInput"),
    ([{"opt_name": "client-id", "opt_value": "abc"}], "InvalidInput"),
    ([{"opt_name": "300", "opt_value": "x"}], "InvalidInput"),
    ("tftp-server", "InvalidInput"),
])
def test_options_dnsmasq_could_not_serve_are_refused(alice: httpx.Client, network: str,
                                                     opts: Any, kind: str) -> None:
    """A name dnsmasq does not know, a value of several lines, a blank value where one is
    needed, and malformed entries are 400s: one bad option must not stop the network's
    DHCP server."""
    error(alice.post("/v2.0/ports", json={"port": {"network_id": network,
                                                   "extra_dhcp_opts": opts}}), 400, kind)


@pytest.mark.cli
def test_options_through_the_cli_and_sdk(server: Server, network: str) -> None:
    """`openstack port create --extra-dhcp-option name=...,value=...` and `port set`, and
    openstacksdk's `extra_dhcp_opts`."""
    env = server.cli_env(*ALICE)
    port = openstack_cli(env, "port", "create", "--network", network, "--extra-dhcp-option",
                         "name=tftp-server,value=10.74.0.7", "--extra-dhcp-option",
                         "name=bootfile-name,value=pxelinux.0", "cli-pxe", "-f", "json")
    assert sorted((o["opt_name"], o["opt_value"]) for o in port["extra_dhcp_opts"]) == [
        ("bootfile-name", "pxelinux.0"), ("tftp-server", "10.74.0.7")]
    openstack_cli(env, "port", "set", "--extra-dhcp-option", "name=tftp-server,value=10.74.0.8",
                  "cli-pxe")
    shown = openstack_cli(env, "port", "show", "cli-pxe", "-f", "json")
    assert {o["opt_name"]: o["opt_value"] for o in shown["extra_dhcp_opts"]}["tftp-server"] \
        == "10.74.0.8"
    sdk = server.sdk(*ALICE)
    fetched = sdk.network.get_port(port["id"])
    assert {o["opt_name"] for o in fetched.extra_dhcp_opts} == {"tftp-server", "bootfile-name"}
    made = sdk.network.create_port(network_id=network, extra_dhcp_opts=[
        {"opt_name": "server-ip-address", "opt_value": "10.74.0.7"}])
    assert made.extra_dhcp_opts == [{"opt_name": "server-ip-address",
                                     "opt_value": "10.74.0.7", "ip_version": 4}]
    sdk.network.delete_port(made)
    openstack_cli(env, "port", "delete", "cli-pxe")
