"""Keystone authentication (`auth_strategy = keystone`) against a real Keystone served on
loopback: the real `openstack` CLI and openstacksdk log in with passwords through the
catalog; tokens are validated by keystonemiddleware and policy sees their project and
roles."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from neutrino.agent.client import ChannelError, KeystoneToken, ServerClient
from neutrino.lab.keystone import Keystone
from tests.support import AgentProcess, Server, openstack_cli, wait_for

pytestmark = [pytest.mark.skipif(
    importlib.util.find_spec("keystone") is None,
    reason="needs the keystone package (tools/install installs it)"), pytest.mark.slow]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Keystone, and neutrino validating its tokens; the projects' ids."""
    base = tmp_path_factory.mktemp("keystone")
    keystone = Keystone(base / "keystone")
    keystone.setup()
    (base / "neutrino").mkdir()
    server = Server(base / "neutrino", f"sqlite:///{base / 'neutrino.sqlite'}", auth="keystone",
                    options={"keystone_authtoken": keystone.authtoken_options()})
    try:
        keystone.start()
        projects = keystone.seed(server.url)
        server.start()
        yield {"keystone": keystone, "server": server, "projects": projects}
    finally:
        server.stop()
        keystone.stop()


def _env(cloud: dict[str, Any], user: str, project: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    password = cloud["keystone"].passwords[user]
    env.update(OS_AUTH_URL=cloud["keystone"].url, OS_USERNAME=user, OS_PASSWORD=password,
               OS_PROJECT_NAME=project, OS_USER_DOMAIN_NAME="Default",
               OS_PROJECT_DOMAIN_NAME="Default", OS_IDENTITY_API_VERSION="3",
               OS_REGION_NAME="RegionOne", OS_INTERFACE="public")
    return env


def _as(cloud: dict[str, Any], user: str, project: str) -> httpx.Client:
    token = cloud["keystone"].token(user, project)
    return httpx.Client(base_url=cloud["server"].url, headers={"X-Auth-Token": token},
                        timeout=30)


def test_the_cli_logs_in_through_the_catalog(cloud: dict[str, Any]) -> None:
    """Seed 004's login: `openstack project show demo`, then networks of the demo project,
    invisible to another project's admin-less view and with admin-only attributes hidden."""
    demo, admin = _env(cloud, "demo", "demo"), _env(cloud, "admin", "admin")
    shown = openstack_cli(admin, "project", "show", "demo", "-f", "json")
    assert shown["id"] == cloud["projects"]["demo"]
    net = openstack_cli(demo, "network", "create", "ks-net", "-f", "json")
    assert net["project_id"] == cloud["projects"]["demo"]
    assert net["provider:network_type"] is None  # admin-only, hidden from a member
    assert openstack_cli(admin, "network", "show", net["id"], "-f", "json")[
        "provider:network_type"] == "vxlan"
    private = openstack_cli(admin, "network", "create", "ks-admin-net", "-f", "json")
    listed = {n["Name"] for n in openstack_cli(demo, "network", "list", "-f", "json")}
    assert "ks-net" in listed and "ks-admin-net" not in listed
    for name in (net["id"], private["id"]):
        openstack_cli(admin, "network", "delete", name)


def test_tokens_and_roles(cloud: dict[str, Any]) -> None:
    """No token, a forged one and a revoked one are 401s; a reader's token may read but
    not create (403); the identity headers a client sends are not believed."""
    url = cloud["server"].url
    assert httpx.get(url + "/v2.0/networks").status_code == 401
    assert httpx.get(url + "/v2.0/networks",
                     headers={"X-Auth-Token": "gAAAAAforged"}).status_code == 401
    keystone = cloud["keystone"]
    token = keystone.token("demo", "demo")
    admin_token = keystone.token()
    httpx.delete(keystone.url + "/auth/tokens", headers={
        "X-Auth-Token": admin_token, "X-Subject-Token": token}).raise_for_status()
    assert httpx.get(url + "/v2.0/networks", headers={"X-Auth-Token": token}).status_code == 401
    with _as(cloud, "demo-reader", "demo") as reader:
        assert reader.get("/v2.0/networks").status_code == 200
        refused = reader.post("/v2.0/networks", json={"network": {"name": "r"}})
        assert refused.status_code == 403, refused.text
        assert refused.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
        forged = reader.post("/v2.0/networks", json={"network": {"name": "r"}},
                             headers={"X-Roles": "admin", "X-Project-Id": "other"})
        assert forged.status_code == 403


def test_openstacksdk_with_password_auth(cloud: dict[str, Any]) -> None:
    """openstacksdk finds the network endpoint in the catalog and works as the demo user."""
    import openstack

    conn = openstack.connect(
        auth_url=cloud["keystone"].url, username="demo",
        password=cloud["keystone"].passwords["demo"],
        project_name="demo", user_domain_name="Default", project_domain_name="Default",
        region_name="RegionOne")
    net = conn.network.create_network(name="ks-sdk")
    assert net.project_id == cloud["projects"]["demo"]
    assert [n.id for n in conn.network.networks(name="ks-sdk")] == [net.id]
    conn.network.delete_network(net)


def test_agents_log_in_as_a_keystone_service_user(cloud: dict[str, Any]) -> None:
    """An agent with `[service_auth]` and no users file reports with the service user's
    token and comes up alive; a member's token and no token are refused on the channel;
    a revoked agent token is replaced and the call goes through."""
    keystone, server = cloud["keystone"], cloud["server"]
    agent = AgentProcess(server, "dhcp", "ks-host", sections={
        "service_auth": keystone.service_auth_options()})
    # A wrong users-file password: only the Keystone login can work.
    agent.config.write_text(agent.config.read_text().replace(
        "server_password = ", "server_password = not-the-password-"))
    agent.start()
    try:
        with _as(cloud, "admin", "admin") as admin:
            def alive() -> bool:
                agents = admin.get("/v2.0/agents", params={"host": "ks-host"}).json()["agents"]
                return bool(agents) and agents[0]["alive"]

            wait_for(alive, 30, what="the Keystone-authenticated agent alive")
    finally:
        agent.stop()
    channel = server.url + "/agent-channel/v1/watch"
    params = {"agent_type": "DHCP agent", "host": "ks-host", "since": 0, "timeout": 0}
    assert httpx.get(channel, params=params).status_code == 401
    member = httpx.get(channel, params=params,
                       headers={"X-Auth-Token": keystone.token("demo", "demo")})
    assert member.status_code == 403, member.text

    from keystoneauth1 import loading

    options = keystone.service_auth_options()
    plugin = loading.get_plugin_loader("password").load_from_options(
        **{k: v for k, v in options.items() if k != "auth_type"})
    token_auth = KeystoneToken(plugin)
    client = ServerClient(server.url, token_auth)
    try:
        # Revoked before neutrino has seen (and cached) it: neutrino refuses it.
        first = token_auth._token()
        httpx.delete(keystone.url + "/auth/tokens", headers={
            "X-Auth-Token": keystone.token(), "X-Subject-Token": first}).raise_for_status()
        client.watch("DHCP agent", "ks-host", 0, 0)  # a 401, a new token, then the answer
        assert token_auth._token() != first
    finally:
        client.close()
    refused = ServerClient(server.url, KeystoneToken(loading.get_plugin_loader(
        "password").load_from_options(**{**{k: v for k, v in options.items()
                                            if k != "auth_type"}, "username": "demo",
                                         "password": keystone.passwords["demo"],
                                         "project_name": "demo"})))
    try:
        with pytest.raises(ChannelError) as err:
            refused.watch("DHCP agent", "ks-host", 0, 0)
        assert err.value.status == 403
    finally:
        refused.close()
