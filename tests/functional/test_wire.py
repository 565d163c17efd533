"""Wire conformance: where neutrino answered differently from a neutron-server side by side.

Request ids, the `.json` suffix, revision numbers and `If-Match`, paging links, a marker
that names nothing, CIDRs with host bits and Neutron's error words (failed bindings and
an agent's `fields` are in test_hardening, which has agents).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlparse

import httpx
import netaddr
import pytest

from tests.conftest import ADMIN, ALICE, BOB, _server
from tests.functional.test_api import error, ok
from tests.support import Server, openstack_cli

REQUEST_ID = re.compile(
    r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An http_basic server on SQLite: what is tested here is the API's, not the database's
    (the If-Match tests, whose check locks a row, run on every backend)."""
    yield from _server(tmp_path_factory.mktemp("wire"), "sqlite", "http_basic")


@pytest.fixture
def everywhere(basic_server: Server) -> Iterator[tuple[httpx.Client, httpx.Client, httpx.Client]]:
    """Admin, Alice and Bob on each backend's http_basic server."""
    with basic_server.http(basic=ADMIN) as admin, basic_server.http(basic=ALICE) as alice, \
            basic_server.http(basic=BOB) as bob:
        yield admin, alice, bob


def network(client: httpx.Client, **attrs: object) -> dict:
    """A new network."""
    return ok(client.post("/v2.0/networks", json={"network": {"name": "wire", **attrs}}),
              201)["network"]


def subnet(client: httpx.Client, network_id: str, cidr: str) -> dict:
    """A new IPv4 subnet."""
    return ok(client.post("/v2.0/subnets", json={"subnet": {
        "network_id": network_id, "cidr": cidr, "ip_version": 4}}), 201)["subnet"]


def test_every_response_carries_a_request_id_that_the_log_names(
        server: Server, admin: httpx.Client) -> None:
    """Answers, errors and unrouted paths alike; each request a new id, in the server log."""
    answers = [admin.get("/"), admin.get("/v2.0/networks"),
               admin.get(f"/v2.0/networks/{uuid.uuid4()}"), admin.get("/v2.0/nowhere"),
               admin.post("/v2.0/networks", json={"network": {"bogus": 1}})]
    ids = [a.headers["X-OpenStack-Request-Id"] for a in answers]
    assert all(REQUEST_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    missing = str(uuid.uuid4())
    answer = admin.put(f"/v2.0/networks/{missing}", json={"network": {"name": "x"}})
    error(answer, 404, "NetworkNotFound")
    request_id = answer.headers["X-OpenStack-Request-Id"]
    # The server logs the failed update with its request id (oslo.log's context format).
    lines = [line for line in server.log.read_text().splitlines() if request_id in line]
    assert lines, f"no log line names {request_id}"


def test_json_suffix_and_no_v2_without_slash(admin: httpx.Client) -> None:
    """`/v2.0/networks/{id}.json` is the network; `/v2.0` without its slash is a 404."""
    net = network(admin)
    assert ok(admin.get(f"/v2.0/networks/{net['id']}.json"))["network"]["id"] == net["id"]
    assert net["id"] in {n["id"] for n in ok(admin.get("/v2.0/networks.json"))["networks"]}
    error(admin.get("/v2.0", follow_redirects=False), 404, "HTTPNotFound")
    assert "resources" in ok(admin.get("/v2.0/"))


def test_revision_numbers_count_as_neutron_counts(admin: httpx.Client) -> None:
    """Networks and ports read 1 after create; a subnet made or removed, a router interface
    added or removed, count as changes of the network and the router."""
    net = network(admin)
    assert net["revision_number"] == 1
    port = ok(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 201)["port"]
    assert port["revision_number"] == 1
    sub = subnet(admin, net["id"], "10.61.0.0/24")
    after_subnet = ok(admin.get(f"/v2.0/networks/{net['id']}"))["network"]
    assert after_subnet["revision_number"] > net["revision_number"]
    router = ok(admin.post("/v2.0/routers", json={"router": {"name": "wire"}}), 201)["router"]
    ok(admin.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                 json={"subnet_id": sub["id"]}))
    with_interface = ok(admin.get(f"/v2.0/routers/{router['id']}"))["router"]
    assert with_interface["revision_number"] > router["revision_number"]
    ok(admin.put(f"/v2.0/routers/{router['id']}/remove_router_interface",
                 json={"subnet_id": sub["id"]}))
    without = ok(admin.get(f"/v2.0/routers/{router['id']}"))["router"]
    assert without["revision_number"] > with_interface["revision_number"]
    ok(admin.delete(f"/v2.0/ports/{port['id']}"), 204)
    ok(admin.delete(f"/v2.0/subnets/{sub['id']}"), 204)
    after_delete = ok(admin.get(f"/v2.0/networks/{net['id']}"))["network"]
    assert after_delete["revision_number"] > after_subnet["revision_number"]


def test_if_match_constrains_updates_and_deletes(
        everywhere: tuple[httpx.Client, httpx.Client, httpx.Client]) -> None:
    """A stale `If-Match: revision_number=N` is a 412 and changes nothing; the current one
    (quoted or not) goes through; malformed ones are 400s; other entity tags are ignored."""
    admin = everywhere[0]
    net = network(admin)
    url = f"/v2.0/networks/{net['id']}"
    stale = admin.put(url, json={"network": {"name": "stale"}},
                      headers={"If-Match": "revision_number=0"})
    assert error(stale, 412, "RevisionNumberConstraintFailed") == \
        "Constrained to 0, but current revision is 1"
    assert ok(admin.get(url))["network"]["name"] == "wire"
    renamed = ok(admin.put(url, json={"network": {"name": "fresh"}},
                           headers={"If-Match": '"revision_number=1"'}))["network"]
    assert renamed["name"] == "fresh" and renamed["revision_number"] == 2
    ok(admin.put(url, json={"network": {"name": "any"}}, headers={"If-Match": '"abc", *'}))
    assert "format of revision_number=<int>" in error(
        admin.put(url, json={"network": {"name": "x"}},
                  headers={"If-Match": "revision_number=two"}), 400, "BadRequest")
    assert "Multiple revision_number" in error(
        admin.put(url, json={"network": {"name": "x"}},
                  headers={"If-Match": "revision_number=3, revision_number=3"}), 400,
        "BadRequest")
    error(admin.delete(url, headers={"If-Match": "revision_number=2"}), 412,
          "RevisionNumberConstraintFailed")
    ok(admin.get(url))
    ok(admin.delete(url, headers={"If-Match": "revision_number=3"}), 204)
    error(admin.get(url), 404, "NetworkNotFound")


@pytest.fixture
def members(server: Server) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Alice and Bob, members of two projects."""
    with server.http(basic=ALICE) as alice, server.http(basic=BOB) as bob:
        yield alice, bob


def test_if_match_on_a_hidden_resource_is_its_not_found(
        everywhere: tuple[httpx.Client, httpx.Client, httpx.Client]) -> None:
    """A 412 would tell Bob that Alice's network exists: he gets its NotFound."""
    _admin, alice, bob = everywhere
    net = network(alice)
    for stale in (0, 1):
        error(bob.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}},
                      headers={"If-Match": f"revision_number={stale}"}), 404,
              "NetworkNotFound")
        error(bob.delete(f"/v2.0/networks/{net['id']}",
                         headers={"If-Match": f"revision_number={stale}"}), 404,
              "NetworkNotFound")


def _rels(body: dict) -> dict[str, dict[str, str]]:
    return {link["rel"]: dict(parse_qsl(urlparse(link["href"]).query))
            for link in body.get("networks_links", [])}


def test_paging_links_as_neutron_gives_them(admin: httpx.Client) -> None:
    """A first full page has `next` and `previous`; a short last page only `previous`; a
    short page going backward only `next`; a missing marker is the network's NotFound."""
    name = f"page-{uuid.uuid4().hex[:6]}"
    ids = sorted(network(admin, name=name)["id"] for _ in range(5))
    first = ok(admin.get("/v2.0/networks", params={"name": name, "limit": 2,
                                                   "sort_key": "id", "sort_dir": "asc"}))
    links = _rels(first)
    assert [n["id"] for n in first["networks"]] == ids[:2]
    assert links["next"]["marker"] == ids[1] and "page_reverse" not in links["next"]
    assert links["previous"] == {"name": name, "limit": "2", "sort_key": "id",
                                 "sort_dir": "asc", "marker": ids[0], "page_reverse": "True"}
    last = ok(admin.get("/v2.0/networks", params={"name": name, "limit": 2, "sort_key": "id",
                                                  "sort_dir": "asc", "marker": ids[3]}))
    assert [n["id"] for n in last["networks"]] == ids[4:]
    assert set(_rels(last)) == {"previous"}
    back = ok(admin.get("/v2.0/networks", params={"name": name, "limit": 2, "sort_key": "id",
                                                  "sort_dir": "asc", "marker": ids[1],
                                                  "page_reverse": "True"}))
    assert [n["id"] for n in back["networks"]] == ids[:1]
    assert set(_rels(back)) == {"next"}
    missing = str(uuid.uuid4())
    assert error(admin.get("/v2.0/networks", params={"limit": 2, "marker": missing}), 404,
                 "NetworkNotFound") == f"Network {missing} could not be found."


def test_cidr_with_host_bits_is_normalised(admin: httpx.Client) -> None:
    """`10.41.0.5/24` is stored and answered as `10.41.0.0/24`."""
    net = network(admin)
    made = subnet(admin, net["id"], "10.41.0.5/24")
    assert made["cidr"] == "10.41.0.0/24" and made["gateway_ip"] == "10.41.0.1"


@pytest.mark.parametrize(("body", "kind", "message"), [
    ({"network": {"bogus": 1}}, "HTTPBadRequest", "Unrecognized attribute(s) 'bogus'"),
    ({"network": {"id": "0b8c0d6e-5b1f-4a4e-9f7e-0d6a2f1d3c11"}}, "HTTPBadRequest",
     "Cannot update read-only attribute id"),
    ({"network": {"status": "DOWN"}}, "HTTPBadRequest",
     "Cannot update read-only attribute status"),
    ({"net": {}}, "HTTPBadRequest", "Unable to find 'network' in request body"),
])
def test_body_errors_in_neutrons_words(admin: httpx.Client, body: dict, kind: str,
                                       message: str) -> None:
    """The error type and message clients and tempest match."""
    net = network(admin)
    assert error(admin.put(f"/v2.0/networks/{net['id']}", json=body), 400, kind) == message


def test_tag_creation_and_tags_in_create_bodies(admin: httpx.Client) -> None:
    """`POST .../tags` adds to a resource's tags (`tag-creation`); a port takes tags in its
    create body, other resources refuse them as Neutron does (they are set through /tags)."""
    net = network(admin)
    url = f"/v2.0/networks/{net['id']}/tags"
    ok(admin.put(url, json={"tags": ["red"]}))
    assert ok(admin.post(url, json={"tags": ["green", "blue", "red"]}), 201) == {
        "tags": ["blue", "green", "red"]}
    assert ok(admin.get(url))["tags"] == ["blue", "green", "red"]
    error(admin.post(url, json={"tag": ["x"]}), 400, "BadRequest")
    error(admin.post(f"/v2.0/networks/{uuid.uuid4()}/tags", json={"tags": ["x"]}), 404,
          "NetworkNotFound")
    port = ok(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                       "tags": ["vm"]}}), 201)["port"]
    assert port["tags"] == ["vm"]
    assert error(admin.post("/v2.0/networks", json={"network": {"tags": ["x"]}}), 400,
                 "HTTPBadRequest") == "Attribute 'tags' not allowed in POST"
    assert "tag-creation" in {e["alias"] for e in ok(admin.get("/v2.0/extensions"))["extensions"]}


def _ips(port: dict) -> dict[str, str]:
    return {ip["subnet_id"]: ip["ip_address"] for ip in port["fixed_ips"]}


def test_slaac_subnets_address_every_port_but_routers(admin: httpx.Client) -> None:
    """An auto-addressed IPv6 subnet gives every port its EUI-64 address, even one whose
    fixed_ips name only the IPv4 subnet; existing ports get theirs when it is made; router
    interfaces do not; deleting it while only such ports use it succeeds."""
    net = network(admin)
    v4 = subnet(admin, net["id"], "10.62.0.0/24")
    before = ok(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}),
                201)["port"]
    slaac = ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "fd62::/64", "ip_version": 6,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}}), 201)["subnet"]
    assert slaac["gateway_ip"] == "fd62::1"
    assert slaac["allocation_pools"] == [{"start": "fd62::2", "end": "fd62::ffff:ffff:ffff:ffff"}]
    eui = netaddr.EUI(before["mac_address"]).ipv6(netaddr.IPAddress("fd62::"))
    shown = ok(admin.get(f"/v2.0/ports/{before['id']}"))["port"]
    assert _ips(shown) == {v4["id"]: _ips(before)[v4["id"]], slaac["id"]: str(eui)}
    assert shown["revision_number"] > before["revision_number"]
    named = ok(admin.post("/v2.0/ports", json={"port": {
        "network_id": net["id"], "fixed_ips": [{"subnet_id": v4["id"]}]}}), 201)["port"]
    assert set(_ips(named)) == {v4["id"], slaac["id"]}
    assert _ips(named)[slaac["id"]] == str(
        netaddr.EUI(named["mac_address"]).ipv6(netaddr.IPAddress("fd62::")))
    bare = ok(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                       "fixed_ips": []}}), 201)["port"]
    assert bare["fixed_ips"] == []
    kept = ok(admin.put(f"/v2.0/ports/{named['id']}", json={"port": {
        "fixed_ips": [{"subnet_id": v4["id"], "ip_address": "10.62.0.50"}]}}))["port"]
    assert _ips(kept) == {v4["id"]: "10.62.0.50", slaac["id"]: _ips(named)[slaac["id"]]}
    router = ok(admin.post("/v2.0/routers", json={"router": {"name": "slaac"}}), 201)["router"]
    interface = ok(admin.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                             json={"subnet_id": v4["id"]}))
    router_port = ok(admin.get(f"/v2.0/ports/{interface['port_id']}"))["port"]
    assert set(_ips(router_port)) == {v4["id"]}
    ok(admin.delete(f"/v2.0/subnets/{slaac['id']}"), 204)
    assert set(_ips(ok(admin.get(f"/v2.0/ports/{named['id']}"))["port"])) == {v4["id"]}


def test_network_ip_availability(server: Server, admin: httpx.Client,
                                 members: tuple[httpx.Client, httpx.Client]) -> None:
    """Pool sizes and allocations per subnet and network, for admins, through the API, the
    SDK and `openstack ip availability show`; members are refused."""
    net = network(admin, name=f"avail-{uuid.uuid4().hex[:6]}")
    v4 = ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.63.0.0/24", "ip_version": 4,
        "allocation_pools": [{"start": "10.63.0.10", "end": "10.63.0.19"}]}}), 201)["subnet"]
    for _ in range(3):
        ok(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 201)
    shown = ok(admin.get(f"/v2.0/network-ip-availabilities/{net['id']}"))
    assert shown["network_ip_availability"] == {
        "network_id": net["id"], "network_name": net["name"], "project_id": net["project_id"],
        "tenant_id": net["project_id"], "total_ips": 10, "used_ips": 3,
        "subnet_ip_availability": [{"subnet_id": v4["id"], "subnet_name": "",
                                    "cidr": "10.63.0.0/24", "ip_version": 4,
                                    "total_ips": 10, "used_ips": 3}]}
    listed = ok(admin.get("/v2.0/network-ip-availabilities",
                          params={"network_name": net["name"], "fields": "used_ips"}))
    assert listed["network_ip_availabilities"] == [{"used_ips": 3}]
    assert ok(admin.get("/v2.0/network-ip-availabilities", params={
        "network_id": net["id"], "ip_version": "6"}))["network_ip_availabilities"] == []
    error(admin.get(f"/v2.0/network-ip-availabilities/{uuid.uuid4()}"), 404,
          "NetworkNotFound")
    error(members[0].get("/v2.0/network-ip-availabilities"), 403, "PolicyNotAuthorized")
    sdk = server.sdk(*ADMIN).network.get_network_ip_availability(net["id"])
    assert (sdk.total_ips, sdk.used_ips) == (10, 3)
    cli = openstack_cli(server.cli_env(*ADMIN), "ip", "availability", "show", net["id"],
                        "-f", "json")
    assert cli["used_ips"] == 3 and cli["total_ips"] == 10


def test_a_port_takes_its_address_from_the_first_subnet_made(admin: httpx.Client) -> None:
    """Subnets made within one second (one bulk request) keep their creation order: a port
    without fixed_ips takes its address from the first, whatever the ids' order."""
    net = network(admin)
    made = ok(admin.post("/v2.0/subnets", json={"subnets": [
        {"network_id": net["id"], "cidr": f"10.63.{i}.0/24", "ip_version": 4}
        for i in range(8)]}), 201)["subnets"]
    port = ok(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 201)["port"]
    assert [ip["subnet_id"] for ip in port["fixed_ips"]] == [made[0]["id"]]


def test_subnet_service_types_choose_a_ports_subnet(server: Server,
                                                   admin: httpx.Client) -> None:
    """A subnet with service types serves only ports of those device owners (and DHCP
    ports), set through the real CLI; other ports take the subnets without types."""
    env = server.cli_env(*ADMIN)
    net = network(admin)
    plain = subnet(admin, net["id"], "10.64.0.0/24")
    typed = openstack_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range",
                          "10.64.1.0/24", "--service-type", "compute:nova", "-f", "json",
                          "typed")
    assert typed["service_types"] == ["compute:nova"]

    def port(owner: str, **attrs: object) -> httpx.Response:
        return admin.post("/v2.0/ports", json={"port": {
            "network_id": net["id"], "device_owner": owner, **attrs}})

    vm = ok(port("compute:nova"), 201)["port"]
    assert [ip["subnet_id"] for ip in vm["fixed_ips"]] == [typed["id"]]
    other = ok(port("compute:other"), 201)["port"]
    assert [ip["subnet_id"] for ip in other["fixed_ips"]] == [plain["id"]]
    assert "invalid subnet" in error(port("", fixed_ips=[{"subnet_id": typed["id"]}]), 400,
                                     "InvalidInput")
    dhcp = ok(port("network:dhcp", fixed_ips=[{"subnet_id": typed["id"]}]), 201)["port"]
    assert [ip["subnet_id"] for ip in dhcp["fixed_ips"]] == [typed["id"]]

    only_typed = network(admin)
    ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": only_typed["id"], "cidr": "10.64.2.0/24", "ip_version": 4,
        "service_types": ["network:floatingip"]}}), 201)
    assert error(admin.post("/v2.0/ports", json={"port": {"network_id": only_typed["id"]}}),
                 409, "IpAddressGenerationFailureNoMatchingSubnet") == (
        f"No valid service subnet for the given device owner, network {only_typed['id']}, "
        "service type .")
    assert error(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": only_typed["id"], "cidr": "10.64.3.0/24", "ip_version": 4,
        "service_types": ["nova"]}}), 400, "InvalidSubnetServiceType") == (
        "Subnet service type nova does not correspond to a valid device owner.")
    ok(admin.put(f"/v2.0/subnets/{plain['id']}", json={"subnet": {
        "service_types": ["compute:other"]}}))
    assert [ip["subnet_id"] for ip in ok(port("compute:other"), 201)["port"]["fixed_ips"]] \
        == [plain["id"]]
    error(port("compute:third"), 409, "IpAddressGenerationFailureNoMatchingSubnet")
