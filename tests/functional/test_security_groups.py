"""Security groups, rules, address groups, port security and allowed address pairs through
plain HTTP and the real CLI: what clients see, Neutron's errors and policies, and project
isolation (http_basic: admin, alice in project-a, bob in project-b), on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from neutrino.db.api import Database
from neutrino.db.models import CHANGES
from tests.conftest import ADMIN, ALICE, _server
from tests.functional.test_api import error, ok
from tests.support import Server, openstack_cli

SG, RULES, AG = "/v2.0/security-groups", "/v2.0/security-group-rules", "/v2.0/address-groups"
ALIASES = {"security-group", "stateful-security-group", "security-groups-remote-address-group",
           "address-group", "security-groups-normalized-cidr",
           "security-groups-rules-belongs-to-default-sg", "security-groups-shared-filtering",
           "port-security", "allowed-address-pairs", "port-security-groups-filtering"}


@pytest.fixture(scope="module")
def server(basic_server: Server) -> Server:
    """One http_basic server per backend for the module."""
    return basic_server


def group(client: httpx.Client, **attrs: Any) -> dict[str, Any]:
    """A new security group."""
    body = {"name": f"g-{uuid.uuid4().hex[:6]}", **attrs}
    return ok(client.post(SG, json={"security_group": body}), 201)["security_group"]


def rule(client: httpx.Client, group_id: str, **attrs: Any) -> httpx.Response:
    """POST a rule (ingress unless said otherwise)."""
    return client.post(RULES, json={"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", **attrs}})


def network(client: httpx.Client, cidr: str | None = None, **attrs: Any) -> dict[str, Any]:
    """A new network, with a subnet on `cidr` if given."""
    net = ok(client.post("/v2.0/networks", json={"network": {
        "name": f"n-{uuid.uuid4().hex[:6]}", **attrs}}), 201)["network"]
    if cidr:
        ok(client.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": cidr, "ip_version": 4}}), 201)
    return net


def port(client: httpx.Client, net: dict[str, Any], **attrs: Any) -> httpx.Response:
    """POST a port on `net`."""
    return client.post("/v2.0/ports", json={"port": {"network_id": net["id"], **attrs}})


def default_group(client: httpx.Client, project: str | None = None) -> dict[str, Any]:
    """The caller's (or an admin's, the project's) default group; listing makes it."""
    params = {"project_id": project} if project else {}
    [found] = [g for g in ok(client.get(SG, params=params))["security_groups"]
               if g["name"] == "default"]
    return found


def test_extensions_are_advertised(alice: httpx.Client) -> None:
    """Every alias of the feature is listed, each under Neutron's name."""
    aliases = {e["alias"] for e in ok(alice.get("/v2.0/extensions"))["extensions"]}
    assert aliases >= ALIASES
    shown = ok(alice.get("/v2.0/extensions/security-group"))["extension"]
    assert shown["name"] == "security-group"
    assert "rbac-security-groups" not in aliases


def test_default_group_is_made_once_with_four_rules(bob: httpx.Client) -> None:
    """The first list makes the project's `default` group; later lists show the same one."""
    groups = ok(bob.get(SG))["security_groups"]
    [default] = [g for g in groups if g["name"] == "default"]
    assert default["description"] == "Default security group"
    assert default["project_id"] == default["tenant_id"] == "project-b"
    assert default["stateful"] is True and default["shared"] is False
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"], r["remote_ip_prefix"],
              r["protocol"], r["port_range_min"], r["port_range_max"])
             for r in default["security_group_rules"]}
    assert rules == {("egress", "IPv4", None, None, None, None, None),
                     ("egress", "IPv6", None, None, None, None, None),
                     ("ingress", "IPv4", default["id"], None, None, None, None),
                     ("ingress", "IPv6", default["id"], None, None, None, None)}
    assert all(r["belongs_to_default_sg"] for r in default["security_group_rules"])
    again = [g for g in ok(bob.get(SG))["security_groups"] if g["name"] == "default"]
    assert [g["id"] for g in again] == [default["id"]]
    listed = ok(bob.get(RULES, params={"security_group_id": default["id"]}))
    assert len(listed["security_group_rules"]) == 4


def test_new_group_has_two_egress_rules_and_default_is_reserved(alice: httpx.Client) -> None:
    """A new group allows all egress; `default` (any case) is the server's name."""
    made = group(alice, description="web servers")
    assert {(r["direction"], r["ethertype"]) for r in made["security_group_rules"]} \
        == {("egress", "IPv4"), ("egress", "IPv6")}
    assert not any(r["belongs_to_default_sg"] for r in made["security_group_rules"])
    assert made["stateful"] is True and made["tags"] == []
    assert ok(alice.get(f"{SG}/{made['id']}"))["security_group"]["description"] \
        == "web servers"
    for name in ("default", "Default"):
        error(alice.post(SG, json={"security_group": {"name": name}}), 409,
              "SecurityGroupDefaultAlreadyExists")
    cold = group(alice, stateful=False)
    assert cold["stateful"] is False
    assert ok(alice.get(SG, params={"shared": "true"}))["security_groups"] == []
    assert cold["id"] in {g["id"] for g in ok(alice.get(SG, params={"shared": "false"}))[
        "security_groups"]}
    assert {g["id"] for g in ok(alice.get(SG, params={"stateful": "false"}))[
        "security_groups"]} == {cold["id"]}


NORMALISED = [
    ({"protocol": "TCP", "port_range_min": 22, "port_range_max": 22},
     {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}),
    ({"protocol": "6", "port_range_min": "80", "port_range_max": "81"},
     {"protocol": "6", "port_range_min": 80, "port_range_max": 81}),
    ({"protocol": 17}, {"protocol": "17"}),
    ({"protocol": "any"}, {"protocol": None}),
    ({"protocol": "tcp", "port_range_min": 1, "port_range_max": 65535},
     {"protocol": "tcp", "port_range_min": None, "port_range_max": None}),
    ({"ethertype": "ipv6", "protocol": "icmp"}, {"ethertype": "IPv6", "protocol": "ipv6-icmp"}),
    ({"ethertype": "IPv6", "protocol": "icmpv6"}, {"protocol": "ipv6-icmp"}),
    ({"ethertype": "IPv6", "protocol": "1"}, {"protocol": "58"}),
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0},
     {"protocol": "icmp", "port_range_min": 8, "port_range_max": 0}),
    ({"remote_ip_prefix": "192.0.2.7"},
     {"remote_ip_prefix": "192.0.2.7/32", "normalized_cidr": "192.0.2.7/32"}),
    ({"remote_ip_prefix": "192.0.2.7/24"},
     {"remote_ip_prefix": "192.0.2.7/24", "normalized_cidr": "192.0.2.0/24"}),
    ({"ethertype": "IPv6", "remote_ip_prefix": "2001:db8::1"},
     {"remote_ip_prefix": "2001:db8::1/128", "normalized_cidr": "2001:db8::1/128"}),
    ({}, {"ethertype": "IPv4", "protocol": None, "remote_ip_prefix": None,
          "normalized_cidr": None, "remote_group_id": None, "remote_address_group_id": None,
          "description": ""}),
]


@pytest.mark.parametrize(("given", "shown"), NORMALISED)
def test_rules_are_normalised_as_neutron_does(alice: httpx.Client, given: dict[str, Any],
                                              shown: dict[str, Any]) -> None:
    """Protocols, ethertypes, port ranges and prefixes as Neutron stores them."""
    made = ok(rule(alice, group(alice)["id"], **given), 201)["security_group_rule"]
    assert {k: made[k] for k in shown} == shown
    assert made["project_id"] == "project-a" and made["belongs_to_default_sg"] is False
    assert ok(alice.get(f"{RULES}/{made['id']}"))["security_group_rule"] == made


REFUSED = [
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}, 400,
     "SecurityGroupInvalidPortValue"),
    ({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70001}, 400,
     "SecurityGroupInvalidPortValue"),
    ({"protocol": "tcp", "port_range_min": "x"}, 400, "SecurityGroupInvalidPortValue"),
    ({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, 400,
     "SecurityGroupInvalidPortRange"),
    ({"protocol": "udp", "port_range_min": 53}, 400, "SecurityGroupInvalidPortRange"),
    ({"protocol": "icmp", "port_range_min": 256}, 400, "SecurityGroupInvalidIcmpValue"),
    ({"protocol": "icmp", "port_range_max": 0}, 400, "SecurityGroupMissingIcmpType"),
    ({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, 400,
     "SecurityGroupInvalidProtocolForPort"),
    ({"port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupProtocolRequiredWithPorts"),
    ({"protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"protocol": "256"}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"protocol": True}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType"),
    ({"remote_ip_prefix": "2001:db8::/64"}, 400, "SecurityGroupRuleParameterConflict"),
    ({"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol"),
    ({"remote_ip_prefix": "192.0.2.0/24", "remote_group_id": "SELF"}, 400,
     "SecurityGroupMultipleRemoteEntites"),
    ({"remote_ip_prefix": "not-a-cidr"}, 400, "InvalidCIDR"),
    ({"remote_ip_prefix": "10.0.0.0/33"}, 400, "InvalidCIDR"),
    ({"direction": "sideways"}, 400, "InvalidInput"),
    ({"direction": None}, 400, "InvalidInput"),
    ({"normalized_cidr": "10.0.0.0/8"}, 400, "HTTPBadRequest"),
    ({"remote_group_id": str(uuid.uuid4())}, 404, "SecurityGroupNotFound"),
    ({"remote_address_group_id": str(uuid.uuid4())}, 404, "AddressGroupNotFound"),
]


@pytest.mark.parametrize(("given", "status", "kind"), REFUSED)
def test_bad_rules_get_neutrons_errors(alice: httpx.Client, given: dict[str, Any],
                                       status: int, kind: str) -> None:
    """Each broken rule gets the status and error type Neutron answers with."""
    target = group(alice)
    given = {k: (target["id"] if v == "SELF" else v) for k, v in given.items()}
    error(rule(alice, target["id"], **given), status, kind)
    after = ok(alice.get(RULES, params={"security_group_id": target["id"]}))
    assert len(after["security_group_rules"]) == 2  # nothing was added


def test_rule_needs_a_group_and_a_direction(alice: httpx.Client) -> None:
    """A missing group is 404; a body without direction is 400."""
    error(rule(alice, str(uuid.uuid4())), 404, "SecurityGroupNotFound")
    error(alice.post(RULES, json={"security_group_rule": {
        "security_group_id": group(alice)["id"]}}), 400, "HTTPBadRequest")


def test_duplicate_rules_are_conflicts(alice: httpx.Client) -> None:
    """An equal rule is a 409 naming the existing one; "anywhere" has three spellings."""
    target = group(alice)
    first = ok(rule(alice, target["id"], protocol="tcp", port_range_min=22,
                    port_range_max=22), 201)["security_group_rule"]
    for same in ({"protocol": "tcp"}, {"protocol": "6"},
                 {"protocol": "tcp", "remote_ip_prefix": "0.0.0.0/0"}):
        message = error(rule(alice, target["id"], port_range_min=22, port_range_max=22, **same),
                        409, "SecurityGroupRuleExists")
        assert message == f"Security group rule already exists. Rule id is {first['id']}."
    egress = next(r for r in target["security_group_rules"] if r["ethertype"] == "IPv6")
    assert egress["id"] in error(rule(alice, target["id"], direction="egress",
                                      ethertype="IPv6", remote_ip_prefix="::/0"), 409,
                                 "SecurityGroupRuleExists")
    # Host bits make another prefix, as in Neutron.
    ok(rule(alice, target["id"], remote_ip_prefix="192.0.2.1/24"), 201)
    ok(rule(alice, target["id"], remote_ip_prefix="192.0.2.0/24"), 201)


def test_bulk_rule_create(alice: httpx.Client) -> None:
    """Several rules of one group at once, all or none."""
    target, other = group(alice), group(alice)
    item = {"security_group_id": target["id"], "direction": "ingress", "protocol": "tcp"}
    made = ok(alice.post(RULES, json={"security_group_rules": [
        {**item, "port_range_min": 80, "port_range_max": 80},
        {**item, "port_range_min": 443, "port_range_max": 443}]}), 201)
    assert [r["port_range_min"] for r in made["security_group_rules"]] == [80, 443]
    error(alice.post(RULES, json={"security_group_rules": [
        {**item, "protocol": "udp"}, {**item, "protocol": "17"}]}), 409,
        "DuplicateSecurityGroupRuleInPost")
    error(alice.post(RULES, json={"security_group_rules": [
        {**item, "protocol": "sctp"}, {**item, "security_group_id": other["id"]}]}), 400,
        "SecurityGroupNotSingleGroupRules")
    error(alice.post(RULES, json={"security_group_rules": [
        {**item, "protocol": "sctp"}, {**item, "protocol": "gre", "port_range_min": 1,
                                       "port_range_max": 1}]}), 400,
        "SecurityGroupInvalidProtocolForPort")
    after = ok(alice.get(RULES, params={"security_group_id": target["id"]}))
    assert len(after["security_group_rules"]) == 4


def test_rules_are_immutable(alice: httpx.Client) -> None:
    """PUT on a rule: an attribute is 400 (POST-only), an empty one 405."""
    made = ok(rule(alice, group(alice)["id"], protocol="tcp"), 201)["security_group_rule"]
    error(alice.put(f"{RULES}/{made['id']}", json={"security_group_rule": {
        "description": "x"}}), 400, "HTTPBadRequest")
    error(alice.put(f"{RULES}/{made['id']}", json={"security_group_rule": {}}), 405,
          "HTTPMethodNotAllowed")


def test_default_group_rules(alice: httpx.Client, admin: httpx.Client) -> None:
    """The default group keeps its name and, for members, exists; its rules may go."""
    default = default_group(alice)
    url = f"{SG}/{default['id']}"
    error(alice.put(url, json={"security_group": {"name": "other"}}), 409,
          "SecurityGroupCannotUpdateDefault")
    described = ok(alice.put(url, json={"security_group": {"description": "mine"}}))
    assert described["security_group"]["description"] == "mine"
    error(alice.delete(url), 409, "SecurityGroupCannotRemoveDefault")
    other = group(alice)
    error(alice.put(f"{SG}/{other['id']}", json={"security_group": {"name": "DEFAULT"}}), 409,
          "SecurityGroupDefaultAlreadyExists")
    renamed = ok(alice.put(f"{SG}/{other['id']}", json={"security_group": {
        "name": "renamed"}}))["security_group"]
    assert renamed["name"] == "renamed"
    assert renamed["revision_number"] > other["revision_number"]
    assert ok(alice.put(f"{SG}/{other['id']}/tags", json={"tags": ["t"]}))["tags"] == ["t"]
    assert ok(alice.get(f"{SG}/{other['id']}"))["security_group"]["tags"] == ["t"]
    ingress = next(r for r in default["security_group_rules"]
                   if r["direction"] == "ingress" and r["ethertype"] == "IPv6")
    assert alice.delete(f"{RULES}/{ingress['id']}").status_code == 204
    error(alice.get(f"{RULES}/{ingress['id']}"), 404, "SecurityGroupRuleNotFound")
    assert len(default_group(alice)["security_group_rules"]) == 3
    in_default = ok(alice.get(RULES, params={"belongs_to_default_sg": "true"}))
    assert {r["security_group_id"] for r in in_default["security_group_rules"]} \
        == {default["id"]}
    # An admin may delete a default group (its own project's here); the next use remakes it.
    mine = default_group(admin, "admin-project")
    assert admin.delete(f"{SG}/{mine['id']}").status_code == 204
    assert default_group(admin, "admin-project")["id"] != mine["id"]


def test_groups_in_use_and_statefulness(alice: httpx.Client) -> None:
    """A group with ports cannot go nor change statefulness; ports take one kind only."""
    net = network(alice, "10.61.0.0/24")
    stateful, stateless = group(alice), group(alice, stateful=False)
    made = ok(port(alice, net, security_groups=[stateful["id"]]), 201)["port"]
    assert made["security_groups"] == [stateful["id"]]
    error(alice.delete(f"{SG}/{stateful['id']}"), 409, "SecurityGroupInUse")
    error(alice.put(f"{SG}/{stateful['id']}", json={"security_group": {"stateful": False}}),
          409, "SecurityGroupInUse")
    assert "Cannot apply both stateful and stateless" in error(
        port(alice, net, security_groups=[stateful["id"], stateless["id"]]), 409,
        "SecurityGroupConflict")
    error(alice.put(f"/v2.0/ports/{made['id']}", json={"port": {
        "security_groups": [stateful["id"], stateless["id"]]}}), 409, "SecurityGroupConflict")
    listed = ok(alice.get("/v2.0/ports", params={"security_groups": stateful["id"]}))["ports"]
    assert [p["id"] for p in listed] == [made["id"]]
    assert alice.delete(f"/v2.0/ports/{made['id']}").status_code == 204
    assert alice.delete(f"{SG}/{stateful['id']}").status_code == 204
    error(alice.get(f"{SG}/{stateful['id']}"), 404, "SecurityGroupNotFound")


def test_remote_group_rules_go_with_their_remote(alice: httpx.Client) -> None:
    """Deleting a group deletes other groups' rules that name it (Neutron's cascade)."""
    remote, holder = group(alice), group(alice)
    made = ok(rule(alice, holder["id"], remote_group_id=remote["id"]), 201)
    assert alice.delete(f"{SG}/{remote['id']}").status_code == 204
    error(alice.get(f"{RULES}/{made['security_group_rule']['id']}"), 404,
          "SecurityGroupRuleNotFound")


def test_port_security_and_groups_of_ports(alice: httpx.Client) -> None:
    """Ports get the default group; port security comes from the network; groups need
    port security and an address."""
    default = default_group(alice)
    net = network(alice, "10.62.0.0/24")
    assert net["port_security_enabled"] is True
    plain = ok(port(alice, net), 201)["port"]
    assert plain["port_security_enabled"] is True
    assert plain["security_groups"] == [default["id"]]
    assert plain["allowed_address_pairs"] == []
    open_net = network(alice, "10.63.0.0/24", port_security_enabled=False)
    assert open_net["port_security_enabled"] is False
    inherited = ok(port(alice, open_net), 201)["port"]
    assert inherited["port_security_enabled"] is False and inherited["security_groups"] == []
    assert ok(port(alice, open_net, port_security_enabled=True), 201)["port"][
        "security_groups"] == [default["id"]]
    unsecured = ok(port(alice, net, port_security_enabled=False), 201)["port"]
    assert unsecured["security_groups"] == []
    web = group(alice)
    error(port(alice, net, port_security_enabled=False, security_groups=[web["id"]]), 400,
          "PortSecurityAndIPRequiredForSecurityGroups")
    # No address (a network without subnets) is no reason to refuse groups: ML2 takes them,
    # and neutron-tempest-plugin's security group tests make such ports.
    bare = ok(port(alice, network(alice), security_groups=[web["id"]]), 201)["port"]
    assert bare["fixed_ips"] == [] and bare["security_groups"] == [web["id"]]
    ok(alice.delete(f"/v2.0/ports/{bare['id']}"), 204)
    assert ok(port(alice, net, security_groups=[]), 201)["port"]["security_groups"] == []
    assert ok(port(alice, net, security_groups=None), 201)["port"]["security_groups"] == []
    error(port(alice, net, security_groups=[web["id"], web["id"]]), 400, "InvalidInput")
    error(port(alice, net, security_groups=["nope"]), 400, "InvalidInput")

    url = f"/v2.0/ports/{plain['id']}"
    error(alice.put(url, json={"port": {"port_security_enabled": False}}), 409,
          "PortSecurityPortHasSecurityGroup")
    off = ok(alice.put(url, json={"port": {"port_security_enabled": False,
                                           "security_groups": []}}))["port"]
    assert off["port_security_enabled"] is False and off["security_groups"] == []
    error(alice.put(url, json={"port": {"security_groups": [web["id"]]}}), 400,
          "PortSecurityAndIPRequiredForSecurityGroups")
    on = ok(alice.put(url, json={"port": {"port_security_enabled": True,
                                          "security_groups": [web["id"], default["id"]]}}))
    assert on["port"]["security_groups"] == sorted([web["id"], default["id"]])
    assert ok(alice.get(url))["port"]["security_groups"] == sorted([web["id"], default["id"]])
    cleared = ok(alice.put(url, json={"port": {"security_groups": None}}))["port"]
    assert cleared["security_groups"] == []
    listed = ok(alice.get("/v2.0/ports", params={"port_security_enabled": "false",
                                                  "network_id": open_net["id"]}))["ports"]
    assert [p["id"] for p in listed] == [inherited["id"]]


def test_allowed_address_pairs(alice: httpx.Client, server: Server) -> None:
    """Pairs: an IP or CIDR, the port's MAC by default, at most ten, port security needed."""
    net = network(alice, "10.64.0.0/24")
    made = ok(port(alice, net, allowed_address_pairs=[
        {"ip_address": "10.64.0.200"},
        {"ip_address": "10.64.1.0/24", "mac_address": "FA:16:3E:00:00:01"}]), 201)["port"]
    assert made["allowed_address_pairs"] == [
        {"ip_address": "10.64.0.200", "mac_address": made["mac_address"]},
        {"ip_address": "10.64.1.0/24", "mac_address": "fa:16:3e:00:00:01"}]
    many = [{"ip_address": f"10.64.2.{i}"} for i in range(11)]
    assert "exceeds the maximum 10" in error(port(alice, net, allowed_address_pairs=many), 400,
                                             "AllowedAddressPairExhausted")
    error(port(alice, net, allowed_address_pairs=[{"mac_address": "fa:16:3e:00:00:02"}]), 400,
          "AllowedAddressPairsMissingIP")
    error(port(alice, net, allowed_address_pairs=[{"ip_address": "10.64.0.9"}] * 2), 400,
          "DuplicateAddressPairInRequest")
    for bad in ({"ip_address": "10.64.0"}, {"ip_address": "224.0.0.5"},
                {"ip_address": "10.64.0.9", "mac_address": "01:00:5e:00:00:01"},
                {"ip_address": "10.64.0.9", "other": 1}):
        error(port(alice, net, allowed_address_pairs=[bad]), 400, "InvalidInput")
    error(port(alice, net, port_security_enabled=False,
               allowed_address_pairs=[{"ip_address": "10.64.0.9"}]), 409,
          "AddressPairAndPortSecurityRequired")
    url = f"/v2.0/ports/{made['id']}"
    error(alice.put(url, json={"port": {"port_security_enabled": False,
                                        "security_groups": []}}), 409,
          "AddressPairAndPortSecurityRequired")
    replaced = ok(alice.put(url, json={"port": {"allowed_address_pairs": [
        {"ip_address": "10.64.0.201"}]}}))["port"]
    assert replaced["allowed_address_pairs"] == [
        {"ip_address": "10.64.0.201", "mac_address": made["mac_address"]}]
    off = ok(alice.put(url, json={"port": {"port_security_enabled": False,
                                           "security_groups": [],
                                           "allowed_address_pairs": None}}))["port"]
    assert off["allowed_address_pairs"] == [] and off["port_security_enabled"] is False
    # A member may not give pairs on a shared network that is not hers (Neutron's policy).
    with server.http(basic=ADMIN) as admin:
        shared = network(admin, "10.65.0.0/24", shared=True)
    error(port(alice, shared, allowed_address_pairs=[{"ip_address": "10.65.0.9"}]), 403,
          "PolicyNotAuthorized")


def test_network_owned_ports_are_not_filtered(admin: httpx.Client, alice: httpx.Client) -> None:
    """Router and DHCP ports (network:* owners) get no port security and no groups."""
    net = network(alice, "10.66.0.0/24")
    subnet_id = ok(alice.get("/v2.0/subnets", params={"network_id": net["id"]}))[
        "subnets"][0]["id"]
    router = ok(alice.post("/v2.0/routers", json={"router": {"name": "r"}}), 201)["router"]
    info = ok(alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                        json={"subnet_id": subnet_id}))
    interface = ok(alice.get(f"/v2.0/ports/{info['port_id']}"))["port"]
    assert interface["port_security_enabled"] is False
    assert interface["security_groups"] == []
    dhcp = ok(port(admin, net, device_owner="network:dhcp", device_id="dhcp-x"), 201)["port"]
    assert dhcp["port_security_enabled"] is False and dhcp["security_groups"] == []
    error(port(admin, net, device_owner="network:dhcp",
               security_groups=[default_group(admin, "admin-project")["id"]]), 400,
          "PortSecurityAndIPRequiredForSecurityGroups")


def test_address_groups(alice: httpx.Client) -> None:
    """Addresses in network form, changed by the two actions; in use by rules, kept."""
    made = ok(alice.post(AG, json={"address_group": {
        "name": "ag", "addresses": ["192.0.2.7/24", "198.51.100.1/32"]}}), 201)["address_group"]
    assert made["addresses"] == ["192.0.2.0/24", "198.51.100.1/32"]
    url = f"{AG}/{made['id']}"
    added = ok(alice.put(f"{url}/add_addresses", json={"addresses": ["203.0.113.0/25"]}))[
        "address_group"]
    assert added["addresses"] == ["192.0.2.0/24", "198.51.100.1/32", "203.0.113.0/25"]
    error(alice.put(f"{url}/add_addresses", json={"addresses": ["192.0.2.9/24"]}), 400,
          "AddressesAlreadyExist")
    error(alice.put(f"{url}/remove_addresses", json={"addresses": ["10.0.0.0/8"]}), 404,
          "AddressesNotFound")
    # An address alone is its host prefix in the actions, as Neutron takes it.
    bare = ok(alice.put(f"{url}/add_addresses", json={"addresses": ["10.0.0.1"]}))[
        "address_group"]
    assert bare["addresses"] == ["10.0.0.1/32", "192.0.2.0/24", "198.51.100.1/32",
                                 "203.0.113.0/25"]
    ok(alice.put(f"{url}/remove_addresses", json={"addresses": ["10.0.0.1"]}))
    error(alice.put(f"{url}/add_addresses", json={"addresses": ["not an address"]}), 400,
          "InvalidInput")
    error(alice.put(f"{url}/add_addresses", json={"address_group": {"addresses": []}}), 400,
          "BadRequest")
    removed = ok(alice.put(f"{url}/remove_addresses", json={"addresses": [
        "198.51.100.1/32"]}))["address_group"]
    assert removed["addresses"] == ["192.0.2.0/24", "203.0.113.0/25"]
    error(alice.put(url, json={"address_group": {"addresses": []}}), 400, "HTTPBadRequest")
    renamed = ok(alice.put(url, json={"address_group": {"name": "ag2"}}))["address_group"]
    assert renamed["name"] == "ag2"
    target = group(alice)
    made_rule = ok(rule(alice, target["id"], protocol="tcp", port_range_min=80,
                        port_range_max=80, remote_address_group_id=made["id"]), 201)
    assert made_rule["security_group_rule"]["remote_address_group_id"] == made["id"]
    error(alice.delete(url), 409, "AddressGroupInUse")
    error(rule(alice, target["id"], remote_ip_prefix="10.0.0.0/8",
               remote_address_group_id=made["id"]), 400, "SecurityGroupMultipleRemoteEntites")
    assert alice.delete(f"{RULES}/{made_rule['security_group_rule']['id']}").status_code == 204
    assert alice.delete(url).status_code == 204
    error(alice.get(url), 404, "AddressGroupNotFound")


def test_projects_are_isolated(alice: httpx.Client, bob: httpx.Client,
                               admin: httpx.Client) -> None:
    """Bob neither sees nor uses Alice's groups, rules and address groups: 404s."""
    hers = group(alice)
    her_rule = ok(rule(alice, hers["id"], protocol="tcp"), 201)["security_group_rule"]
    her_ag = ok(alice.post(AG, json={"address_group": {"addresses": ["10.9.0.0/16"]}}),
                201)["address_group"]
    assert hers["id"] not in {g["id"] for g in ok(bob.get(SG))["security_groups"]}
    assert ok(bob.get(SG, params={"project_id": "project-a"}))["security_groups"] == []
    assert her_rule["id"] not in {r["id"] for r in ok(bob.get(RULES))["security_group_rules"]}
    assert ok(bob.get(AG))["address_groups"] == []
    error(bob.get(f"{SG}/{hers['id']}"), 404, "SecurityGroupNotFound")
    error(bob.put(f"{SG}/{hers['id']}", json={"security_group": {"name": "x"}}), 404,
          "SecurityGroupNotFound")
    error(bob.delete(f"{SG}/{hers['id']}"), 404, "SecurityGroupNotFound")
    error(bob.put(f"{SG}/{hers['id']}/tags/x"), 404, "SecurityGroupNotFound")
    error(bob.get(f"{RULES}/{her_rule['id']}"), 404, "SecurityGroupRuleNotFound")
    error(bob.delete(f"{RULES}/{her_rule['id']}"), 404, "SecurityGroupRuleNotFound")
    error(rule(bob, hers["id"], protocol="udp"), 404, "SecurityGroupNotFound")
    error(bob.get(f"{AG}/{her_ag['id']}"), 404, "AddressGroupNotFound")
    error(bob.put(f"{AG}/{her_ag['id']}/add_addresses", json={"addresses": ["10.10.0.0/16"]}),
          404, "AddressGroupNotFound")
    his = group(bob)
    error(rule(bob, his["id"], remote_group_id=hers["id"]), 404, "SecurityGroupNotFound")
    error(rule(bob, his["id"], remote_address_group_id=her_ag["id"]), 404,
          "AddressGroupNotFound")
    net = network(bob, "10.67.0.0/24")
    assert hers["id"] in error(port(bob, net, security_groups=[hers["id"]]), 404,
                               "SecurityGroupNotFound")
    mine = ok(port(bob, net), 201)["port"]
    error(bob.put(f"/v2.0/ports/{mine['id']}", json={"port": {"security_groups": [
        hers["id"]]}}), 404, "SecurityGroupNotFound")
    error(bob.post(SG, json={"security_group": {"project_id": "project-a"}}), 400, "BadRequest")
    # The admin sees everyone's, and may put any group on a port.
    assert {hers["id"], his["id"]} <= {g["id"] for g in ok(admin.get(SG))["security_groups"]}
    assert ok(admin.get(f"{RULES}/{her_rule['id']}"))["security_group_rule"]["id"] \
        == her_rule["id"]
    assert ok(alice.get(f"{SG}/{hers['id']}"))["security_group"]["revision_number"] \
        == hers["revision_number"] + 1  # her rule counted; nothing of Bob's did


def test_readers_cannot_write(sqlite_server: Server) -> None:
    """A reader lists and shows (its default group is made) but creates and deletes
    nothing."""
    with sqlite_server.http(project="p-read", roles="reader") as reader, \
            sqlite_server.http(project="p-read", roles="member") as member:
        [default] = ok(reader.get(SG))["security_groups"]
        assert default["name"] == "default"
        error(reader.post(SG, json={"security_group": {"name": "x"}}), 403,
              "PolicyNotAuthorized")
        error(rule(reader, default["id"], protocol="tcp"), 403, "PolicyNotAuthorized")
        first = default["security_group_rules"][0]["id"]
        error(reader.delete(f"{RULES}/{first}"), 403, "PolicyNotAuthorized")
        error(reader.put(f"{SG}/{default['id']}", json={"security_group": {
            "description": "x"}}), 403, "PolicyNotAuthorized")
        error(reader.post(AG, json={"address_group": {"addresses": []}}), 403,
              "PolicyNotAuthorized")
        assert ok(reader.get(f"{RULES}/{first}"))["security_group_rule"]["id"] == first
        assert member.delete(f"{RULES}/{first}").status_code == 204


def _changes(server: Server, since: int) -> list[tuple[str, str, str | None, str | None]]:
    db = Database(server.db_url, pool_size=1, max_overflow=0)
    try:
        with db.read() as conn:
            rows = conn.execute(select(CHANGES.c.kind, CHANGES.c.object_id, CHANGES.c.scope_kind,
                                       CHANGES.c.host).where(CHANGES.c.seq > since)
                                .order_by(CHANGES.c.seq)).all()
    finally:
        db.dispose()
    return [tuple(r) for r in rows]


def _latest(server: Server) -> int:
    db = Database(server.db_url, pool_size=1, max_overflow=0)
    try:
        with db.read() as conn:
            rows = conn.execute(select(CHANGES.c.seq).order_by(CHANGES.c.seq.desc())
                                .limit(1)).all()
    finally:
        db.dispose()
    return int(rows[0][0]) if rows else 0


def test_writes_are_logged_for_the_agents(server: Server, alice: httpx.Client,
                                          admin: httpx.Client) -> None:
    """Group, rule, address group and port changes each leave change-log entries in the
    scopes the agents watch, for the hosts concerned."""
    target = group(alice)
    since = _latest(server)
    made = ok(rule(alice, target["id"], protocol="tcp"), 201)["security_group_rule"]
    assert ("security_group", target["id"], "security_group", None) in _changes(server, since)
    since = _latest(server)
    assert alice.delete(f"{RULES}/{made['id']}").status_code == 204
    assert ("security_group", target["id"], "security_group", None) in _changes(server, since)

    ag = ok(alice.post(AG, json={"address_group": {"addresses": []}}), 201)["address_group"]
    since = _latest(server)
    ok(alice.put(f"{AG}/{ag['id']}/add_addresses", json={"addresses": ["10.1.0.0/16"]}))
    assert ("address_group", ag["id"], "address_group", None) in _changes(server, since)

    net = network(alice, "10.68.0.0/24")
    since = _latest(server)
    made_port = ok(port(admin, net, **{"binding:host_id": "host-1"}), 201)["port"]
    logged = _changes(server, since)
    assert ("port", made_port["id"], "security_group", "host-1") in logged
    assert ("port", made_port["id"], "sg_members", None) in logged
    since = _latest(server)
    ok(admin.put(f"/v2.0/ports/{made_port['id']}", json={"port": {
        "binding:host_id": "host-2", "security_groups": [target["id"]]}}))
    logged = _changes(server, since)
    hosts = {h for kind, oid, scope, h in logged if scope == "security_group"}
    assert {"host-1", "host-2"} <= hosts
    assert sum(1 for k, _o, scope, _h in logged if scope == "sg_members") == 2  # old, new
    since = _latest(server)
    assert admin.delete(f"/v2.0/ports/{made_port['id']}").status_code == 204
    assert ("port", made_port["id"], "security_group", "host-2") in _changes(server, since)


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An http_basic server on SQLite for the CLI journey (the HTTP tests cover every
    backend; the CLI's second per command would triple for nothing)."""
    yield from _server(tmp_path_factory.mktemp("sg-cli"), "sqlite", "http_basic")


@pytest.mark.cli
def test_cli_journey(cli_server: Server) -> None:
    """The security group, rule, address group and port commands of the real CLI."""
    env = cli_server.cli_env(*ALICE)
    name = f"web-{uuid.uuid4().hex[:4]}"
    made = openstack_cli(env, "security", "group", "create", name, "--description", "web",
                         "-f", "json")
    assert made["name"] == name and made["stateful"] is True and len(made["rules"]) == 2
    cold = openstack_cli(env, "security", "group", "create", f"{name}-cold", "--stateless",
                         "-f", "json")
    assert cold["stateful"] is False
    ssh = openstack_cli(env, "security", "group", "rule", "create", name, "--protocol", "tcp",
                        "--dst-port", "22", "-f", "json")
    assert (ssh["protocol"], ssh["port_range_min"], ssh["port_range_max"],
            ssh["remote_ip_prefix"], ssh["ether_type"], ssh["direction"]) \
        == ("tcp", 22, 22, "0.0.0.0/0", "IPv4", "ingress")
    web = openstack_cli(env, "security", "group", "rule", "create", name, "--protocol", "tcp",
                        "--dst-port", "8000:8080", "--remote-ip", "192.0.2.0/24", "-f", "json")
    assert (web["port_range_min"], web["port_range_max"]) == (8000, 8080)
    ping = openstack_cli(env, "security", "group", "rule", "create", name, "--protocol",
                         "icmp", "--icmp-type", "8", "--icmp-code", "0", "-f", "json")
    assert (ping["protocol"], ping["port_range_min"], ping["port_range_max"]) == ("icmp", 8, 0)
    v6 = openstack_cli(env, "security", "group", "rule", "create", name, "--ethertype", "IPv6",
                       "--protocol", "icmp", "-f", "json")
    assert v6["protocol"] == "ipv6-icmp" and v6["remote_ip_prefix"] == "::/0"
    peers = openstack_cli(env, "security", "group", "rule", "create", name, "--remote-group",
                          name, "--protocol", "udp", "--dst-port", "53", "-f", "json")
    assert peers["remote_group_id"] == made["id"]
    out = openstack_cli(env, "security", "group", "rule", "create", name, "--egress",
                        "--protocol", "tcp", "--dst-port", "443", "-f", "json")
    assert out["direction"] == "egress"
    again = openstack_cli(env, "security", "group", "rule", "create", name, "--protocol",
                          "tcp", "--dst-port", "22", check=False)
    assert again.returncode != 0 and "Security group rule already exists" in again.stderr
    ag = openstack_cli(env, "address", "group", "create", f"{name}-ag", "--address",
                       "198.51.100.7", "--address", "203.0.113.0/24", "-f", "json")
    assert sorted(ag["addresses"]) == ["198.51.100.7/32", "203.0.113.0/24"]
    openstack_cli(env, "address", "group", "set", "--address", "192.0.2.0/25", ag["id"])
    openstack_cli(env, "address", "group", "unset", "--address", "198.51.100.7", ag["id"])
    assert sorted(openstack_cli(env, "address", "group", "show", ag["id"], "-f", "json")[
        "addresses"]) == ["192.0.2.0/25", "203.0.113.0/24"]
    by_ag = openstack_cli(env, "security", "group", "rule", "create", name,
                          "--remote-address-group", f"{name}-ag", "--protocol", "tcp",
                          "--dst-port", "80", "-f", "json")
    assert by_ag["remote_address_group_id"] == ag["id"]
    rules = openstack_cli(env, "security", "group", "rule", "list", name, "-f", "json")
    assert len(rules) == 9
    assert openstack_cli(env, "security", "group", "rule", "show", ssh["id"], "-f", "json")[
        "id"] == ssh["id"]
    openstack_cli(env, "security", "group", "rule", "delete", by_ag["id"])
    listed = {g["Name"] for g in openstack_cli(env, "security", "group", "list", "-f", "json")}
    assert {"default", name, f"{name}-cold"} <= listed
    openstack_cli(env, "security", "group", "set", "--name", f"{name}-2", "--description",
                  "moved", name)
    shown = openstack_cli(env, "security", "group", "show", f"{name}-2", "-f", "json")
    assert shown["description"] == "moved" and len(shown["rules"]) == 8
    name = f"{name}-2"

    net = openstack_cli(env, "network", "create", f"{name}-net", "--disable-port-security",
                        "-f", "json")
    assert net["port_security_enabled"] is False
    net = openstack_cli(env, "network", "create", f"{name}-net2", "-f", "json")
    openstack_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range",
                  "10.69.0.0/24", f"{name}-sub")
    p = openstack_cli(env, "port", "create", "--network", net["id"], "--security-group", name,
                      f"{name}-port", "-f", "json")
    assert p["security_group_ids"] == [made["id"]] and p["port_security_enabled"] is True
    # OSC passes the value through as a filter: an id (a name matches nothing, in Neutron too).
    listed = openstack_cli(env, "port", "list", "--security-group", made["id"], "-f", "json")
    assert [row["ID"] for row in listed] == [p["id"]]
    refused = openstack_cli(env, "port", "set", "--disable-port-security", p["id"], check=False)
    assert refused.returncode != 0 and "409" in refused.stderr
    openstack_cli(env, "port", "set", "--no-security-group", "--disable-port-security", p["id"])
    shown = openstack_cli(env, "port", "show", p["id"], "-f", "json")
    assert shown["port_security_enabled"] is False and shown["security_group_ids"] == []
    openstack_cli(env, "port", "set", "--enable-port-security", "--security-group", name,
                  p["id"])
    openstack_cli(env, "port", "set", "--allowed-address", "ip-address=10.69.0.50", p["id"])
    openstack_cli(env, "port", "set", "--allowed-address",
                  "ip-address=10.69.1.0/24,mac-address=fa:16:3e:00:00:01", p["id"])
    shown = openstack_cli(env, "port", "show", p["id"], "-f", "json")
    assert shown["security_group_ids"] == [made["id"]]
    assert sorted((a["ip_address"], a["mac_address"]) for a in shown["allowed_address_pairs"]) \
        == [("10.69.0.50", p["mac_address"]), ("10.69.1.0/24", "fa:16:3e:00:00:01")]
    # OSC removes a pair that equals what it is given, MAC included.
    openstack_cli(env, "port", "unset", "--allowed-address",
                  f"ip-address=10.69.0.50,mac-address={p['mac_address']}", p["id"])
    shown = openstack_cli(env, "port", "show", p["id"], "-f", "json")
    assert [a["ip_address"] for a in shown["allowed_address_pairs"]] == ["10.69.1.0/24"]
    in_use = openstack_cli(env, "security", "group", "delete", name, check=False)
    assert in_use.returncode != 0
    openstack_cli(env, "port", "delete", p["id"])
    openstack_cli(env, "security", "group", "delete", name, cold["id"])
    assert openstack_cli(env, "security", "group", "show", name, check=False).returncode != 0
    openstack_cli(env, "address", "group", "delete", ag["id"])
