"""HA routers: the project's hidden HA network, VRIDs, one HA port per hosting agent, and
the VRRP state each agent reports.

As Neutron (reference: l3-routing.md, 5):
- a project's first HA router makes its HA network ("HA network project <id>", project
  "", no DHCP, no gateway, of `l3_ha_network_type`) with one subnet of `l3_ha_net_cidr`;
  its last HA router's deletion removes it. The network's row in `ha_router_networks` is
  keyed by project, so two first routers made at once cannot both make one: the loser's
  transaction is retried and finds the winner's;
- a router's VRID is drawn at random among the free ones of that network (first-free let
  two routers made in parallel pick the same one); with all 254 taken the router is made
  but stays in `ERROR`;
- each agent hosting the router has a `network:router_ha_interface` port on the HA network,
  bound to its host; the router's interfaces are `network:ha_router_replicated_interface`
  ports, plugged on every hosting host (only the active one holds their addresses), and
  bound to the host that last reported itself active, so that the port's status and
  `binding:host_id` say where the router serves.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from neutrino import exceptions as exc
from neutrino.db.models import (
    AGENTS,
    ALLOCS,
    HA_NETWORKS,
    HA_VRIDS,
    L3_BINDINGS,
    PORTS,
    ROUTERS,
)
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import NETWORK, PORT, SUBNET
from neutrino.services import changes
from neutrino.services.common import Core, bump_revision, delete_tags, utcnow
from neutrino.services.networks import delete_network_rows
from neutrino.services.routers import bind_ports

LOG = logging.getLogger(__name__)
HA_INTERFACE = "network:router_ha_interface"
REPLICATED_INTERFACE = "network:ha_router_replicated_interface"
ROUTER_INTERFACE = "network:router_interface"
MAX_VRID = 254  # VRRP's ids are 1-255; 255 is reserved for the address owner
STATES = ("active", "standby", "fault")


def network_name(project_id: str) -> str:
    """The HA network's name, as Neutron names it."""
    return f"HA network project {project_id}"


def subnet_name(project_id: str) -> str:
    """The HA subnet's name."""
    return f"HA subnet project {project_id}"


def pick_vrid(used: set[int], rng: random.Random) -> int | None:
    """A free VRID at random, or None when all are taken (pure)."""
    free = sorted(set(range(1, MAX_VRID + 1)) - used)
    return rng.choice(free) if free else None


def shown_state(state: str, alive: bool, any_alive: bool) -> str:
    """The `ha_state` the API shows for one binding (pure): what the agent reported while it
    lives; a dead agent's `active` is not believed (`standby` while another agent lives,
    `unknown` when none does), as Neutron rewrites it."""
    if alive:
        return "active" if state == "active" else "standby"
    return "standby" if any_alive else "unknown"


def shown_states(bindings: list[tuple[str, bool, float | None]]) -> list[str]:
    """The `ha_state` shown for each of a router's bindings (pure), given (reported state,
    agent alive, when the state changed): as `shown_state`, and of several live agents
    reporting active only the one that became active last is shown so. Two actives are a
    frozen or partitioned host whose report is stale, or VRRP about to leave one primary;
    the router's ports are bound to the later one too, so the API never shows two."""
    any_alive = any(alive for _state, alive, _at in bindings)
    shown = [shown_state(state, alive, any_alive) for state, alive, _at in bindings]
    actives = [i for i, state in enumerate(shown) if state == "active"]
    if len(actives) > 1:
        latest = max(actives, key=lambda i: bindings[i][2] or 0.0)
        shown = ["standby" if i in actives and i != latest else state
                 for i, state in enumerate(shown)]
    return shown


class HaRouters:
    """The server's side of HA routers, called within the routers' transactions."""

    def __init__(self, core: Core, create_network: Any, create_subnet: Any,
                 create_port: Any, rng: random.Random | None = None) -> None:
        self.core = core
        self._create_network = create_network
        self._create_subnet = create_subnet
        self._create_port = create_port
        self._rng = rng or random.SystemRandom()

    # -- the HA network ---------------------------------------------------------------------

    @staticmethod
    def network_of(conn: Connection, project_id: str) -> str | None:
        """The project's HA network, if it has one."""
        found = conn.execute(select(HA_NETWORKS.c.network_id).where(
            HA_NETWORKS.c.project_id == project_id)).scalar()
        return str(found) if found is not None else None

    def ensure_network(self, conn: Connection, project_id: str) -> str:
        """The project's HA network, made with its subnet if it has none."""
        found = self.network_of(conn, project_id)
        if found is not None:
            return found
        conf, admin, now = self.core.conf, Context.admin(), utcnow()
        body: dict[str, Any] = {"name": network_name(project_id), "project_id": "",
                                "admin_state_up": True, "shared": False}
        if conf.l3_ha_network_type:
            body["provider:network_type"] = conf.l3_ha_network_type
            if conf.l3_ha_network_physical_name:
                body["provider:physical_network"] = conf.l3_ha_network_physical_name
        network = self._create_network(conn, admin, parse_item(NETWORK, body, create=True),
                                       now)
        # The key on project_id: a concurrent first HA router's transaction conflicts here
        # and is retried, then finds this network.
        conn.execute(insert(HA_NETWORKS).values(project_id=project_id,
                                                network_id=network["id"]))
        self._create_subnet(conn, admin, parse_item(SUBNET, {
            "network_id": network["id"], "name": subnet_name(project_id), "project_id": "",
            "ip_version": 4, "cidr": conf.l3_ha_net_cidr, "gateway_ip": None,
            "enable_dhcp": False}, create=True), now)
        LOG.info("Created HA network %s of project %s", network["id"], project_id)
        return str(network["id"])

    def _drop_network_if_unused(self, conn: Connection, project_id: str) -> None:
        """The project's last HA router went: its HA network goes too."""
        network_id = self.network_of(conn, project_id)
        if network_id is None:
            return
        others = conn.execute(select(ROUTERS.c.id).where(
            ROUTERS.c.project_id == project_id, ROUTERS.c.ha.is_(True)).limit(1)).first()
        if others is not None:
            return
        conn.execute(delete(HA_VRIDS).where(HA_VRIDS.c.network_id == network_id))
        conn.execute(delete(HA_NETWORKS).where(HA_NETWORKS.c.project_id == project_id))
        delete_network_rows(conn, network_id)
        LOG.info("Deleted HA network %s of project %s: its last HA router is gone",
                 network_id, project_id)

    # -- a router becoming HA, or no longer ---------------------------------------------

    def make_ha(self, conn: Connection, router: Row[Any]) -> None:
        """Give a router its VRID on its project's HA network (ERROR when none is free) and
        make its interfaces replicated ones."""
        network_id = self.ensure_network(conn, router.project_id)
        used = set(conn.execute(select(HA_VRIDS.c.vr_id).where(
            HA_VRIDS.c.network_id == network_id)).scalars())
        vrid = pick_vrid(used, self._rng)
        values: dict[str, Any] = {"ha": True, "ha_vr_id": vrid}
        if vrid is None:
            LOG.error("Router %s: no VRID is free on HA network %s of project %s (%d "
                      "routers); it stays in ERROR", router.id, network_id,
                      router.project_id, MAX_VRID)
            values["status"] = "ERROR"
        else:
            conn.execute(insert(HA_VRIDS).values(network_id=network_id, vr_id=vrid))
        conn.execute(update(ROUTERS).where(ROUTERS.c.id == router.id).values(**values))
        self._rename_interfaces(conn, router.id, ROUTER_INTERFACE, REPLICATED_INTERFACE)

    def make_legacy(self, conn: Connection, router: Row[Any]) -> None:
        """A router no longer HA (or deleted): its VRID is freed, its HA ports go, and the
        HA network with its project's last HA router."""
        network_id = self.network_of(conn, router.project_id)
        if network_id is not None and router.ha_vr_id is not None:
            conn.execute(delete(HA_VRIDS).where(HA_VRIDS.c.network_id == network_id,
                                                HA_VRIDS.c.vr_id == router.ha_vr_id))
        for port_id, host in conn.execute(select(PORTS.c.id, PORTS.c.binding_host_id).where(
                PORTS.c.device_id == router.id, PORTS.c.device_owner == HA_INTERFACE)).all():
            self._delete_port(conn, port_id, host)
        conn.execute(update(ROUTERS).where(ROUTERS.c.id == router.id).values(
            ha=False, ha_vr_id=None))
        self._rename_interfaces(conn, router.id, REPLICATED_INTERFACE, ROUTER_INTERFACE)
        self._drop_network_if_unused(conn, router.project_id)

    @staticmethod
    def _rename_interfaces(conn: Connection, router_id: str, old: str, new: str) -> None:
        for port_id, network_id in conn.execute(select(PORTS.c.id, PORTS.c.network_id).where(
                PORTS.c.device_id == router_id, PORTS.c.device_owner == old)).all():
            bump_revision(conn, PORTS, port_id, utcnow(), {"device_owner": new})
            changes.record(conn, "port", port_id, changes.network(network_id))

    # -- HA ports, one per hosting agent ----------------------------------------------

    def add_port(self, conn: Connection, router: Row[Any], host: str) -> None:
        """The HA port of a router on a host (its keepalived's device)."""
        network_id = self.network_of(conn, router.project_id)
        if network_id is None:
            raise exc.ConcurrentChange()  # made HA and un-made meanwhile: retry
        body = parse_item(PORT, {
            "network_id": network_id, "device_owner": HA_INTERFACE, "device_id": router.id,
            "project_id": "", "name": f"HA port tenant {router.project_id}",
            "binding:host_id": host, "port_security_enabled": False}, create=True)
        port = self._create_port(conn, Context.admin(), body, utcnow())
        LOG.info("Router %s: HA port %s on %s (%s)", router.id, port["id"], host,
                 [ip["ip_address"] for ip in port["fixed_ips"]])

    def remove_port(self, conn: Connection, router_id: str, host: str) -> None:
        """A router's HA port on a host goes (the host no longer hosts the router)."""
        for (port_id,) in conn.execute(select(PORTS.c.id).where(
                PORTS.c.device_id == router_id, PORTS.c.device_owner == HA_INTERFACE,
                PORTS.c.binding_host_id == host)).all():
            self._delete_port(conn, port_id, host)

    @staticmethod
    def _delete_port(conn: Connection, port_id: str, host: str) -> None:
        network_id = conn.execute(select(PORTS.c.network_id).where(
            PORTS.c.id == port_id)).scalar()
        conn.execute(delete(ALLOCS).where(ALLOCS.c.port_id == port_id))
        conn.execute(delete(PORTS).where(PORTS.c.id == port_id))
        delete_tags(conn, [port_id])
        if network_id is not None:
            changes.record(conn, "port", port_id, changes.network(network_id), hosts=[host])

    # -- what the agents report ---------------------------------------------------------

    def report_states(self, conn: Connection, host: str, entries: list[Any]) -> int:
        """HA routers' VRRP states from a host's L3 agent: `[{id, ha_state}]`, taken for
        the routers its agent hosts; a router that became active there has its ports bound
        there. How many changed."""
        wanted: dict[str, str] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("ha_state") not in STATES:
                raise exc.BadRequest(resource="status", msg=(
                    "router states are {id, ha_state: active|standby|fault}"))
            wanted[str(entry["id"])] = str(entry["ha_state"])
        rows = conn.execute(select(L3_BINDINGS.c.router_id, L3_BINDINGS.c.agent_id,
                                   L3_BINDINGS.c.ha_state)
                            .join(AGENTS, AGENTS.c.id == L3_BINDINGS.c.agent_id)
                            .join(ROUTERS, ROUTERS.c.id == L3_BINDINGS.c.router_id)
                            .where(AGENTS.c.host == host, ROUTERS.c.ha.is_(True),
                                   L3_BINDINGS.c.router_id.in_(sorted(wanted)))).all()
        changed = 0
        for router_id, agent_id, state in rows:
            new = wanted[router_id]
            if new == state:
                continue
            conn.execute(update(L3_BINDINGS).where(L3_BINDINGS.c.router_id == router_id,
                                                   L3_BINDINGS.c.agent_id == agent_id)
                         .values(ha_state=new, ha_state_changed_at=time.time()))
            if new == "active":
                bind_ports(conn, router_id, host)
            LOG.info("HA router %s is %s on %s (was %s)", router_id, new, host, state)
            changed += 1
        return changed
