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
