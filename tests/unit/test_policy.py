"""Policy: Neutron's defaults, an operator's overrides, and a changed file taking effect."""

from __future__ import annotations

import os
import time
from pathlib import Path

from neutrino.cmd.common import load_config
from neutrino.schema.policy import Context, Enforcer

MEMBER = Context(user_id="u", project_id="a", roles=["member"])
ADMIN = Context(user_id="x", project_id="b", roles=["admin"])
OWN = {"project_id": "a", "tenant_id": "a", "shared": False, "router:external": False}
OTHER = {"project_id": "b", "tenant_id": "b", "shared": False, "router:external": False}


def _enforcer(tmp_path: Path, rules: str = "{}") -> tuple[Enforcer, Path]:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(rules)
    conf_file = tmp_path / "n.conf"
    conf_file.write_text(f"[oslo_policy]\npolicy_file = {policy_file}\n")
    return Enforcer(load_config(["--config-file", str(conf_file)], "test")), policy_file


def test_defaults(tmp_path: Path) -> None:
    """Members act on their own project; others' private networks are hidden; roles imply."""
    enforcer, _ = _enforcer(tmp_path)
    assert enforcer.check(MEMBER, "get_network", OWN)
    assert not enforcer.check(MEMBER, "get_network", OTHER)
    assert enforcer.check(MEMBER, "get_network", {**OTHER, "shared": True})
    assert enforcer.check(MEMBER, "get_network", {**OTHER, "router:external": True})
    assert not enforcer.check(MEMBER, "update_network", {**OTHER, "shared": True})
    assert enforcer.check(ADMIN, "delete_network", OWN)  # admin implies member and reader
    reader = Context(user_id="r", project_id="a", roles=["reader"])
    assert enforcer.check(reader, "get_network", OWN)
    assert not enforcer.check(reader, "create_network", OWN)
    assert enforcer.hidden_attributes(MEMBER, "port", OWN) >= {
        "binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile"}
    assert "binding:vnic_type" not in enforcer.hidden_attributes(MEMBER, "port", OWN)
    assert enforcer.hidden_attributes(ADMIN, "network", OWN) == frozenset()


def test_override_and_reload(tmp_path: Path) -> None:
    """An operator's rule replaces the default, and a changed file replaces cached answers."""
    enforcer, policy_file = _enforcer(tmp_path, '"get_network:provider:network_type": ""\n')
    assert "provider:network_type" not in enforcer.hidden_attributes(MEMBER, "network", OWN)
    assert enforcer.check(MEMBER, "create_network", OWN)
    policy_file.write_text('"create_network": "role:admin"\n')
    later = time.time() + 5
    os.utime(policy_file, (later, later))
    enforcer._checked_at -= Enforcer.RELOAD_INTERVAL  # as if a second had passed
    assert not enforcer.check(MEMBER, "create_network", OWN)
    assert "provider:network_type" in enforcer.hidden_attributes(MEMBER, "network", OWN)


def test_security_group_defaults(tmp_path: Path) -> None:
    """Neutron's defaults: members write their project's groups and rules (rules by the
    group's project), readers read; address groups likewise; pairs are the network owner's."""
    enforcer, _ = _enforcer(tmp_path)
    reader = Context(user_id="r", project_id="a", roles=["reader"])
    for action in ("create_security_group", "update_security_group", "delete_security_group",
                   "create_address_group", "add_addresses", "remove_addresses"):
        assert enforcer.check(MEMBER, action, OWN), action
        assert not enforcer.check(MEMBER, action, OTHER), action
        assert not enforcer.check(reader, action, OWN), action
    assert enforcer.check(reader, "get_security_group", OWN)
    assert not enforcer.check(reader, "get_security_group", OTHER)
    in_own_group = {"project_id": "b", "tenant_id": "b", "security_group:project_id": "a"}
    in_other_group = {"project_id": "a", "tenant_id": "a", "security_group:project_id": "b"}
    for action in ("create_security_group_rule", "delete_security_group_rule"):
        assert enforcer.check(MEMBER, action, in_own_group), action
        assert not enforcer.check(MEMBER, action, in_other_group), action
        assert not enforcer.check(reader, action, in_own_group), action
        assert enforcer.check(ADMIN, action, in_other_group), action
    assert enforcer.check(reader, "get_security_group_rule", in_own_group)
    assert not enforcer.check(reader, "get_security_group_rule", in_other_group)
    on_own_net = {**OWN, "network:project_id": "a"}
    on_shared_net = {**OWN, "network:project_id": "b", "shared": True}
    for action in ("create_port:allowed_address_pairs", "update_port:allowed_address_pairs",
                   "create_port:allowed_address_pairs:ip_address",
                   "update_port:port_security_enabled"):
        assert enforcer.check(MEMBER, action, on_own_net), action
        assert not enforcer.check(MEMBER, action, on_shared_net), action
    assert "allowed_address_pairs" not in enforcer.hidden_attributes(MEMBER, "port", OWN)
    assert "port_security_enabled" not in enforcer.hidden_attributes(MEMBER, "port", OWN)


def test_network_owner_rules_need_the_member_role(tmp_path: Path) -> None:
    """Neutron's `role:member and project_id:%(network:project_id)s`: a reader of the
    network's project writes no port on it, a member does; the service role may."""
    enforcer, _ = _enforcer(tmp_path)
    reader = Context(user_id="r", project_id="a", roles=["reader"])
    service = Context(user_id="s", project_id="svc", roles=["service"])
    on_own_net = {**OWN, "network:project_id": "a", "device_owner": ""}
    for action in ("create_port", "update_port", "delete_port", "create_port:mac_address",
                   "create_port:fixed_ips:ip_address", "update_port:fixed_ips",
                   "create_subnet", "update_subnet", "delete_subnet"):
        assert enforcer.check(MEMBER, action, on_own_net), action
        assert not enforcer.check(reader, action, on_own_net), action
    assert enforcer.check(reader, "get_port", on_own_net)
    others_port = {**OTHER, "network:project_id": "b", "device_owner": ""}
    for action in ("get_port", "update_port", "delete_port"):
        assert enforcer.check(service, action, others_port), action
    assert "binding:host_id" not in enforcer.hidden_attributes(service, "port", others_port)
    manager = Context(user_id="m", project_id="a", roles=["manager"])
    assert enforcer.check(manager, "update_port:mac_address", on_own_net)
    assert not enforcer.check(MEMBER, "update_port:mac_address", on_own_net)
    assert enforcer.check(reader, "get_availability_zone", {})
    assert not enforcer.check(service, "get_availability_zone", {})
