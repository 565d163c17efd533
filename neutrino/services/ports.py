"""Ports: a MAC address and fixed IPs on a network, and how the port is bound to a host."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, delete, insert, or_, select

from neutrino import exceptions as exc
from neutrino.db import listing
from neutrino.db.listing import Page
from neutrino.db.models import (
    AGENTS,
    ALLOCS,
    ALLOWED_ADDRESS_PAIRS,
    EXTRA_DHCP_OPTS,
    NETWORKS,
    PORTS,
    SG_PORT_BINDINGS,
    SUBNET_CREATION_ORDER,
    SUBNETS,
)
from neutrino.registry import L2
from neutrino.schema.policy import Context
from neutrino.schema.request import Query
from neutrino.schema.resources import PORT
from neutrino.services import changes, extra_dhcp_opts, ipam, network_access
from neutrino.services import port_security as psec
from neutrino.services.common import (
    Core,
    ResourceServiceBase,
    bump_revision,
    delete_tags,
    enforce_attrs,
    insert_tags,
    load_tags,
    new_id,
    utcnow,
)
from neutrino.services.networks import DHCP_OWNER, NetworkService
from neutrino.services.routers import INTERFACE_OWNERS, L3_OWNED
from neutrino.services.security_groups import SecurityGroupService, port_groups

LOG = logging.getLogger(__name__)

FIXED_IP_FILTERS = ("ip_address", "subnet_id", "ip_address_substr")
# The statements of the port-create path, built once: SQLAlchemy then computes their cache
# keys once instead of on every request (about a third of a create's CPU otherwise).
_INSERT_PORT = insert(PORTS)
_INSERT_ALLOCS = insert(ALLOCS)
_NETWORK_SUBNETS = (
    select(SUBNETS.c.id, SUBNETS.c.cidr, SUBNETS.c.ip_version, SUBNETS.c.allocation_pools,
           SUBNETS.c.gateway_ip, SUBNETS.c.ipv6_address_mode, SUBNETS.c.ipv6_ra_mode,
           SUBNETS.c.enable_dhcp, SUBNETS.c.service_types)
    .where(SUBNETS.c.network_id == bindparam("network_id"))
    .order_by(*SUBNET_CREATION_ORDER))


def service_subnets(subnets: list[dict[str, Any]], device_owner: str) -> list[dict[str, Any]]:
    """The subnets a port of `device_owner` takes addresses from (`ipam.serves`), subnets
    with service types first, as Neutron chooses them."""
    found = [s for s in subnets if ipam.serves(s, device_owner)]
    return sorted(found, key=lambda s: not s["service_types"])  # stable: creation order kept


def port_target(project_id: str, network: Row[Any], device_owner: str = "",
                shared: bool | None = None) -> dict[str, Any]:
    """The policy target of a port of `project_id` on `network` (`shared`: whether the
    network is shared with that project, if it was asked)."""
    return {"project_id": project_id, "tenant_id": project_id,
            "network:project_id": network.project_id,
            "shared": bool(network.shared) if shared is None else shared,
            "device_owner": device_owner}


def render(m: Mapping[str, Any], fixed_ips: list[dict[str, str]], tags: list[str],
           groups: list[str] | None = None, pairs: list[dict[str, str]] | None = None,
           dhcp_opts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A port row as the API shows it."""
    return PORT.render(m, fixed_ips=fixed_ips, tags=tags, security_groups=groups or [],
                       allowed_address_pairs=pairs or [], extra_dhcp_opts=dhcp_opts or [])


def fixed_ips_of(conn: Connection, page: Page) -> dict[str, list[dict[str, str]]]:
    """The fixed IPs of a page's ports, each port's in address order, by port id."""
    keyed: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    # No ORDER BY: sorting every allocation costs more than ordering each port's few.
    rows = conn.execute(select(ALLOCS.c.port_id, ALLOCS.c.ip_key, ALLOCS.c.subnet_id,
                               ALLOCS.c.ip_address)
                        .where(page.holds(ALLOCS.c.port_id))).all()
    for port_id, key, subnet_id, address in rows:
        keyed[port_id].append((key, subnet_id, address))
    return {port_id: [{"subnet_id": subnet_id, "ip_address": address}
                      for _, subnet_id, address in (sorted(ips) if len(ips) > 1 else ips)]
            for port_id, ips in keyed.items()}


def random_mac(base_mac: str, rng: random.Random) -> str:
    """A MAC from `base_mac`, its '00' octets after the third replaced at random."""
    octets = base_mac.lower().split(":")
    out = [o if i < 3 or o != "00" else f"{rng.randint(0, 255):02x}"
           for i, o in enumerate(octets)]
    return ":".join(out)


def auto_addressed(subnets: list[dict[str, Any]],
                   wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries for the auto-addressed (SLAAC) subnets that `wanted` does not name: every
    port but a router's takes its EUI-64 address on each, as in Neutron."""
    named = {w["subnet_id"] for w in wanted if "subnet_id" in w}
    for want in wanted:
        if "subnet_id" not in want and "ip_address" in want:
            named |= {s["id"] for s in subnets
                      if ipam.address_in_subnet(s, want["ip_address"])}
    return [{"subnet_id": s["id"]} for s in subnets
            if ipam.is_auto_address(s) and s["id"] not in named]


def binding_of(conn: Connection, host: str) -> tuple[str, dict[str, Any]]:
    """The VIF type and details of a port bound (or not) to `host`: `binding_failed` where
    no Linux bridge agent has registered, as ML2 answers when no mechanism driver binds."""
    if not host:
        return "unbound", {}
    agent = conn.execute(select(AGENTS.c.id).where(
        AGENTS.c.host == host, AGENTS.c.agent_type == L2.agent_type).limit(1)).first()
    if agent is None:
        return "binding_failed", {}
    return "bridge", {"connectivity": "l2", "port_filter": False}


class PortService(ResourceServiceBase):
    """The rules of ports."""

    table = PORTS
    resource = PORT
    quota_resource = "port"

    def __init__(self, core: Core, networks: NetworkService,
                 security_groups: SecurityGroupService) -> None:
        super().__init__(core)
        self.networks = networks
        self.security_groups = security_groups
        self._rng = random.SystemRandom()

    def check_access(self, conn: Connection, ctx: Context, port_id: str, action: str) -> None:
        """Raise unless `ctx` may do `action` (get, update, delete) on the port."""
        row, network = self.fetch(conn, ctx, port_id)
        self.core.policy.enforce(ctx, f"{action}_port",
                                 port_target(row.project_id, network, row.device_owner))

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's ports and those on its networks."""
        if ctx.is_admin:
            return []
        own_networks = select(NETWORKS.c.id).where(NETWORKS.c.project_id == (ctx.project_id
                                                                              or ""))
        return [or_(PORTS.c.project_id == (ctx.project_id or ""),
                    PORTS.c.network_id.in_(own_networks))]

    def fetch(self, conn: Connection, ctx: Context,
              port_id: str) -> tuple[Row[Any], Row[Any]]:
        """The port and its network, or PortNotFound if absent or hidden from `ctx`."""
        row = conn.execute(select(PORTS).where(PORTS.c.id == port_id)).first()
        if row is not None:
            network = conn.execute(select(NETWORKS).where(NETWORKS.c.id == row.network_id)).one()
            target = port_target(row.project_id, network, row.device_owner)
            if self.core.policy.check(ctx, "get_port", target):
                return row, network
        raise exc.PortNotFound(port_id=port_id)

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        fixed = fixed_ips_of(conn, page)
        tags = load_tags(conn, page)
        groups = port_groups(conn, page.holds(SG_PORT_BINDINGS.c.port_id))
        pairs = psec.pairs_of(conn, page.holds(ALLOWED_ADDRESS_PAIRS.c.port_id))
        dhcp_opts = extra_dhcp_opts.opts_of(conn, page.holds(EXTRA_DHCP_OPTS.c.port_id))
        return [render(r, fixed.get(r["id"], []), tags.get(r["id"], []), groups.get(r["id"]),
                       pairs.get(r["id"]), dhcp_opts.get(r["id"])) for r in page.rows]

    def get(self, ctx: Context, port_id: str) -> dict[str, Any]:
        """One port."""
        with self.core.db.read() as conn:
            row, _ = self.fetch(conn, ctx, port_id)
            return self._render_one(conn, row)

    def list_page(self, ctx: Context, query: Query) -> tuple[list[dict[str, Any]], bool]:
        """A page of ports and whether more follow."""
        where = self.scope(ctx)
        for raw in query.extra_filters.get("fixed_ips", []):
            where.append(self._fixed_ip_clause(raw))
        groups = query.extra_filters.get("security_groups")
        if groups:
            where.append(PORTS.c.id.in_(select(SG_PORT_BINDINGS.c.port_id).where(
                SG_PORT_BINDINGS.c.security_group_id.in_(groups))))
        with self.core.db.read() as conn:
            page = listing.list_rows(conn, PORT, PORTS, query, where)
            return self._render_page(conn, page), page.more

    @staticmethod
    def _fixed_ip_clause(raw: str) -> ColumnElement[bool]:
        """`fixed_ips=ip_address=A`, `fixed_ips=subnet_id=S`, `fixed_ips=ip_address_substr=P`."""
        key, _, value = raw.partition("=")
        if key not in FIXED_IP_FILTERS or not value:
            raise exc.BadRequest(resource="port", msg=f"Invalid fixed_ips filter '{raw}'")
        if key == "ip_address":
            cond = ALLOCS.c.ip_address == value
        elif key == "subnet_id":
            cond = ALLOCS.c.subnet_id == value
        else:
            cond = ALLOCS.c.ip_address.contains(value, autoescape=True)
        return PORTS.c.id.in_(select(ALLOCS.c.port_id).where(cond))

    # -- writes -------------------------------------------------------------------------

    def _describe(self, item: dict[str, Any]) -> str:
        return (f"on network {item['network_id']}: {item['mac_address']} "
                f"{[ip['ip_address'] for ip in item['fixed_ips']]}")

    def _enforce_create(self, ctx: Context, body: dict[str, Any], project: str,
                        network: Row[Any], shared: bool) -> None:
        target = port_target(project, network, body.get("device_owner", ""), shared)
        if not ctx.is_admin and network.project_id != project and not shared:
            # Visible through router:external only: not a network others may plug into.
            raise exc.NetworkNotFound(net_id=network.id)
        self.core.policy.enforce(ctx, "create_port", target)
        if ctx.is_admin:
            return
        checked = {k: v for k, v in body.items()
                   if k != "device_owner" or str(v).startswith("network:")}
        enforce_attrs(self.core, ctx, PORT, "create", checked, target)
        for ip in body.get("fixed_ips", []):
            for key in ("ip_address", "subnet_id"):
                if key in ip:
                    self.core.policy.enforce(ctx, f"create_port:fixed_ips:{key}", target)
        self._enforce_pairs(ctx, "create", body, target)

    def _enforce_pairs(self, ctx: Context, action: str, body: dict[str, Any],
                       target: dict[str, Any]) -> None:
        """`<action>_port:allowed_address_pairs:{mac_address,ip_address}` for what is set."""
        for key in ("mac_address", "ip_address"):
            if any(key in pair for pair in body.get("allowed_address_pairs") or []):
                self.core.policy.enforce(ctx, f"{action}_port:allowed_address_pairs:{key}",
                                         target)

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        network = self.networks.fetch(conn, ctx, body["network_id"])
        project = self.core.project_for(ctx, body)
        shared = network_access.is_shared_for(conn, network, project)
        self._enforce_create(ctx, body, project, network, shared)
        port_id = new_id()
        mac = body.get("mac_address")
        if mac is not None:
            self._check_mac_free(conn, network.id, mac)
        else:
            mac = random_mac(self.core.conf.base_mac, self._rng)
        vif_type, vif_details = binding_of(conn, body["binding:host_id"])
        trusted = psec.is_trusted(body["device_owner"])
        secured = False if trusted else body.get("port_security_enabled",
                                                 network.port_security_enabled)
        pairs = body.get("allowed_address_pairs") or []
        psec.check_pairs(pairs, secured, self.core.conf.max_allowed_address_pair)
        # Revision 1, as a port reads after Neutron's create (ML2 revises it for its binding).
        row = {
            "id": port_id, "project_id": project, "name": body["name"],
            "description": body["description"], "created_at": now, "updated_at": now,
            "revision_number": 1, "network_id": network.id, "mac_address": mac,
            "admin_state_up": body["admin_state_up"], "status": "DOWN",
            "device_id": body["device_id"], "device_owner": body["device_owner"],
            "binding_host_id": body["binding:host_id"], "binding_vif_type": vif_type,
            "binding_vif_details": vif_details, "binding_vnic_type": body["binding:vnic_type"],
            "binding_profile": body["binding:profile"],
            "port_security_enabled": secured,
        }
        conn.execute(_INSERT_PORT, row)
        every = self._subnets(conn, network.id)
        subnets = service_subnets(every, row["device_owner"])
        requested = body.get("fixed_ips")
        if every and not subnets and requested != []:
            raise exc.IpAddressGenerationFailureNoMatchingSubnet(
                network_id=network.id, service_type=row["device_owner"])
        wanted = self._default_ips(subnets) if requested is None else list(requested)
        if requested != [] and row["device_owner"] not in INTERFACE_OWNERS:
            wanted += auto_addressed(subnets, wanted)
        fixed = self._allocate(conn, network.id, port_id, subnets, wanted, mac)
        tags = insert_tags(conn, port_id, body.get("tags", []))
        groups = self._new_groups(conn, ctx, project, body, secured)
        psec.bind_groups(conn, port_id, groups, replace=False)
        stored_pairs = psec.set_pairs(conn, port_id, mac, pairs, replace=False)
        dhcp_opts = extra_dhcp_opts.set_opts(conn, port_id, body.get("extra_dhcp_opts") or [],
                                             replace=False)
        changes.record_port_groups(
            conn, port_id, groups, psec.hosts_of(row["binding_host_id"]),
            also=changes.rows_of("port", port_id, changes.network(network.id),
                                 hosts=[row["binding_host_id"]]))
        dhcp_subnets = {s["id"] for s in subnets if s["enable_dhcp"]}
        if row["device_owner"] != DHCP_OWNER and any(
                ip["subnet_id"] in dhcp_subnets for ip in fixed):
            self.core.dhcp_needed(conn, network.id)
        return render(row, fixed, tags, groups, stored_pairs, dhcp_opts)

    def _new_groups(self, conn: Connection, ctx: Context, project: str, body: dict[str, Any],
                    secured: bool) -> list[str]:
        """A new port's groups: those asked for, else its project's default group when it
        has port security."""
        requested = psec.requested_groups(body)
        if requested is None:
            if not secured:
                return []
            default = self.security_groups.ensure_default(conn, ctx, project)
            return [default] if default is not None else []
        psec.check_groups_allowed(requested, secured)
        psec.check_groups(conn, ctx, project, requested)
        return sorted(set(requested))

    def _check_mac_free(self, conn: Connection, network_id: str, mac: str) -> None:
        taken = conn.execute(select(PORTS.c.id).where(
            PORTS.c.network_id == network_id, PORTS.c.mac_address == mac)).first()
        if taken is not None:
            raise exc.MacAddressInUse(net_id=network_id, mac=mac)

    @staticmethod
    def _subnets(conn: Connection, network_id: str) -> list[dict[str, Any]]:
        rows = conn.execute(_NETWORK_SUBNETS, {"network_id": network_id})
        return [dict(r._mapping) for r in rows]

    @staticmethod
    def _default_ips(subnets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Without fixed_ips, a port gets one address per IP version from the pools, as
        Neutron does (auto-addressed IPv6 subnets give theirs besides)."""
        if any(s["ip_version"] == 4 for s in subnets):
            wanted: list[dict[str, Any]] = [{"ip_version": 4}]
        else:
            wanted = []
        if any(s["ip_version"] == 6 and not ipam.is_auto_address(s) for s in subnets):
            wanted.append({"ip_version": 6})
        return wanted

    def _allocate(self, conn: Connection, network_id: str, port_id: str,
                  subnets: list[dict[str, Any]], wanted: list[dict[str, Any]],
                  mac: str) -> list[dict[str, str]]:
        """Allocate each wanted address; return the port's fixed_ips in address order."""
        by_id = {s["id"]: s for s in subnets}
        rows = []
        for want in wanted:
            subnet, address = self._resolve(conn, network_id, by_id, subnets, want, mac)
            rows.append(ipam.allocation(subnet["id"], address, port_id, network_id))
        if rows:
            conn.execute(_INSERT_ALLOCS, rows)
        rows.sort(key=lambda r: r["ip_key"])
        return [{"subnet_id": r["subnet_id"], "ip_address": r["ip_address"]} for r in rows]

    def _resolve(self, conn: Connection, network_id: str, by_id: dict[str, dict[str, Any]],
                 subnets: list[dict[str, Any]], want: dict[str, Any],
                 mac: str) -> tuple[dict[str, Any], str]:
        """The subnet and address for one entry of fixed_ips."""
        if "ip_version" in want:  # a default allocation: first subnet of that version with room
            for subnet in subnets:
                if subnet["ip_version"] == want["ip_version"] and \
                        not ipam.is_auto_address(subnet):
                    picked = ipam.pick_address(conn, subnet, self._rng)
                    if picked is not None:
                        return subnet, picked
            raise exc.IpAddressGenerationFailure(net_id=network_id)
        address: str | None = want.get("ip_address")
        if "subnet_id" in want:
            found = by_id.get(want["subnet_id"])
            if found is None:
                raise exc.InvalidInput(error_message=(
                    f"Failed to create port on network {network_id}, because fixed_ips "
                    f"included invalid subnet {want['subnet_id']}"))
            subnet = found
        else:
            assert address is not None  # the validator requires subnet_id or ip_address
            matches = [s for s in subnets if ipam.address_in_subnet(s, address)]
            if not matches:
                raise exc.InvalidIpForNetwork(ip_address=address)
            subnet = matches[0]
        if address is None and ipam.is_auto_address(subnet):
            address = ipam.eui64_address(subnet, mac)
            if ipam.is_allocated(conn, subnet["id"], address):
                raise exc.IpAddressAlreadyAllocated(ip=address, subnet_id=subnet["id"])
            return subnet, address
        if address is None:
            address = ipam.pick_address(conn, subnet, self._rng)
            if address is None:
                raise exc.IpAddressGenerationFailure(net_id=network_id)
            return subnet, address
        ipam.check_address(subnet, address)
        if ipam.is_allocated(conn, subnet["id"], address):
            raise exc.IpAddressAlreadyAllocated(ip=address, subnet_id=subnet["id"])
        return subnet, address

    def update(self, ctx: Context, port_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a port's writable attributes, its fixed IPs included."""

        def txn(conn: Connection) -> dict[str, Any]:
            row, network = self.fetch(conn, ctx, port_id)
            target = port_target(row.project_id, network, row.device_owner)
            self.core.policy.enforce(ctx, "update_port", target)
            checked = {k: v for k, v in body.items()
                       if k != "device_owner" or str(v).startswith("network:")
                       or row.device_owner.startswith("network:")}
            enforce_attrs(self.core, ctx, PORT, "update", checked, target)
            self._enforce_pairs(ctx, "update", body, target)
            values: dict[str, Any] = {}
            for key, value in body.items():
                column = PORT.attr_map[key].column
                if column is not None:
                    values[column] = value
            if "mac_address" in body and body["mac_address"] != row.mac_address:
                if row.binding_host_id:
                    raise exc.Conflict(msg="port is bound")
                self._check_mac_free(conn, network.id, body["mac_address"])
            if "binding:host_id" in body:
                vif_type, details = binding_of(conn, body["binding:host_id"])
                values.update(binding_vif_type=vif_type, binding_vif_details=details)
            if "fixed_ips" in body:
                self._replace_fixed_ips(conn, network.id, row, body["fixed_ips"])
            self._update_security(conn, ctx, row, body)
            if body.get("extra_dhcp_opts"):
                current = extra_dhcp_opts.opts_of(conn, [port_id]).get(port_id, [])
                extra_dhcp_opts.set_opts(conn, port_id, extra_dhcp_opts.merged(
                    current, body["extra_dhcp_opts"]), replace=True)
            bump_revision(conn, PORTS, port_id, utcnow(), values)
            changes.record(conn, "port", port_id, changes.network(network.id),
                           hosts=[row.binding_host_id, body.get("binding:host_id")])
            fresh = conn.execute(select(PORTS).where(PORTS.c.id == port_id)).one()
            return self._render_one(conn, fresh)

        port = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Updated port %s: %s", port_id, sorted(body))
        return port

    def _update_security(self, conn: Connection, ctx: Context, row: Row[Any],
                         body: dict[str, Any]) -> None:
        """Port security, groups and pairs after an update (its fixed IPs already replaced),
        and the change logged for the agents when it concerns the port's groups."""
        secured = body.get("port_security_enabled", row.port_security_enabled)
        old_groups = port_groups(conn, [row.id]).get(row.id, [])
        if "allowed_address_pairs" in body:
            pairs = body["allowed_address_pairs"] or []
            psec.check_pairs(pairs, secured, self.core.conf.max_allowed_address_pair)
            psec.set_pairs(conn, row.id, body.get("mac_address", row.mac_address), pairs,
                           replace=True)
        elif not secured and psec.pairs_of(conn, [row.id]):
            raise exc.AddressPairAndPortSecurityRequired()
        requested = psec.requested_groups(body)
        new_groups = old_groups
        if requested is not None:
            psec.check_groups_allowed(requested, secured)
            psec.check_groups(conn, ctx, row.project_id, requested)
            new_groups = sorted(set(requested))
            if new_groups != old_groups:
                psec.bind_groups(conn, row.id, new_groups, replace=True)
        elif not secured and old_groups:
            raise exc.PortSecurityPortHasSecurityGroup()
        concerned = ("fixed_ips", "mac_address", "security_groups", "port_security_enabled",
                     "allowed_address_pairs")
        host = body.get("binding:host_id", row.binding_host_id)
        if any(k in body for k in concerned) or host != row.binding_host_id:
            changes.record_port_groups(conn, row.id, [*old_groups, *new_groups],
                                       psec.hosts_of(row.binding_host_id, host))

    def _replace_fixed_ips(self, conn: Connection, network_id: str, port: Row[Any],
                           wanted: list[dict[str, Any]]) -> None:
        """Keep the addresses still asked for, release the rest, allocate the new ones. An
        auto-addressed (SLAAC) address stays unless the port is a router's, as in Neutron."""
        port_id = port.id
        subnets = service_subnets(self._subnets(conn, network_id), port.device_owner)
        auto = {s["id"] for s in subnets if ipam.is_auto_address(s)}
        current = conn.execute(select(ALLOCS.c.subnet_id, ALLOCS.c.ip_address)
                               .where(ALLOCS.c.port_id == port_id)).all()
        keep: set[tuple[str, str]] = set()
        if port.device_owner not in INTERFACE_OWNERS:
            keep |= {(s, a) for s, a in current if s in auto}
        new: list[dict[str, Any]] = []
        for want in wanted:
            address = want.get("ip_address")
            match = next(((s, a) for s, a in current if a == address and (
                "subnet_id" not in want or want["subnet_id"] == s)), None)
            if match is not None and match not in keep:
                keep.add(match)
            else:
                new.append(want)
        for subnet_id, address in current:
            if (subnet_id, address) not in keep:
                conn.execute(delete(ALLOCS).where(ALLOCS.c.subnet_id == subnet_id,
                                                  ALLOCS.c.ip_address == address))
        # `{subnet_id}` alone asks for one address more on that subnet, except on an
        # auto-addressed one, where the port has its one EUI-64 address already.
        kept_auto = {s for s, _a in keep if s in auto}
        new = [w for w in new if w.get("subnet_id") not in kept_auto or "ip_address" in w]
        if new:
            self._allocate(conn, network_id, port_id, subnets, new, port.mac_address)

    def delete(self, ctx: Context, port_id: str) -> None:
        """Delete a port and release its addresses; its floating IPs are disassociated."""
        from neutrino.services.floatingips import disassociate_port


        def txn(conn: Connection) -> None:
            row, network = self.fetch(conn, ctx, port_id)
            self.core.policy.enforce(ctx, "delete_port",
                                     port_target(row.project_id, network, row.device_owner))
            if row.device_owner in L3_OWNED:
                raise exc.ServicePortInUse(port_id=port_id,
                                           reason=f"has device owner {row.device_owner}")
            disassociate_port(conn, port_id)
            groups = port_groups(conn, [port_id]).get(port_id, [])
            conn.execute(delete(ALLOCS).where(ALLOCS.c.port_id == port_id))
            conn.execute(delete(SG_PORT_BINDINGS).where(SG_PORT_BINDINGS.c.port_id == port_id))
            conn.execute(delete(PORTS).where(PORTS.c.id == port_id))
            delete_tags(conn, [port_id])
            changes.record(conn, "port", port_id, changes.network(network.id),
                           hosts=[row.binding_host_id])
            changes.record_port_groups(conn, port_id, groups, psec.hosts_of(row.binding_host_id))

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted port %s", port_id)

