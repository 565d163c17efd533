"""The API's rules as a client sees them, on every database backend."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support import Server


def ok(resp: httpx.Response, status: int = 200) -> Any:
    """The JSON of a response that must have `status`."""
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def error(resp: httpx.Response, status: int, kind: str) -> str:
    """The message of a NeutronError of `kind` answered with `status`."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()["NeutronError"]
    assert body["type"] == kind, body
    assert body["detail"] == ""
    return str(body["message"])


def make_net(c: httpx.Client, cidr: str | None = "10.9.0.0/24", **attrs: Any) -> tuple[dict, dict]:
    """A network and (optionally) a subnet on it."""
    net = ok(c.post("/v2.0/networks", json={"network": {"name": f"n-{uuid.uuid4().hex[:6]}",
                                                        **attrs}}), 201)["network"]
    subnet = None
    if cidr:
        subnet = ok(c.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": cidr, "ip_version": 4}}), 201)["subnet"]
    return net, subnet


def port(c: httpx.Client, net: dict, **attrs: Any) -> httpx.Response:
    """POST a port on `net`."""
    return c.post("/v2.0/ports", json={"port": {"network_id": net["id"], **attrs}})


@pytest.fixture
def admin(server: Server) -> httpx.Client:
    """An admin HTTP client (noauth, no project header)."""
    with server.http() as client:
        yield client


def test_discovery(admin: httpx.Client) -> None:
    """The version document, the resource list and one extension."""
    versions = ok(admin.get("/"))["versions"]
    assert versions[0]["id"] == "v2.0" and versions[0]["status"] == "CURRENT"
    assert versions[0]["links"][0]["href"].endswith("/v2.0/")
    listed = ok(admin.get("/v2.0/"))["resources"]
    # Neutron's v2 root lists its core resources, subnet pools among them.
    assert [(r["name"], r["collection"]) for r in listed] == [
        ("network", "networks"), ("subnet", "subnets"), ("subnetpool", "subnetpools"),
        ("port", "ports")]
    base = str(admin.base_url).rstrip("/")
    assert listed[0]["links"] == [{"rel": "self", "href": f"{base}/v2.0/networks"}]
    ext = ok(admin.get("/v2.0/extensions/external-net"))["extension"]
    assert ext["name"] == "Neutron external network"
    error(admin.get("/v2.0/extensions/external-gateway-multihoming"), 404, "ExtensionNotFound")
    assert ok(admin.get("/openapi.json"))["openapi"].startswith("3.")


def test_network_defaults_and_standard_attributes(admin: httpx.Client) -> None:
    """A new network's defaults, segment, MTU and standard attributes."""
    net, _ = make_net(admin, None)
    assert net["status"] == "ACTIVE" and net["admin_state_up"] is True
    assert net["shared"] is False and net["router:external"] is False
    assert net["provider:network_type"] == "vxlan"
    assert isinstance(net["provider:segmentation_id"], int)
    assert net["mtu"] == 1450
    assert net["revision_number"] == 1 and net["tags"] == [] and net["description"] == ""
    assert net["created_at"].endswith("Z") and "T" in net["created_at"]
    assert net["tenant_id"] == net["project_id"]
    updated = ok(admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1400}}))
    assert updated["network"]["mtu"] == 1400 and updated["network"]["revision_number"] == 2
    error(admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 9000}}), 400,
          "InvalidInput")


def test_vnis_are_distinct_and_provider_segments_exclusive(admin: httpx.Client) -> None:
    """Each project network gets its own VNI; a taken VNI or flat physnet is a 409."""
    vnis = {make_net(admin, None)[0]["provider:segmentation_id"] for _ in range(5)}
    assert len(vnis) == 5
    flat = ok(admin.post("/v2.0/networks", json={"network": {
        "name": "ext", "provider:network_type": "flat", "provider:physical_network": "physnet1",
        "router:external": True}}), 201)["network"]
    assert flat["mtu"] == 1500 and flat["router:external"] is True
    error(admin.post("/v2.0/networks", json={"network": {
        "provider:network_type": "flat", "provider:physical_network": "physnet1"}}), 409,
        "SegmentationIdInUse")
    vni = sorted(vnis)[0]
    error(admin.post("/v2.0/networks", json={"network": {
        "provider:network_type": "vxlan", "provider:segmentation_id": vni}}), 409,
        "SegmentationIdInUse")


def test_subnet_validation(admin: httpx.Client) -> None:
    """Pools against cidr and gateway; no overlap within a network; bad cidrs."""
    net, _ = make_net(admin, None)

    def sub(**attrs: Any) -> httpx.Response:
        return admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, **attrs}})

    error(sub(cidr="10.20.0.0/24", allocation_pools=[{"start": "10.20.1.2",
                                                      "end": "10.20.1.9"}]),
          400, "OutOfBoundsAllocationPool")
    error(sub(cidr="10.20.0.0/24", allocation_pools=[{"start": "10.20.0.1",
                                                      "end": "10.20.0.9"}]),
          409, "GatewayConflictWithAllocationPools")
    error(sub(cidr="10.20.0.0/24", allocation_pools=[
        {"start": "10.20.0.2", "end": "10.20.0.9"}, {"start": "10.20.0.5", "end": "10.20.0.20"}]),
        409, "OverlappingAllocationPools")
    error(sub(cidr="10.20.0.0/24", allocation_pools=[{"start": "10.20.0.9", "end": "10.20.0.2"}]),
          400, "InvalidAllocationPool")
    assert ok(sub(cidr="10.21.0.5/24"), 201)["subnet"]["cidr"] == "10.21.0.0/24"  # as Neutron
    error(sub(cidr="not-a-cidr"), 400, "InvalidInput")
    error(sub(cidr="2001:db8::/64"), 400, "InvalidInput")  # ip_version 4
    first = ok(sub(cidr="10.20.0.0/24", gateway_ip=None), 201)["subnet"]
    assert first["gateway_ip"] is None
    assert first["allocation_pools"] == [{"start": "10.20.0.1", "end": "10.20.0.254"}]
    assert error(sub(cidr="10.20.0.128/25"), 400, "InvalidInput") == (  # as Neutron
        "Invalid input for operation: Requested subnet with cidr: 10.20.0.128/25 for "
        f"network: {net['id']} overlaps with another subnet.")
    v6 = ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 6, "cidr": "2001:db8::/64"}}), 201)["subnet"]
    assert v6["gateway_ip"] == "2001:db8::1"


def test_port_addresses(admin: httpx.Client) -> None:
    """Fixed IPs: by subnet, by address, taken, outside, MAC uniqueness."""
    net, subnet = make_net(admin, "10.30.0.0/24")
    p1 = ok(port(admin, net, fixed_ips=[{"ip_address": "10.30.0.10"}]), 201)["port"]
    assert p1["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.30.0.10"}]
    assert p1["status"] == "DOWN" and p1["binding:vif_type"] == "unbound"
    error(port(admin, net, fixed_ips=[{"ip_address": "10.30.0.10"}]), 409,
          "IpAddressAlreadyAllocated")
    error(port(admin, net, fixed_ips=[{"ip_address": "10.31.0.10"}]), 400, "InvalidIpForNetwork")
    error(port(admin, net, fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.30.0.255"}]),
          400, "InvalidIpForSubnet")
    error(port(admin, net, mac_address=p1["mac_address"]), 409, "MacAddressInUse")
    p2 = ok(port(admin, net, fixed_ips=[{"subnet_id": subnet["id"]}],
                 mac_address="fa:16:3e:aa:bb:cc"), 201)["port"]
    assert p2["mac_address"] == "fa:16:3e:aa:bb:cc"
    # Addresses are picked at random: move to one that is surely not p2's own.
    target = "10.30.0.21" if p2["fixed_ips"][0]["ip_address"] == "10.30.0.20" else "10.30.0.20"
    moved = ok(admin.put(f"/v2.0/ports/{p2['id']}", json={"port": {
        "fixed_ips": [{"ip_address": target}]}}))["port"]
    assert [ip["ip_address"] for ip in moved["fixed_ips"]] == [target]
    # The released address is free again.
    ok(port(admin, net, fixed_ips=[{"ip_address": p2["fixed_ips"][0]["ip_address"]}]), 201)
    bound = ok(admin.put(f"/v2.0/ports/{p1['id']}", json={"port": {
        "binding:host_id": "HostA"}}))["port"]
    # No Linux bridge agent registered on HostA: the binding fails, as in ML2.
    assert bound["binding:host_id"] == "HostA" and bound["binding:vif_type"] == "binding_failed"
    no_ips = ok(port(admin, net, fixed_ips=[]), 201)["port"]
    assert no_ips["fixed_ips"] == []


def test_exhausted_pool_is_409(admin: httpx.Client) -> None:
    """The last addresses are found; then IpAddressGenerationFailure."""
    net, _ = make_net(admin, "10.40.0.0/29")  # pool .2-.6: five addresses
    addresses = {ok(port(admin, net), 201)["port"]["fixed_ips"][0]["ip_address"]
                 for _ in range(5)}
    assert addresses == {f"10.40.0.{i}" for i in range(2, 7)}
    error(port(admin, net), 409, "IpAddressGenerationFailure")


def test_seed_002_delete_rules(admin: httpx.Client) -> None:
    """Only DHCP ports: subnet and network can go (DHCP ports lose the address); else 409."""
    net, subnet = make_net(admin, "10.50.0.0/24")
    dhcp = ok(port(admin, net, device_owner="network:dhcp", device_id="dhcp-x"), 201)["port"]
    vm = ok(port(admin, net, device_owner="compute:nova"), 201)["port"]
    error(admin.delete(f"/v2.0/subnets/{subnet['id']}"), 409, "SubnetInUse")
    assert error(admin.delete(f"/v2.0/networks/{net['id']}"), 409, "NetworkInUse") == (
        f"Unable to complete operation on network {net['id']}. There are one or more ports "
        f"still in use on the network, id for these ports is: {vm['id']}.")  # not DHCP's
    ok(admin.delete(f"/v2.0/ports/{vm['id']}"), 204)
    ok(admin.delete(f"/v2.0/subnets/{subnet['id']}"), 204)
    after = ok(admin.get(f"/v2.0/ports/{dhcp['id']}"))["port"]
    assert after["fixed_ips"] == [] and after["revision_number"] > dhcp["revision_number"]
    ok(admin.delete(f"/v2.0/networks/{net['id']}"), 204)
    error(admin.get(f"/v2.0/ports/{dhcp['id']}"), 404, "PortNotFound")
    error(admin.get(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")


def test_filters_fields_and_sorting(admin: httpx.Client) -> None:
    """Repeated keys OR, different keys AND; fields=; sort keys; bad keys are 400."""
    tag = uuid.uuid4().hex[:8]
    nets = [make_net(admin, None, name=f"{tag}-{i}", admin_state_up=i % 2 == 0)[0]
            for i in range(4)]
    got = ok(admin.get("/v2.0/networks", params=[("name", f"{tag}-0"), ("name", f"{tag}-1")]))
    assert {n["id"] for n in got["networks"]} == {nets[0]["id"], nets[1]["id"]}
    got = ok(admin.get("/v2.0/networks", params=[("name", f"{tag}-0"), ("name", f"{tag}-1"),
                                                 ("admin_state_up", "False")]))
    assert [n["id"] for n in got["networks"]] == [nets[1]["id"]]
    got = ok(admin.get("/v2.0/networks", params={"name": f"{tag}-2", "fields": "id"}))
    assert got["networks"] == [{"id": nets[2]["id"]}]
    got = ok(admin.get("/v2.0/networks", params=[("fields", "id"), ("fields", "name"),
                                                 ("name", f"{tag}-3")]))
    assert got["networks"] == [{"id": nets[3]["id"], "name": f"{tag}-3"}]
    got = ok(admin.get(f"/v2.0/networks/{nets[0]['id']}", params={"fields": "name"}))
    assert got["network"] == {"name": f"{tag}-0"}
    got = ok(admin.get("/v2.0/networks", params=[
        ("name", f"{tag}-{i}") for i in range(4)] + [("sort_key", "name"), ("sort_dir", "desc")]))
    assert [n["name"] for n in got["networks"]] == [f"{tag}-{i}" for i in (3, 2, 1, 0)]
    error(admin.get("/v2.0/networks", params={"colour": "blue"}), 400, "BadRequest")
    error(admin.get("/v2.0/networks", params={"sort_key": "name"}), 400, "BadRequest")
    error(admin.get("/v2.0/networks", params={"admin_state_up": "maybe"}), 400, "InvalidInput")
    empty = ok(admin.get("/v2.0/ports", params={"device_id": "no-such-device"}))
    assert empty["ports"] == []


def test_pagination(admin: httpx.Client) -> None:
    """limit, marker and _links walk every item once, forwards and back."""
    tag = uuid.uuid4().hex[:8]
    ids = sorted(make_net(admin, None, name=tag)[0]["id"] for _ in range(7))
    seen: list[str] = []
    url: str | None = f"/v2.0/networks?name={tag}&limit=3"
    pages = 0
    while url:
        body = ok(admin.get(url))
        seen += [n["id"] for n in body["networks"]]
        links = {link["rel"]: link["href"] for link in body.get("networks_links", [])}
        url = links.get("next")
        pages += 1
    assert seen == ids and pages == 3
    body = ok(admin.get("/v2.0/networks", params={"name": tag, "limit": 3, "marker": ids[5],
                                                  "page_reverse": "True"}))
    assert [n["id"] for n in body["networks"]] == ids[2:5]
    missing = str(uuid.uuid4())  # Neutron looks the marker up as the resource itself
    assert error(admin.get("/v2.0/networks", params={"limit": 2, "marker": missing}), 404,
                 "NetworkNotFound") == f"Network {missing} could not be found."
    error(admin.get("/v2.0/networks", params={"limit": "lots"}), 400, "BadRequest")


def test_tags(admin: httpx.Client) -> None:
    """The tags API and the four tag filters (tags in create bodies: test_wire)."""
    net, _ = make_net(admin, None)
    base = f"/v2.0/networks/{net['id']}/tags"
    assert ok(admin.put(base, json={"tags": ["red", "blue"]}))["tags"] == ["blue", "red"]
    assert ok(admin.get(base))["tags"] == ["blue", "red"]
    assert ok(admin.put(base, json={"tags": ["green"]}))["tags"] == ["green"]
    ok(admin.put(f"{base}/yellow"), 201)
    ok(admin.get(f"{base}/yellow"), 204)
    error(admin.get(f"{base}/red"), 404, "TagNotFound")
    ok(admin.delete(f"{base}/yellow"), 204)
    error(admin.delete(f"{base}/yellow"), 404, "TagNotFound")
    shown = ok(admin.get(f"/v2.0/networks/{net['id']}"))["network"]
    assert shown["tags"] == ["green"] and shown["revision_number"] >= 3
    other, _ = make_net(admin, None)
    ok(admin.put(f"/v2.0/networks/{other['id']}/tags", json={"tags": ["green", "blue"]}))
    pair = {net["id"], other["id"]}

    def ids(**params: str) -> set[str]:
        return {n["id"] for n in ok(admin.get("/v2.0/networks", params=params))["networks"]
                } & pair

    assert ids(tags="green") == pair
    assert ids(tags="green,blue") == {other["id"]}
    assert ids(**{"tags-any": "blue,nothing"}) == {other["id"]}
    assert ids(**{"not-tags": "green,blue"}) == {net["id"]}
    assert ids(**{"not-tags-any": "blue"}) == {net["id"]}
    ok(admin.delete(base), 204)
    assert ok(admin.get(base))["tags"] == []


def test_bulk_create_is_all_or_nothing(admin: httpx.Client) -> None:
    """A bulk POST creates every item or none."""
    net, _ = make_net(admin, "10.60.0.0/24")
    made = ok(admin.post("/v2.0/ports", json={"ports": [
        {"network_id": net["id"], "name": f"b{i}"} for i in range(5)]}), 201)["ports"]
    assert len({p["fixed_ips"][0]["ip_address"] for p in made}) == 5
    error(admin.post("/v2.0/ports", json={"ports": [
        {"network_id": net["id"], "name": "fine"},
        {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.70.0.1"}]}]}),
        400, "InvalidIpForNetwork")
    names = {p["name"] for p in ok(admin.get("/v2.0/ports", params={
        "network_id": net["id"]}))["ports"]}
    assert "fine" not in names


def test_bad_input_is_400_never_500(admin: httpx.Client) -> None:
    """Malformed bodies and attributes get NeutronErrors with 400."""
    for body in (b"{", b"[]", b'"x"', b'{"network": 3}', b'{"nope": {}}'):
        resp = admin.post("/v2.0/networks", content=body,
                          headers={"content-type": "application/json"})
        assert resp.status_code == 400, (body, resp.text)
        assert "NeutronError" in resp.json()
    error(admin.post("/v2.0/networks", json={"network": {"status": "DOWN"}}), 400,
          "HTTPBadRequest")
    error(admin.post("/v2.0/networks", json={"network": {"flavour": "x"}}), 400,
          "HTTPBadRequest")
    error(admin.post("/v2.0/networks", json={"network": {"name": 5}}), 400, "InvalidInput")
    error(admin.post("/v2.0/networks", json={"network": {"name": "x" * 256}}), 400,
          "InvalidInput")
    error(admin.post("/v2.0/subnets", json={"subnet": {"cidr": "10.0.0.0/24"}}), 400,
          "HTTPBadRequest")
    error(admin.post("/v2.0/ports", json={"port": {"network_id": "not-a-uuid"}}), 400,
          "InvalidInput")
    error(admin.post("/v2.0/ports", json={"port": {"network_id": str(uuid.uuid4())}}), 404,
          "NetworkNotFound")
    error(admin.get("/v2.0/qos/policies"), 404, "HTTPNotFound")
    error(admin.patch("/v2.0/networks"), 405, "HTTPMethodNotAllowed")


@pytest.mark.parametrize(("key", "direction"), [
    ("gateway_ip", "asc"), ("gateway_ip", "desc"), ("enable_dhcp", "asc"),
    ("enable_dhcp", "desc")])
def test_pagination_on_nullable_and_boolean_keys(admin: httpx.Client, key: str,
                                                 direction: str) -> None:
    """Walking pages sorted on a boolean or nullable key visits every item once, in order."""
    net, _ = make_net(admin, None)
    for i, gateway in enumerate(["10.90.0.1", None, "10.90.2.1", None, "10.90.4.1"]):
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": f"10.90.{i}.0/24",
            "gateway_ip": gateway, "enable_dhcp": i % 2 == 0}}), 201)
    base = {"network_id": net["id"], "sort_key": key, "sort_dir": direction}
    whole = ok(admin.get("/v2.0/subnets", params=base))["subnets"]
    walked: list[dict] = []
    params: dict[str, Any] = {**base, "limit": 2}
    while True:
        page = ok(admin.get("/v2.0/subnets", params=params))["subnets"]
        if not page:
            break
        walked += page
        params["marker"] = page[-1]["id"]
    assert [s["id"] for s in walked] == [s["id"] for s in whole]
    assert len({s["id"] for s in walked}) == 5
    values = [s[key] for s in walked]
    if key == "gateway_ip":  # NULLs last ascending, first descending
        nulls = [v is None for v in values]
        assert nulls == (sorted(nulls) if direction == "asc" else sorted(nulls, reverse=True))


def test_out_of_range_integers_are_400(admin: httpx.Client) -> None:
    """Integers beyond 64 bits in filters are refused; a huge limit means all."""
    error(admin.get("/v2.0/networks", params={"mtu": str(2**63)}), 400, "InvalidInput")
    error(admin.get("/v2.0/ports", params={"revision_number": str(-(2**63) - 1)}), 400,
          "InvalidInput")
    assert "networks" in ok(admin.get("/v2.0/networks", params={"limit": str(2**63 - 1)}))


def test_overlap_within_a_project_without_overlapping_ips(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """allow_overlapping_ips = False: a project's subnets never overlap; projects may."""
    from tests.conftest import _server

    servers = _server(tmp_path_factory.mktemp("no-overlap"), "sqlite", "noauth",
                      options={"DEFAULT": {"allow_overlapping_ips": False}})
    server = next(servers)
    try:
        with server.http(project="pa") as a, server.http(project="pb") as b:
            make_net(a, "10.1.0.0/16")
            net2, _ = make_net(a, None)
            error(a.post("/v2.0/subnets", json={"subnet": {
                "network_id": net2["id"], "cidr": "10.1.2.0/24", "ip_version": 4}}), 400,
                "InvalidInput")
            make_net(b, "10.1.0.0/16")  # another project's identical range is fine
    finally:
        servers.close()
