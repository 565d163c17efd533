"""Property-based fuzzing of the HTTP API: no request, however malformed, gets a 5xx.

Test 1 drives every operation of the server's own OpenAPI document through schemathesis;
test 2 throws hand-written random and near-valid bodies and query strings at every
collection (security groups, their rules and address groups too) and also checks that
every error comes back as a well-formed `NeutronError`.
Both run against a real server process, so a 500's traceback is in the server log, and each
failure message carries the request and the tail of that log.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from neutrino.schema.resources import IPV6_MODES, NETWORK_TYPES, RESOURCES, VNIC_TYPES, Resource
from tests.support import AGENT_USER, Server

LOG_TAIL = 8000  # enough for one SQLAlchemy traceback, which is long
EXAMPLES_PER_OPERATION = 25  # x 57 operations: about 25 s for test 1
REQUEST_TIMEOUT = 10.0  # a request that hangs this long is a failure, not something to wait out
TAG = "fuzz-seed"
PROJECTS = (None, "p1", "p2")  # None: no X-Project-Id header, i.e. noauth's admin
JsonValue = Any

# Health checks both tests suppress. (Both also run without an example database: it would
# write .hypothesis/ into the checkout, and a fresh server has fresh ids anyway.) Big random
# JSON documents are meant to be generated, and they are slow to generate and large.
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
               HealthCheck.large_base_example]


# -- reporting -------------------------------------------------------------------------------


def _log_size(server: Server) -> int:
    """Where the server log ends now, so that a failure can show what one request logged."""
    return server.log.stat().st_size if server.log.exists() else 0


def _log_tail(server: Server, since: int) -> str:
    """The tail of the server log: what it logged since `since`, else its last lines."""
    written = server.log.read_bytes()[since:].decode("utf-8", "replace") \
        if server.log.exists() else ""
    return (written or server.log_text())[-LOG_TAIL:]


def _report(server: Server, since: int, problem: str, request: str, response: str) -> str:
    """A failure message with the request, the response and the server log's tail."""
    return (f"{problem}\n--- request ---\n{request}\n--- response ---\n{response}\n"
            f"--- server log (tail) ---\n{_log_tail(server, since)}")


def _describe_httpx(response: httpx.Response) -> tuple[str, str]:
    """The request and response of an httpx exchange, as text for a failure message."""
    req = response.request
    project = req.headers.get("x-project-id")
    body = req.content[:2000]
    request = (f"{req.method} {req.url}\nX-Project-Id: {project}\n"
               f"body: {body.decode('utf-8', 'backslashreplace')}")
    answer = (f"{response.status_code} content-type={response.headers.get('content-type')}\n"
              f"{response.text[:2000]}")
    return request, answer


# -- seed resources --------------------------------------------------------------------------


@dataclass
class Seeds:
    """Existing resources, so that ids in requests sometimes name something real."""

    ids: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in RESOURCES})
    owned: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # by project
    macs: list[str] = field(default_factory=list)
    externals: list[str] = field(default_factory=list)  # external networks (the admin's)

    def all_ids(self) -> list[str]:
        """Every seeded id, of any collection."""
        return [i for ids in self.ids.values() for i in ids]

    def mine(self, project: str | None, collection: str) -> list[str]:
        """The ids of a collection a project owns (the admin: all of them)."""
        return self.ids[collection] if project is None else self.owned[project][collection]


def _create(server: Server, client: httpx.Client, collection: str, item: dict[str, Any],
            project: str | None) -> dict[str, Any]:
    name = RESOURCES[collection].name
    headers = {"X-Project-Id": project} if project else {}
    since = _log_size(server)
    # Only ports take tags in their create body (as in Neutron); the others get them after.
    tags = item.pop("tags") if collection != "ports" and "tags" in item else None
    response = client.post(f"/v2.0/{RESOURCES[collection].path}", json={name: item},
                           headers=headers)
    if response.status_code != 201:
        raise AssertionError(_report(server, since, f"seeding a {name} failed",
                                     *_describe_httpx(response)))
    created: dict[str, Any] = response.json()[name]
    if tags is not None:
        response = client.put(f"/v2.0/{RESOURCES[collection].path}/{created['id']}/tags",
                              json={"tags": tags}, headers=headers)
        if response.status_code != 200:
            raise AssertionError(_report(server, since, f"tagging a {name} failed",
                                         *_describe_httpx(response)))
        created["tags"] = response.json()["tags"]
    return created


def _seed(server: Server) -> Seeds:
    """A network with IPv4 and IPv6 subnets and a port, for the admin and projects p1 and p2."""
    seeds = Seeds()
    with server.http() as client:
        for project in PROJECTS:
            net = _create(server, client, "networks", {"name": "fuzz", "tags": [TAG]}, project)
            owned = seeds.owned.setdefault(project or "", {c: [] for c in RESOURCES})
            seeds.ids["networks"].append(net["id"])
            owned["networks"].append(net["id"])
            for version, cidr in ((4, "10.0.0.0/24"), (6, "fd00::/64")):
                subnet = _create(server, client, "subnets", {
                    "network_id": net["id"], "ip_version": version, "cidr": cidr,
                    "tags": [TAG]}, project)
                seeds.ids["subnets"].append(subnet["id"])
                owned["subnets"].append(subnet["id"])
            port = _create(server, client, "ports", {"network_id": net["id"], "tags": [TAG]},
                           project)
            seeds.ids["ports"].append(port["id"])
            owned["ports"].append(port["id"])
            seeds.macs.append(port["mac_address"])
            router = _create(server, client, "routers", {"name": "fuzz", "tags": [TAG]},
                             project)
            seeds.ids["routers"].append(router["id"])
            owned["routers"].append(router["id"])
            group = _create(server, client, "security_groups", {"name": "fuzz", "tags": [TAG]},
                            project)
            rule = _create(server, client, "security_group_rules", {
                "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22}, project)
            ag = _create(server, client, "address_groups", {
                "name": "fuzz", "addresses": ["192.0.2.0/24"]}, project)
            scope = _create(server, client, "address_scopes", {
                "name": "fuzz", "ip_version": 4}, project)
            pool = _create(server, client, "subnetpools", {
                "name": "fuzz", "prefixes": [f"10.{200 + len(seeds.ids['subnetpools'])}.0.0/16"],
                "default_prefixlen": 24, "address_scope_id": scope["id"]}, project)
            grant = _create(server, client, "rbac_policies", {
                "object_type": "network", "object_id": net["id"], "target_tenant": "p3",
                "action": "access_as_shared"}, project)
            for collection, made in (("security_groups", group),
                                     ("security_group_rules", rule), ("address_groups", ag),
                                     ("address_scopes", scope), ("subnetpools", pool),
                                     ("rbac_policies", grant)):
                seeds.ids[collection].append(made["id"])
                owned[collection].append(made["id"])
        ext = _create(server, client, "networks", {"name": "fuzz-ext", "router:external": True,
                                                   "tags": [TAG]}, None)
        _create(server, client, "subnets", {"network_id": ext["id"], "ip_version": 4,
                                            "cidr": "198.18.0.0/24", "enable_dhcp": False},
                None)
        seeds.externals.append(ext["id"])
        for project in PROJECTS:
            fip = _create(server, client, "floatingips", {"floating_network_id": ext["id"]},
                          project)
            seeds.ids["floatingips"].append(fip["id"])
            seeds.owned[project or ""]["floatingips"].append(fip["id"])
    return seeds


# -- test 1: schemathesis over the server's OpenAPI document ---------------------------------


PATHS = {r.path: c for c, r in RESOURCES.items()}


def _collection_of(path: str) -> str | None:
    parts = path.split("/")
    return PATHS.get(parts[2]) if len(parts) > 2 else None


def _operation_strategy(operation: schemathesis.APIOperation[Any, Any, Any, Any],
                        seeds: Seeds) -> st.SearchStrategy[schemathesis.Case[Any]]:
    """Generated cases, plus cases whose path names a seeded resource (and its tag)."""
    strategies = [operation.as_strategy()]
    # Negative generation needs something to make invalid besides a free-form path string;
    # operations without a query or a body are unsatisfiable in that mode.
    has_input = bool(operation.query) or bool(operation.body)
    if has_input:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    collection = _collection_of(operation.path)
    if collection is not None and "{id}" in operation.path:
        others = [i for c, ids in seeds.ids.items() if c != collection for i in ids[:1]]
        for id_ in [*seeds.ids[collection], *others]:
            params = {"id": id_, "tag": TAG} if "{tag}" in operation.path else {"id": id_}
            strategies.append(operation.as_strategy(path_parameters=params))
            if has_input:
                strategies.append(operation.as_strategy(GenerationMode.NEGATIVE,
                                                        path_parameters=params))
    return st.one_of(strategies)


def _run_operation(server: Server, session: requests.Session,
                   operation: schemathesis.APIOperation[Any, Any, Any, Any], seeds: Seeds) -> None:
    """A few cases of one operation, each sent as the admin or as project p1."""

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=_SUPPRESSED)
    @given(case=_operation_strategy(operation, seeds), project=st.sampled_from([None, "p1"]))
    def run(case: schemathesis.Case[Any], project: str | None) -> None:
        headers = {"X-Project-Id": project} if project else {}
        request = case.as_curl_command(headers=headers)
        since = _log_size(server)
        try:
            response = case.call(session=session, headers=headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as err:
            raise AssertionError(_report(server, since, f"request failed: {err!r}", request,
                                         "(none)")) from None
        try:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
        except (AssertionError, FailureGroup) as err:
            content_type = ", ".join(response.headers.get("content-type", []))
            answer = (f"{response.status_code} content-type={content_type}\n"
                      f"{response.text[:2000]}\n{err}")
            raise AssertionError(_report(server, since,
                                         f"{operation.label} answered a server error",
                                         request, answer)) from None

    run()


def test_openapi_operations_never_answer_5xx(sqlite_server: Server) -> None:
    """Schemathesis cases of every documented operation, as admin and p1, get no 5xx."""
    schema = schemathesis.openapi.from_url(sqlite_server.url + "/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        # An operation schemathesis cannot load is a broken OpenAPI document: fail on it.
        assert isinstance(result, Ok), f"unusable operation in /openapi.json: {result}"
        operations.append(result.ok())
    assert len(operations) > 30, "the OpenAPI document lost operations"
    seeds = _seed(sqlite_server)
    with requests.Session() as session:
        for operation in operations:
            _run_operation(sqlite_server, session, operation, seeds)
            # DELETE cases may have removed seeded resources; later operations need them.
            if operation.method.upper() == "DELETE":
                seeds = _seed(sqlite_server)


# -- test 2: hand-written random bodies and query strings ------------------------------------

# Text that httpx can put in a URL (no lone surrogates); JSON bodies may carry anything.
URL_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
BIG_INTS = st.integers(min_value=2**31 - 2, max_value=2**70) | st.integers(max_value=-(2**31))
# The edges of 32- and 64-bit columns, where databases stop agreeing with Python's ints.
INT_EDGES = st.sampled_from([-1, 0, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, -(2**63) - 1,
                             2**64, 10**30])
INTS = st.integers(-5, 70000) | INT_EDGES | BIG_INTS
JSON_SCALARS = st.none() | st.booleans() | INTS | st.floats() | st.text(max_size=20)
JSON_VALUES: st.SearchStrategy[JsonValue] = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
BOOLS = st.booleans() | st.sampled_from(["true", "False", "1", "0", 0, 1])
# Addresses mostly inside the seeded subnets (10.0.0.0/24, fd00::/64), where IPAM is.
V4_IN_SEED = st.integers(0, 256).map(lambda i: f"10.0.0.{i}")
V6_IN_SEED = st.integers(0, 2**16).map(lambda i: f"fd00::{i:x}")
V4_CIDRS = st.sampled_from(
    ["10.0.0.0/24", "10.0.0.0/28", "10.0.0.0/29", "10.0.0.0/30", "10.0.0.0/31", "10.0.0.0/32",
     "10.0.0.0/16", "10.0.0.128/25", "10.0.1.0/24", "10.0.0.0/8"]) | st.tuples(
    st.integers(0, 255), st.integers(1, 32)).map(
    lambda t: str(ipaddress.ip_network(f"10.{t[0]}.0.0/{t[1]}", strict=False)))
V6_CIDRS = st.sampled_from(
    ["fd00::/64", "fd00::/120", "fd00::/126", "fd00::/127", "fd00::/128", "fd00::/48",
     "fd00:0:0:1::/64"]) | st.integers(1, 128).map(
    lambda p: str(ipaddress.ip_network(f"fd00::/{p}", strict=False)))
IPS = V4_IN_SEED | V6_IN_SEED | st.ip_addresses().map(str) | st.sampled_from(
    ["10.0.0", "10.1", "010.0.0.1", "::", "0.0.0.0", "255.255.255.255", "fd00::/64", ""])
CIDRS = V4_CIDRS | V6_CIDRS | st.tuples(st.ip_addresses(), st.integers(-1, 130)).map(
    lambda t: f"{t[0]}/{t[1]}") | st.sampled_from(
    ["0.0.0.0/0", "::/0", "10.0.0.1/24", "10.0.0.0/024", "10.0.0.0/ 24", "10.0.0.0"])
UNICAST_MACS = st.binary(min_size=6, max_size=6).map(
    lambda b: ":".join(f"{x:02x}" for x in (b[0] & 0xFE, *b[1:])))
MACS = UNICAST_MACS | st.sampled_from(
    ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "fa-16-3e-00-00-01",
     "fa:16:3e:00:00", "FA:16:3E:AA:BB:CC"])
SHORT_TEXT = st.text(max_size=20)
EXT_IPS = st.integers(1, 254).map(lambda i: f"198.18.0.{i}")
STRING_LISTS = st.lists(st.text(max_size=10), max_size=3, unique=True)


def _plausible_values(seeds: Seeds, project: str | None,
                      ) -> dict[str, st.SearchStrategy[JsonValue]]:
    """For each attribute name, values it mostly accepts (some break cross-field rules)."""
    # The caller's own resources half the time: another project's are mostly 404s.
    networks = st.sampled_from(seeds.mine(project, "networks")) \
        | st.sampled_from(seeds.ids["networks"])
    subnets = st.sampled_from(seeds.mine(project, "subnets")) \
        | st.sampled_from(seeds.ids["subnets"])
    ports = st.sampled_from(seeds.mine(project, "ports")) | st.sampled_from(seeds.ids["ports"])
    groups = st.sampled_from(seeds.mine(project, "security_groups")) \
        | st.sampled_from(seeds.ids["security_groups"])
    address_groups = st.sampled_from(seeds.mine(project, "address_groups")) \
        | st.sampled_from(seeds.ids["address_groups"])
    externals = st.sampled_from(seeds.externals)
    pools = st.sampled_from(seeds.mine(project, "subnetpools")) \
        | st.sampled_from(seeds.ids["subnetpools"])
    scopes = st.sampled_from(seeds.mine(project, "address_scopes")) \
        | st.sampled_from(seeds.ids["address_scopes"])
    return {
        "id": st.uuids().map(str),
        "name": SHORT_TEXT, "description": SHORT_TEXT, "device_id": SHORT_TEXT,
        "binding:host_id": SHORT_TEXT | st.just("compute-1"),
        "project_id": st.sampled_from(["p1", "p2", "", "admin"]),
        "tenant_id": st.sampled_from(["p1", "p2", "", "admin"]),
        "device_owner": SHORT_TEXT | st.sampled_from(
            ["network:dhcp", "network:router_interface", "network:router_gateway",
             "compute:nova", "network:floatingip"]),
        "tags": STRING_LISTS, "availability_zone_hints": st.lists(st.just("nova"), max_size=1),
        "service_types": st.lists(st.sampled_from(["compute:nova", "network:dhcp"]),
                                  max_size=2, unique=True),
        "admin_state_up": BOOLS, "shared": BOOLS, "router:external": BOOLS,
        "port_security_enabled": BOOLS, "enable_dhcp": BOOLS,
        "mtu": st.integers(68, 9100) | st.integers(68, 9100).map(str),
        "revision_number": INTS,
        "provider:network_type": st.sampled_from(NETWORK_TYPES),
        "provider:physical_network": st.sampled_from([None, "physnet1", "public"]),
        "provider:segmentation_id": st.none() | st.integers(0, 5000) | INTS,
        "network_id": networks,
        "ip_version": st.sampled_from([4, 6, "4", "6"]),
        "cidr": V4_CIDRS | V6_CIDRS, "prefixlen": st.integers(0, 128),
        "gateway_ip": V4_IN_SEED | V6_IN_SEED | st.none(),
        "allocation_pools": st.lists(st.fixed_dictionaries(
            {"start": V4_IN_SEED, "end": V4_IN_SEED}), max_size=3) | st.lists(
            st.fixed_dictionaries({"start": V6_IN_SEED, "end": V6_IN_SEED}), max_size=2),
        "dns_nameservers": st.lists(V4_IN_SEED | V6_IN_SEED, max_size=6, unique=True),
        "host_routes": st.lists(st.fixed_dictionaries(
            {"destination": V4_CIDRS | V6_CIDRS, "nexthop": V4_IN_SEED | V6_IN_SEED}),
            max_size=3),
        "ipv6_ra_mode": st.sampled_from([*IPV6_MODES, None]),
        "ipv6_address_mode": st.sampled_from([*IPV6_MODES, None]),
        "subnetpool_id": st.none() | pools, "segment_id": st.none(),
        "use_default_subnetpool": BOOLS,
        # subnet pools and address scopes
        "prefixes": st.lists(V4_CIDRS | V6_CIDRS, max_size=3),
        "default_prefixlen": st.integers(0, 130), "min_prefixlen": st.integers(0, 130),
        "max_prefixlen": st.integers(0, 130), "default_quota": st.none() | INTS,
        "is_default": BOOLS, "address_scope_id": st.none() | scopes,
        "extra_dhcp_opts": st.lists(st.fixed_dictionaries(
            {"opt_name": st.sampled_from(["tftp-server", "bootfile-name", "router", "66",
                                          "tag:ipxe,bootfile-name", "dns-server", "bogus"]),
             "opt_value": st.none() | st.sampled_from(["10.0.0.7", "", "a,b", "x\ny"])},
            optional={"ip_version": st.sampled_from([4, 6, "4", 5])}), max_size=3),
        # RBAC policies
        "object_type": st.sampled_from(["network", "Network", "qos_policy"]),
        "object_id": networks, "target_tenant": st.sampled_from(["p1", "p2", "p3", "*"]),
        "action": st.sampled_from(["access_as_shared", "access_as_external"]),
        "mac_address": UNICAST_MACS | st.sampled_from(seeds.macs),
        "fixed_ips": st.lists(st.fixed_dictionaries({}, optional={
            "subnet_id": subnets, "ip_address": V4_IN_SEED | V6_IN_SEED}), max_size=3),
        "binding:vnic_type": st.sampled_from(VNIC_TYPES),
        "binding:profile": st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
        "status": st.sampled_from(["ACTIVE", "DOWN"]),
        "binding:vif_type": st.sampled_from(["unbound", "ovs", "binding_failed"]),
        # routers
        "external_gateway_info": st.none() | st.just({}) | st.fixed_dictionaries(
            {"network_id": externals | networks}, optional={
                "enable_snat": BOOLS, "external_fixed_ips": st.lists(st.fixed_dictionaries(
                    {}, optional={"subnet_id": subnets, "ip_address": V4_IN_SEED | EXT_IPS}),
                    max_size=2)}),
        "routes": st.lists(st.fixed_dictionaries(
            {"destination": V4_CIDRS, "nexthop": V4_IN_SEED}), max_size=3),
        "distributed": st.none() | BOOLS, "ha": st.none() | BOOLS,
        # floating IPs
        "floating_network_id": externals | networks,
        "floating_ip_address": st.none() | EXT_IPS,
        "port_id": st.none() | ports,
        "fixed_ip_address": st.none() | V4_IN_SEED,
        "subnet_id": st.none() | subnets,
        # security groups, rules, address groups, port security
        "stateful": BOOLS,
        "security_group_id": groups,
        "direction": st.sampled_from(["ingress", "egress"]),
        "ethertype": st.sampled_from(["IPv4", "IPv6", "ipv6", "IPV4"]),
        "protocol": st.none() | st.sampled_from(
            ["tcp", "udp", "icmp", "ipv6-icmp", "icmpv6", "gre", "any", "TCP", "6", "58", "1",
             "132", "0", "255"]) | st.integers(0, 255),
        "port_range_min": st.none() | st.integers(0, 65535) | st.sampled_from([1, 22, 255]),
        "port_range_max": st.none() | st.integers(0, 65535) | st.sampled_from([0, 65535]),
        "remote_ip_prefix": st.none() | V4_CIDRS | V6_CIDRS | V4_IN_SEED | V6_IN_SEED
        | st.sampled_from(["0.0.0.0/0", "::/0", "10.0.0.7/24"]),
        "remote_group_id": st.none() | groups,
        "remote_address_group_id": st.none() | address_groups,
        "addresses": st.lists(V4_CIDRS | V6_CIDRS, max_size=4),
        "security_groups": st.none() | st.lists(groups, max_size=3),
        "allowed_address_pairs": st.none() | st.lists(st.fixed_dictionaries(
            {"ip_address": V4_IN_SEED | V6_IN_SEED | V4_CIDRS},
            optional={"mac_address": UNICAST_MACS}), max_size=4),
        "normalized_cidr": V4_CIDRS, "belongs_to_default_sg": BOOLS,
    }


def _wild_values(seeds: Seeds, project: str | None,
                 ) -> dict[str, st.SearchStrategy[JsonValue]]:
    """For each attribute name, values of any type: plausible, near misses and junk."""
    plausible = _plausible_values(seeds, project)
    generic = JSON_VALUES | st.sampled_from(seeds.all_ids()) | IPS | CIDRS
    near_misses: dict[str, st.SearchStrategy[JsonValue]] = {
        "name": st.text(min_size=250, max_size=260),
        "tags": st.lists(st.just("dup"), min_size=2, max_size=2),
        "admin_state_up": st.sampled_from([2, "yes", ""]),
        "mtu": INTS | INTS.map(str),
        "ip_version": st.sampled_from([5, 4.0, "v4"]),
        "cidr": CIDRS, "gateway_ip": IPS, "mac_address": MACS,
        "network_id": st.uuids().map(str) | st.sampled_from(seeds.all_ids()),
        "fixed_ips": st.lists(st.fixed_dictionaries({}, optional={
            "subnet_id": st.uuids().map(str) | st.sampled_from(seeds.all_ids()),
            "ip_address": IPS}), max_size=3),
        "allocation_pools": st.lists(st.fixed_dictionaries({"start": IPS, "end": IPS}),
                                     max_size=3),
        "host_routes": st.lists(st.fixed_dictionaries({"destination": CIDRS, "nexthop": IPS}),
                                max_size=3),
        "ipv6_ra_mode": st.sampled_from(["slaac ", "SLAAC"]),
        "binding:vnic_type": st.sampled_from(["Normal", ""]),
        "provider:network_type": st.sampled_from(["vlan", "gre", ""]),
        "protocol": st.sampled_from(["bogus", "256", "-1", "", "Any", True, 1.5]),
        "port_range_min": st.sampled_from([-1, 65536, "x", 2**40, True]),
        "remote_ip_prefix": CIDRS | IPS,
        "allowed_address_pairs": st.lists(st.fixed_dictionaries({}, optional={
            "ip_address": IPS | CIDRS, "mac_address": MACS, "x": JSON_VALUES}), max_size=12),
        "security_groups": st.lists(st.uuids().map(str) | st.sampled_from(seeds.all_ids()),
                                    max_size=3),
        "addresses": st.lists(CIDRS | IPS, max_size=4),
    }
    return {name: plausible[name] | near_misses[name] | generic if name in near_misses
            else plausible[name] | generic for name in plausible}


def _addresses_in(net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                  ) -> st.SearchStrategy[str]:
    """Addresses inside a subnet, and the ones just outside it."""
    size, first, top = net.num_addresses, int(net.network_address), 2**net.max_prefixlen - 1
    offsets = st.integers(0, min(size - 1, 300)) | st.sampled_from([-1, size - 1, size])
    # Clamped: just outside 0.0.0.0/1 is not an address at all.
    return offsets.map(lambda i: str(type(net.network_address)(min(max(first + i, 0), top))))


def _subnet_item(version: int, cidr: str, values: dict[str, st.SearchStrategy[JsonValue]],
                 optional: dict[str, st.SearchStrategy[JsonValue]],
                 ) -> st.SearchStrategy[dict[str, JsonValue]]:
    """A subnet body whose gateway, pools, routes and nameservers are addresses of `cidr`."""
    net = ipaddress.ip_network(cidr)
    ips = _addresses_in(net)
    by_cidr = {
        **optional,
        "gateway_ip": ips | st.none(),
        "allocation_pools": st.lists(st.fixed_dictionaries({"start": ips, "end": ips}),
                                     max_size=3),
        "dns_nameservers": st.lists(ips, max_size=4, unique=True),
        "host_routes": st.lists(st.fixed_dictionaries(
            {"destination": V4_CIDRS if version == 4 else V6_CIDRS, "nexthop": ips}),
            max_size=3),
    }
    if version == 4:  # IPv6 modes on an IPv4 subnet are a plain 400; the wild bodies try it
        by_cidr.pop("ipv6_ra_mode")
        by_cidr.pop("ipv6_address_mode")
    core = {"network_id": values["network_id"], "ip_version": st.just(version),
            "cidr": st.just(cidr)}
    return st.fixed_dictionaries(
        core, optional={k: val for k, val in by_cidr.items() if k not in core})


def _plausible_item(resource: Resource, seeds: Seeds, project: str | None, create: bool,
                    ) -> st.SearchStrategy[dict[str, JsonValue]]:
    """A body the parser mostly accepts, so that the service's own rules get exercised."""
    values = _plausible_values(seeds, project)
    allowed = [a.name for a in resource.attrs if (a.post if create else a.put) and a.validator]
    # A mismatched project_id/tenant_id pair is a plain 400; the wild bodies try it.
    optional = {name: values[name] for name in allowed if name != "tenant_id"}
    if not create:
        return st.fixed_dictionaries({}, optional=optional)
    if resource.name == "network":
        # Provider attributes only make sense together; alone they are mostly 400s.
        provider_keys = [k for k in optional if k.startswith("provider:")]
        plain = {k: val for k, val in optional.items() if k not in provider_keys}
        providers: st.SearchStrategy[dict[str, JsonValue]] = st.one_of(
            st.just({}),
            st.fixed_dictionaries({"provider:network_type": st.just("vxlan")}, optional={
                "provider:segmentation_id": st.integers(1, 5000)}),
            st.fixed_dictionaries({"provider:network_type": st.just("flat"),
                                   "provider:physical_network": st.sampled_from(
                                       ["physnet1", "public", "unknown"])}),
            st.just({"provider:network_type": "local"}),
            st.fixed_dictionaries({}, optional={k: optional[k] for k in provider_keys}))
        return st.tuples(st.fixed_dictionaries({}, optional=plain), providers).map(
            lambda t: {**t[0], **t[1]})
    if resource.name == "port":
        subnets = st.sampled_from(seeds.mine(project, "subnets")) \
            | st.sampled_from(seeds.ids["subnets"])
        one_ip = st.one_of(
            st.fixed_dictionaries({"subnet_id": subnets}),
            st.fixed_dictionaries({"ip_address": V4_IN_SEED | V6_IN_SEED}),
            st.fixed_dictionaries({"subnet_id": subnets, "ip_address": V4_IN_SEED | V6_IN_SEED}))
        rest = {k: val for k, val in optional.items() if k != "network_id"}
        rest["fixed_ips"] = st.lists(one_ip, max_size=3)
        return st.fixed_dictionaries({"network_id": values["network_id"]}, optional=rest)
    if resource.name in ("router", "security_group", "address_group"):
        return st.fixed_dictionaries({}, optional=optional)
    if resource.name in ("subnetpool", "address_scope", "rbac_policy"):
        required = {"subnetpool": ("name", "prefixes"), "address_scope": ("ip_version",),
                    "rbac_policy": ("object_type", "object_id", "target_tenant", "action"),
                    }[resource.name]
        return st.fixed_dictionaries({k: values[k] for k in required}, optional={
            k: val for k, val in optional.items() if k not in required})
    if resource.name == "security_group_rule":
        rest = {k: val for k, val in optional.items()
                if k not in ("security_group_id", "direction")}
        return st.fixed_dictionaries({"security_group_id": values["security_group_id"],
                                      "direction": values["direction"]}, optional=rest)
    if resource.name == "floatingip":
        rest = {k: val for k, val in optional.items() if k != "floating_network_id"}
        return st.fixed_dictionaries({"floating_network_id": values["floating_network_id"]},
                                     optional=rest)
    # Mostly fresh CIDRs (a seeded network already has 10.0.0.0/24 and fd00::/64, and a
    # network's subnets may not overlap), sometimes the seeded ones to hit the overlap check.
    v4 = st.tuples(st.integers(1, 255), st.integers(0, 255), st.integers(20, 30)).map(
        lambda t: str(ipaddress.ip_network(f"10.{t[0]}.{t[1]}.0/{t[2]}", strict=False)))
    v6 = st.tuples(st.integers(1, 2**16 - 1), st.integers(56, 128)).map(
        lambda t: str(ipaddress.ip_network(f"fd00:{t[0]:x}::/{t[1]}", strict=False)))
    return st.one_of(
        (v4 | V4_CIDRS).flatmap(lambda cidr: _subnet_item(4, cidr, values, optional)),
        (v6 | V6_CIDRS).flatmap(lambda cidr: _subnet_item(6, cidr, values, optional)))


def _wild_item(resource: Resource, seeds: Seeds, project: str | None,
               ) -> st.SearchStrategy[dict[str, JsonValue]]:
    """The resource's keys (any, not just those the verb allows) with values of any type."""
    values = _wild_values(seeds, project)
    return st.fixed_dictionaries({}, optional={
        a.name: values.get(a.name, JSON_VALUES) for a in resource.attrs})


def _bodies(resource: Resource, seeds: Seeds, project: str | None,
            create: bool) -> st.SearchStrategy[bytes]:
    """Request bodies: random JSON, near-valid items (alone or in bulk), and non-JSON bytes."""
    plausible = _plausible_item(resource, seeds, project, create)
    # A plausible item with one wild key: one bad value among good ones.
    wild = _wild_values(seeds, project)
    one_wild = st.sampled_from([a.name for a in resource.attrs]).flatmap(
        lambda name: wild.get(name, JSON_VALUES).map(lambda value: {name: value}))
    mixed = st.tuples(plausible, one_wild).map(lambda t: {**t[0], **t[1]})
    items = plausible | mixed | _wild_item(resource, seeds, project)
    good = st.fixed_dictionaries({resource.name: plausible})
    # one_of picks its branches about equally often: `good` is listed thrice so that most
    # bodies get past the parser into the service, where the interesting rules are.
    documents: st.SearchStrategy[JsonValue] = st.one_of(
        good, good, good,
        JSON_VALUES,
        st.fixed_dictionaries({resource.name: JSON_VALUES}),
        st.fixed_dictionaries({resource.name: items}),
        st.fixed_dictionaries({resource.name: plausible}, optional={"extra": JSON_VALUES}),
    )
    if create:
        documents = documents | st.fixed_dictionaries(
            {resource.collection: st.lists(plausible | mixed, max_size=3) | JSON_VALUES})
    # json.dumps writes NaN/Infinity tokens and escaped lone surrogates: both must be 400s.
    encoded = documents.map(lambda doc: json.dumps(doc).encode())
    return encoded | st.binary(max_size=40) | _deep_bodies(resource)


def _deep_bodies(resource: Resource) -> st.SearchStrategy[bytes]:
    """An attribute nested up to 1,100 deep, written as text (json.dumps would recurse)."""
    attrs = st.sampled_from([a.name for a in resource.attrs])
    return st.tuples(attrs, st.integers(1, 1100), st.sampled_from(["[]", "{}"])).map(
        lambda t: (f'{{"{resource.name}": {{"{t[0]}": '
                   + (t[2][0] if t[2] == "[]" else '{"k":') * t[1] + "1" + t[2][1] * t[1]
                   + "}}").encode())


def _scalar(value: JsonValue) -> str:
    """A query-string rendering of a body value."""
    return value if isinstance(value, str) else json.dumps(value)


def _query_params(resource: Resource, seeds: Seeds, project: str | None,
                  ) -> st.SearchStrategy[list[tuple[str, str]]]:
    """A list request's query: filters, fields, sorting and paging, plausible or random."""
    attr_names = [a.name for a in resource.attrs]
    filters = [a.name for a in resource.attrs if a.filter and a.column is not None]
    int_attrs = {a.name for a in resource.attrs
                 if a.validator is not None and a.validator.schema.get("type") == "integer"}
    plausible_values = _plausible_values(seeds, project)
    ids = st.sampled_from(seeds.all_ids()) | st.uuids().map(str)
    fields = st.lists(st.sampled_from(attr_names) | URL_TEXT, max_size=4).map(",".join)
    fixed_ips_filter = st.tuples(
        st.sampled_from(["ip_address", "subnet_id", "ip_address_substr", "bogus"]),
        V4_IN_SEED | st.sampled_from(seeds.ids["subnets"]) | IPS | URL_TEXT,
    ).map(lambda t: f"{t[0]}={t[1]}")
    tag_lists = STRING_LISTS.map(",".join) | st.just(TAG)

    def plausible_value(key: str) -> st.SearchStrategy[str]:
        if key == "fixed_ips":
            return fixed_ips_filter
        if key == "security_groups":
            return st.sampled_from(seeds.ids["security_groups"]) | ids | URL_TEXT
        if key.startswith(("tags", "not-tags")):
            return tag_lists
        if key in int_attrs:  # integer columns: mostly integers, many at the column's edges
            return INT_EDGES.map(str) | INTS.map(str) | plausible_values[key].map(_scalar)
        known = plausible_values[key].map(_scalar) if key in plausible_values else URL_TEXT
        return known | ids | INTS.map(str)

    def wild_value(key: str) -> st.SearchStrategy[str]:
        special: dict[str, st.SearchStrategy[str]] = {
            "fields": fields,
            "sort_key": st.sampled_from(attr_names) | URL_TEXT,
            "sort_dir": st.sampled_from(["asc", "desc", "ASC", ""]) | URL_TEXT,
            "limit": INTS.map(str) | URL_TEXT,
            "marker": ids | URL_TEXT,
            "page_reverse": (BOOLS | st.sampled_from(["yes", 2])).map(str),
        }
        if key in special:
            return special[key]
        known = plausible_value(key) if key in plausible_values or key == "fixed_ips" \
            else st.nothing()
        return known | INTS.map(str) | URL_TEXT | ids

    extra = ["tags", "tags-any", "not-tags", "not-tags-any"]
    if resource.name == "port":
        extra += ["fixed_ips", "security_groups"]
    filter_pair = st.sampled_from([*filters, *extra]).flatmap(
        lambda k: st.tuples(st.just(k), plausible_value(k)))
    sortable = [a.name for a in resource.attrs if a.sort and a.column is not None]
    sorts = st.lists(st.tuples(st.sampled_from(sortable), st.sampled_from(["asc", "desc"])),
                     max_size=2).map(
        lambda pairs: [p for k, d in pairs for p in (("sort_key", k), ("sort_dir", d))])
    paging = st.fixed_dictionaries({}, optional={
        "limit": (st.integers(0, 5) | INT_EDGES).map(str),
        "marker": st.sampled_from(seeds.mine(project, resource.collection)) | ids,
        "page_reverse": BOOLS.map(str), "fields": fields}).map(lambda d: list(d.items()))
    plausible = st.tuples(st.lists(filter_pair, max_size=3), sorts, paging).map(
        lambda t: [*t[0], *t[1], *t[2]])
    keys = st.sampled_from([*attr_names, "fields", "sort_key", "sort_dir", "limit", "marker",
                            "page_reverse", *extra]) | URL_TEXT
    wild_pair = keys.flatmap(lambda k: st.tuples(st.just(k), wild_value(k)))
    # `plausible` twice: a single bad key turns the whole query into a 400 before it reaches
    # the database, so most queries should have none.
    return st.one_of(plausible, plausible, st.tuples(plausible, wild_pair).map(
        lambda t: [*t[0], t[1]]), st.lists(wild_pair, max_size=6))


def _as_query(pairs: list[tuple[str, str]]) -> httpx.QueryParams:
    return httpx.QueryParams([(key, value) for key, value in pairs])


def _check_response(server: Server, since: int, response: httpx.Response) -> None:
    """No 5xx; JSON content; every error a `NeutronError` with str type, message and detail."""
    problems = []
    if response.status_code >= 500:
        problems.append(f"server error {response.status_code}")
    content_type = response.headers.get("content-type", "")
    if response.content and not content_type.startswith("application/json"):
        problems.append(f"content-type {content_type!r} is not application/json")
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("NeutronError") if isinstance(body, dict) else None
        well_formed = (isinstance(body, dict) and set(body) == {"NeutronError"}
                       and isinstance(error, dict)
                       and all(isinstance(error.get(k), str)
                               for k in ("type", "message", "detail")))
        if not well_formed:
            problems.append("error body is not {'NeutronError': {type, message, detail}}")
    if problems:
        raise AssertionError(_report(server, since, "; ".join(problems),
                                     *_describe_httpx(response)))


@pytest.fixture(scope="module")
def fuzz_seeds(sqlite_server: Server) -> Seeds:
    """Resources for test 2 to address; test 1's DELETEs never learn these ids."""
    return _seed(sqlite_server)


@pytest.fixture(scope="module")
def client(sqlite_server: Server) -> Iterator[httpx.Client]:
    """One keep-alive client for test 2's many requests; identity goes per request."""
    with httpx.Client(base_url=sqlite_server.url, timeout=REQUEST_TIMEOUT) as http:
        yield http


@pytest.mark.parametrize("collection", sorted(RESOURCES))
@settings(max_examples=500, deadline=None, database=None, suppress_health_check=[
    *_SUPPRESSED, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_requests_get_no_5xx_and_neutron_errors(
        sqlite_server: Server, client: httpx.Client, fuzz_seeds: Seeds, collection: str,
        data: st.DataObject) -> None:
    """Random POST/PUT bodies and list queries get < 500 and well-formed NeutronErrors."""
    resource = RESOURCES[collection]
    base = f"/v2.0/{resource.path}"
    kind = data.draw(st.sampled_from(["post", "put", "list", "show"]), label="kind")
    project = data.draw(st.sampled_from(PROJECTS), label="project")
    ids = st.sampled_from(fuzz_seeds.mine(project, collection)) \
        | st.sampled_from(fuzz_seeds.all_ids()) | st.uuids().map(str) \
        | URL_TEXT.filter(lambda s: s not in ("", ".", ".."))
    headers = {"Content-Type": "application/json"}
    if project is not None:
        headers["X-Project-Id"] = project
    since = _log_size(sqlite_server)
    if kind == "post":
        body = data.draw(_bodies(resource, fuzz_seeds, project, create=True), label="body")
        response = client.post(base, content=body, headers=headers)
    elif kind == "put":
        id_ = quote(data.draw(ids, label="id"), safe="")
        body = data.draw(_bodies(resource, fuzz_seeds, project, create=False), label="body")
        response = client.put(f"{base}/{id_}", content=body, headers=headers)
    elif kind == "list":
        params = data.draw(_query_params(resource, fuzz_seeds, project), label="query")
        response = client.get(base, params=_as_query(params), headers=headers)
    else:
        id_ = quote(data.draw(ids, label="id"), safe="")
        params = data.draw(st.lists(st.tuples(st.just("fields"), URL_TEXT | st.sampled_from(
            [a.name for a in resource.attrs])), max_size=3), label="query")
        response = client.get(f"{base}/{id_}", params=_as_query(params), headers=headers)
    # With --hypothesis-show-statistics: how deep the requests got (201s, 409s...).
    event(f"{kind} {response.status_code}")
    _check_response(sqlite_server, since, response)



# -- test 3: the agent channel ----------------------------------------------------------------

AGENT_TYPES = st.sampled_from(["DHCP agent", "Linux bridge agent", "L3 agent"]) | JSON_VALUES
HOSTS = st.sampled_from(["fuzz-host", "h" * 255, "h" * 256, ""]) | JSON_VALUES
# Credentials: the agents' own, wrong ones, unknown users, and passwords past bcrypt's 72
# bytes (any of which once answered 500).
CREDENTIALS = st.one_of(
    st.just(AGENT_USER),
    st.tuples(st.sampled_from([AGENT_USER[0], "nobody"]) | st.text(max_size=10),
              st.text(max_size=20) | st.text(min_size=73, max_size=200)
              | st.binary(min_size=73, max_size=120).map(lambda b: b.hex())))


@pytest.fixture(scope="module")
def channel_user(sqlite_server: Server) -> tuple[str, str]:
    """The agents' service user on the fuzzed server."""
    sqlite_server.add_user(*AGENT_USER, None, "service")
    return AGENT_USER


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[
    *_SUPPRESSED, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_agent_channel_gets_no_5xx(sqlite_server: Server, channel_user: tuple[str, str],
                                   data: st.DataObject) -> None:
    """Random reports, status bodies and watch queries, with random credentials, get < 500
    and well-formed NeutronErrors: NaN timeouts, huge revisions, 100,000-character hosts,
    long passwords."""
    kind = data.draw(st.sampled_from(["report", "status", "watch"]), label="kind")
    auth = data.draw(st.just(channel_user) | CREDENTIALS, label="auth")
    since = _log_size(sqlite_server)
    with httpx.Client(base_url=sqlite_server.url, auth=auth, timeout=REQUEST_TIMEOUT) as client:
        if kind == "report":
            agent = data.draw(st.fixed_dictionaries({}, optional={
                "agent_type": AGENT_TYPES, "host": HOSTS | st.just("h" * 100_000),
                "binary": JSON_VALUES, "topic": JSON_VALUES,
                "configurations": JSON_VALUES | st.dictionaries(st.text(max_size=5),
                                                                JSON_VALUES),
                "availability_zone": JSON_VALUES, "start_flag": JSON_VALUES | BOOLS,
                "applied_revision": INTS | JSON_VALUES, "resources_synced": JSON_VALUES,
                "extra": JSON_VALUES}), label="report")
            body = data.draw(st.just({"agent": agent}) | JSON_VALUES, label="body")
            response = client.post("/agent-channel/v1/report",
                                   content=json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json"})
        elif kind == "status":
            body = data.draw(st.fixed_dictionaries({}, optional={
                "host": HOSTS, "ports": JSON_VALUES | st.lists(st.fixed_dictionaries({
                    "id": st.uuids().map(str) | JSON_VALUES,
                    "status": st.sampled_from(["ACTIVE", "DOWN", "up"]) | JSON_VALUES})),
                "dhcp_ready": JSON_VALUES, "routers": JSON_VALUES,
                "floatingips": JSON_VALUES}) | JSON_VALUES, label="body")
            response = client.post("/agent-channel/v1/status",
                                   content=json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json"})
        else:
            # Always a timeout, and never a long one: a valid watch waits that long.
            params = data.draw(st.fixed_dictionaries({"timeout": st.sampled_from(
                ["nan", "NaN", "inf", "-inf", "-1", "1e308", "0", "0.01", "", "x", "1e-9"])},
                optional={"agent_type": AGENT_TYPES.map(_scalar), "host": HOSTS.map(_scalar),
                          "since": INTS.map(str) | URL_TEXT}), label="query")
            response = client.get("/agent-channel/v1/watch", params=params)
    event(f"{kind} {response.status_code}")
    _check_response(sqlite_server, since, response)
