"""Configuration options, registered once with oslo.config under Neutron's names.

Every option neutrino reads is declared here, so that `list_opts` can feed
`oslo-config-generator` and the sample configuration is generated, never written by hand.
Options found in a configuration file that neutrino does not declare are reported once by
`log_unused_options`: a `neutron.conf` written for Neutron must load, not fail.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Sequence

from oslo_config import cfg

LOG = logging.getLogger(__name__)

core_opts = [
    cfg.HostAddressOpt("bind_host", default="127.0.0.1", help="The host IP to bind the API to."),
    cfg.PortOpt("bind_port", default=9696, help="The port to bind the API to."),
    cfg.IntOpt(
        "api_workers",
        default=1,
        min=1,
        help="Number of API server processes. Keep 1 with the embedded SQLite database.",
    ),
    cfg.StrOpt(
        "auth_strategy",
        default="noauth",
        choices=[
            ("noauth", "Trust the X-Project-Id, X-User-Id and X-Roles headers (development)."),
            ("http_basic", "HTTP Basic authentication against http_basic_auth_user_file."),
            ("keystone", "Keystone tokens validated by keystonemiddleware ([keystone_authtoken], "
             "read as Neutron reads it)."),
        ],
        help="How API callers are authenticated.",
    ),
    cfg.StrOpt(
        "http_basic_auth_user_file",
        default="$state_path/users.json",
        help="File of users (bcrypt password hashes, project and roles) for http_basic auth; "
        "managed with `neutrino user add|list|remove`.",
    ),
    cfg.IntOpt(
        "auth_failures_per_user",
        default=5,
        min=1,
        help="Failed http_basic logins of one user name within auth_failure_window before "
        "its logins are refused with 429 for a while (doubling with each further failure).",
    ),
    cfg.IntOpt(
        "auth_failures_per_source",
        default=20,
        min=1,
        help="Failed http_basic logins from one client address within auth_failure_window "
        "before its logins are refused with 429 for a while.",
    ),
    cfg.FloatOpt(
        "auth_failure_window",
        default=60.0,
        min=1.0,
        help="Seconds without a failed login after which a user's or an address's failures "
        "are forgotten; also the longest a throttled user or address waits.",
    ),
    cfg.FloatOpt(
        "auth_cache_ttl",
        default=60.0,
        min=0.0,
        help="Seconds an unused verified user name and password are remembered (bcrypt "
        "costs a quarter of a second of CPU); a changed password or users file forgets them "
        "at once.",
    ),
    cfg.StrOpt(
        "state_path",
        default="/var/lib/neutrino",
        help="Where neutrino keeps its state (the embedded database, the users file).",
    ),
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="example.domain",
               help="The name of this host, as agents and the server report it."),
    cfg.BoolOpt(
        "allow_overlapping_ips",
        default=False,
        help="Allow overlapping subnet CIDRs between networks of one project.",
    ),
    cfg.StrOpt(
        "base_mac",
        default="fa:16:3e:00:00:00",
        help="Base MAC address for ports; '00' octets are replaced by random ones.",
    ),
    cfg.IntOpt(
        "dhcp_lease_duration",
        default=86400,
        help="DHCP lease duration in seconds; -1 means infinite.",
    ),
    cfg.IntOpt(
        "global_physnet_mtu",
        default=1500,
        min=68,
        help="MTU of the underlying physical network; overlay networks subtract their overhead.",
    ),
    cfg.IntOpt("max_dns_nameservers", default=5, help="Maximum DNS nameservers per subnet."),
    cfg.IntOpt("max_subnet_host_routes", default=20, help="Maximum host routes per subnet."),
    cfg.IntOpt("max_allowed_address_pair", default=10,
               help="Maximum allowed address pairs per port."),
    cfg.IntOpt(
        "pagination_max_limit",
        default=-1,
        help="The most items one list call returns; -1 means no limit.",
    ),
    cfg.ListOpt(
        "default_availability_zones",
        default=[],
        help="Availability zones for resources created without hints.",
    ),
]

agent_server_opts = [
    cfg.IntOpt(
        "agent_down_time",
        default=3,
        min=1,
        help="Seconds after an agent's last report before it counts as dead and its "
        "networks and routers move. Keep it at least twice the agents' report_interval "
        "(Neutron: 75, and it moves them only after twice that).",
    ),
    cfg.IntOpt(
        "dhcp_agents_per_network",
        default=1,
        min=1,
        help="How many DHCP agents host each network.",
    ),
    cfg.StrOpt(
        "network_scheduler_driver",
        default="neutron.scheduler.dhcp_agent_scheduler.WeightScheduler",
        help="How networks are placed on DHCP agents: ChanceScheduler (random), "
        "WeightScheduler (least loaded by dhcp_load_type) or AZAwareWeightScheduler (spread "
        "over availability zones, then least loaded); Neutron's class paths or those names.",
    ),
    cfg.StrOpt(
        "dhcp_load_type",
        default="networks",
        choices=["networks", "subnets", "ports"],
        help="What counts as load for the WeightScheduler.",
    ),
    cfg.BoolOpt(
        "network_auto_schedule",
        default=True,
        help="Give networks short of DHCP agents to agents that register or come back.",
    ),
    cfg.BoolOpt(
        "allow_automatic_dhcp_failover",
        default=True,
        help="Move the networks of dead DHCP agents to live ones.",
    ),
    cfg.IntOpt(
        "dhcp_failover_grace",
        default=0,
        min=0,
        help="Seconds an agent must have been dead before its networks and routers move "
        "(0: at once). Neutron waits agent_down_time * 2 after the last report; setting "
        "this to agent_down_time gives the same.",
    ),
    cfg.FloatOpt(
        "failover_check_interval",
        default=0.5,
        min=0.1,
        help="Seconds between two passes of the failover and auto-scheduling task.",
    ),
]

l3_server_opts = [
    cfg.StrOpt("router_scheduler_driver",
               default="neutron.scheduler.l3_agent_scheduler.LeastRoutersScheduler",
               help="How routers are placed on L3 agents: LeastRoutersScheduler (fewest "
               "routers), ChanceScheduler (random) or AZLeastRoutersScheduler (spread over "
               "availability zones, then fewest); Neutron's class paths or those names."),
    cfg.BoolOpt("router_auto_schedule", default=True,
                help="Give routers without an L3 agent to agents that register or come back."),
    cfg.BoolOpt("allow_automatic_l3agent_failover", default=True,
                help="Move the routers of dead L3 agents to live ones, after the same grace "
                "as DHCP networks (Neutron's default is False)."),
    cfg.BoolOpt("enable_snat_by_default", default=True,
                help="SNAT on a router's gateway when external_gateway_info does not say."),
    cfg.IntOpt("max_routes", default=30, min=0,
               help="Extra routes a router may have (Neutron's router_route quota)."),
    cfg.BoolOpt("router_distributed", default=False,
                help="Distributed routers by default (not supported yet: must stay False)."),
    cfg.BoolOpt("l3_ha", default=False,
                help="HA routers (VRRP between L3 agents) when a create does not say."),
    cfg.IntOpt("max_l3_agents_per_router", default=3, min=0,
               help="L3 agents an HA router is hosted by (0: every eligible agent)."),
    cfg.StrOpt("l3_ha_net_cidr", default="169.254.192.0/18",
               help="The subnet of the HA networks, on which VRRP runs."),
    cfg.StrOpt("l3_ha_network_type", default="",
               help="The network type of HA networks; empty: the first of "
               "tenant_network_types."),
    cfg.StrOpt("l3_ha_network_physical_name", default="",
               help="The physical network of HA networks of a flat or VLAN type."),
]

l3_agent_opts = [
    cfg.StrOpt("agent_mode", default="legacy",
               choices=["legacy", "dvr", "dvr_snat", "dvr_no_external"],
               help="What the L3 agent hosts: legacy (centralized) routers; the dvr modes "
               "come with distributed routers."),
    cfg.StrOpt("interface_driver", default="linuxbridge",
               help="Reported in the agent's configurations; neutrino's L3 agent always "
               "plugs router ports as veth pairs the Linux bridge agent bridges."),
    cfg.StrOpt("external_network_bridge", default="",
               help="Accepted as the seeds write it (empty); the external network is a flat "
               "or VXLAN network like any other."),
    cfg.BoolOpt("handle_internal_only_routers", default=True,
                help="Host routers without an external gateway too."),
    cfg.StrOpt("ha_confs_path", default="$state_path/ha_confs",
               help="Where each HA router's keepalived files go (a directory per router)."),
    cfg.FloatOpt("ha_vrrp_advert_int", default=0.2, min=0.01, max=255,
                 help="Seconds between VRRP adverts (Neutron: 2); a backup takes over after "
                 "about three missed ones. Fractional values use VRRPv3."),
    cfg.StrOpt("ha_vrrp_auth_type", default="PASS", choices=["PASS"],
               help="VRRP authentication type (VRRPv2 only: VRRPv3 has none)."),
    cfg.StrOpt("ha_vrrp_auth_password", secret=True,
               help="VRRP password (its first 8 characters; VRRPv2 only)."),
    cfg.IntOpt("ha_vrrp_health_check_interval", default=0, min=0,
               help="Seconds between keepalived's pings of the router's gateways on the "
               "primary node; after two misses it gives the router up (0: no check)."),
    cfg.ListOpt("ha_vrrp_track_interfaces", default=[],
                help="Host interfaces every HA router on this host depends on: the underlay "
                "that carries the HA network's tunnels, the external uplinks. While one is "
                "down, without carrier or missing, every HA router here is in FAULT: "
                "keepalived gives its addresses up at once (a host cut off from its peers "
                "does not serve beside the one that took over), and comes back as a backup "
                "when they are up (empty: none tracked, as Neutron)."),
    cfg.BoolOpt("ha_conntrackd_enabled", default=True,
                help="conntrackd beside each HA router's keepalived: the hosts share their "
                "connection tracking state, so that established connections and their NAT "
                "mappings survive a failover (Neutron: off by default)."),
]

agent_opts = [
    cfg.FloatOpt("report_interval", default=1.0, min=0.1,
                 help="Seconds between an agent's reports to the server (Neutron: 30)."),
    cfg.StrOpt("availability_zone", default="nova",
               help="The availability zone this agent serves."),
    cfg.URIOpt("server_url", default="http://127.0.0.1:9696",
               help="Where the agent reaches neutrino-server."),
    cfg.StrOpt("server_username", default="neutrino-agent",
               help="The service user the agent logs in as (a user with the service role) "
               "over HTTP Basic, unless [service_auth] names a Keystone user."),
    cfg.StrOpt("server_password", default="", secret=True,
               help="That user's password."),
    cfg.FloatOpt("watch_timeout", default=30.0, min=1.0,
                 help="Seconds one watch may wait for changes before asking again."),
    cfg.FloatOpt("resync_interval", default=30.0, min=1.0,
                 help="Seconds between full reconcile passes, which find nothing to do when "
                 "all is well."),
    cfg.StrOpt("dataplane", default="noop", choices=["noop", "linux"],
               help="What the agent does on the host: noop records the desired state only; "
               "linux makes bridges, VXLAN devices and tap plugging (Linux bridge agent), or "
               "one dnsmasq per network in qdhcp-<network> (DHCP agent)."),
    cfg.StrOpt("host_namespace",
               help="Network namespace standing for this agent's host (the lab runs several "
               "hosts on one kernel). The agent's bridges, VXLAN devices and taps are made "
               "there, and its DHCP namespaces are named <host_namespace>-qdhcp-<network>; "
               "unset, the agent works in its own namespace with Neutron's names."),
    cfg.IntOpt("reconcile_workers", default=4, min=1,
               help="Threads applying networks in parallel during a pass (Neutron's DHCP "
               "agent resyncs with 4)."),
    cfg.IntOpt("loop_failure_limit", default=10, min=1,
               help="Unexpected errors in a row after which one of the agent's loops "
               "(heartbeat, watch, reconcile) gives up: the agent then stops reporting and "
               "exits non-zero, so that the server moves its resources to a live agent."),
    cfg.FloatOpt("stall_timeout", default=300.0, min=1.0,
                 help="Seconds one resource may take to apply before the agent counts as "
                 "stuck and exits (its heartbeats stop, its resources fail over)."),
    cfg.FloatOpt("polling_interval", default=1.0, min=0.1,
                 help="Seconds between two looks at the host for drift (a tap appearing, "
                 "a dnsmasq gone), repaired without waiting for the full pass."),
]

dhcp_agent_opts = [
    cfg.StrOpt("dhcp_driver", default="neutrino.agent.dhcp.Dnsmasq",
               help="Reported in the agent's configurations, as Neutron's agent does."),
]

vxlan_opts = [
    cfg.StrOpt("local_ip", default="", help="This host's tunnel endpoint address."),
]

linux_bridge_opts = [
    cfg.ListOpt("physical_interface_mappings", default=[],
                help="physnet:interface pairs for flat networks."),
]

securitygroup_opts = [
    cfg.BoolOpt("enable_security_group", default=True,
                help="Whether the Linux bridge agent enforces security groups, port "
                "security and anti-spoofing on its host."),
    cfg.StrOpt("firewall_driver", default="nftables",
               help="How: nftables (one table of neutrino's per host namespace). Neutron's "
               "iptables and iptables_hybrid drivers (names or class paths) mean the same; "
               "noop turns enforcement off. The root namespace is never touched: without "
               "[AGENT] host_namespace the agent refuses to filter and logs it."),
]

quota_opts = [
    cfg.IntOpt("default_quota", default=-1,
               help="The limit of a resource with no quota option of its own (-1: none)."),
    cfg.IntOpt("quota_network", default=100, help="Networks per project (-1: no limit)."),
    cfg.IntOpt("quota_subnet", default=100, help="Subnets per project (-1: no limit)."),
    cfg.IntOpt("quota_port", default=500, help="Ports per project (-1: no limit)."),
    cfg.IntOpt("quota_router", default=10, help="Routers per project (-1: no limit)."),
    cfg.IntOpt("quota_floatingip", default=50,
               help="Floating IPs per project (-1: no limit)."),
    cfg.IntOpt("quota_security_group", default=10,
               help="Security groups per project (-1: no limit)."),
    cfg.IntOpt("quota_security_group_rule", default=100,
               help="Security group rules per project (-1: no limit)."),
    cfg.IntOpt("quota_rbac_policy", default=10,
               help="RBAC policies per project (-1: no limit)."),
    cfg.StrOpt("quota_driver", default="neutron.db.quota.driver_nolock.DbQuotaNoLockDriver",
               help="Accepted as Neutron's configs name it; neutrino counts in the "
               "creating transaction, under a per-project lock, whatever it says."),
]

database_opts = [
    cfg.StrOpt(
        "connection",
        default="sqlite:///$state_path/neutrino.sqlite",
        secret=True,
        help="SQLAlchemy URL of the database: sqlite:///..., postgresql+psycopg://..., "
        "mysql+pymysql://...",
    ),
    cfg.IntOpt("max_pool_size", default=20, help="Connections kept open per server process."),
    cfg.IntOpt("max_overflow", default=40, help="Extra connections allowed above the pool."),
    cfg.IntOpt(
        "max_retries",
        default=10,
        help="Retries of a transaction that lost a race (deadlock, duplicate allocation).",
    ),
]

ml2_opts = [
    cfg.ListOpt(
        "type_drivers",
        default=["local", "flat", "vxlan"],
        help="Network types that may be created.",
    ),
    cfg.ListOpt(
        "tenant_network_types",
        default=["vxlan"],
        help="Network types for project networks, in order of preference.",
    ),
    cfg.ListOpt("mechanism_drivers", default=["linuxbridge"], help="L2 mechanisms in use."),
    cfg.IntOpt(
        "path_mtu",
        default=0,
        help="Largest MTU of the overlay path; 0 uses global_physnet_mtu.",
    ),
]

ml2_type_vxlan_opts = [
    cfg.ListOpt(
        "vni_ranges",
        default=["1:65535"],
        help="MIN:MAX ranges of VXLAN VNIs available to project networks.",
    ),
]

ml2_type_flat_opts = [
    cfg.ListOpt(
        "flat_networks",
        default=["*"],
        help="Physical networks on which flat networks may be created; '*' allows any.",
    ),
]

def _service_auth_opts(plugin: bool = False) -> list[cfg.Opt]:
    """`[service_auth]`: the Keystone user an agent logs in as (keystoneauth's options, as
    Neutron's `[nova]`); with no `auth_type` the agent uses HTTP Basic instead. Only
    `auth_type` and `auth_section` are registered up front: keystoneauth registers the
    named plugin's options (some of them required) when it loads it; the sample lists the
    password plugin's."""
    from keystoneauth1 import loading

    opts = loading.get_auth_common_conf_options()
    return opts + loading.get_auth_plugin_conf_options("password") if plugin else opts


OPT_GROUPS: list[tuple[str | None, Sequence[cfg.Opt]]] = [
    (None, core_opts),
    (None, agent_server_opts),
    (None, l3_server_opts),
    (None, l3_agent_opts),
    ("database", database_opts),
    ("AGENT", agent_opts),
    ("service_auth", _service_auth_opts()),
    (None, dhcp_agent_opts),
    ("VXLAN", vxlan_opts),
    ("LINUX_BRIDGE", linux_bridge_opts),
    ("SECURITYGROUP", securitygroup_opts),
    ("QUOTAS", quota_opts),
    ("ml2", ml2_opts),
    ("ml2_type_vxlan", ml2_type_vxlan_opts),
    ("ml2_type_flat", ml2_type_flat_opts),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every neutrino option on `conf` (idempotent)."""
    for group, opts in OPT_GROUPS:
        for opt in opts:
            if group is None:
                if opt.dest not in conf:
                    conf.register_opt(opt)
            elif group not in conf or opt.dest not in conf[group]:
                conf.register_opt(opt, group=group)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Return the options for oslo-config-generator."""
    return [(group or "DEFAULT", list(_service_auth_opts(plugin=True)
                                      if group == "service_auth" else opts))
            for group, opts in OPT_GROUPS]


def unused_options(conf: cfg.ConfigOpts, files: Sequence[str]) -> list[tuple[str, str]]:
    """Return (section, option) pairs set in `files` that neutrino does not declare."""
    # oslo.config matches group names without regard to case ([vxlan] is [VXLAN]).
    known = {name.lower(): set(group._opts) for name, group in conf._groups.items()}
    known["default"] = set(conf._opts)
    unused: list[tuple[str, str]] = []
    for path in files:
        sections: dict[str, dict[str, list[str]]] = {}
        cfg.ConfigParser(path, sections).parse()
        for section, values in sections.items():
            names = known.get(section.lower(), set())
            unused.extend((section, key) for key in values if key not in names)
    return unused


def log_unused_options(conf: cfg.ConfigOpts, files: Iterable[str]) -> None:
    """Log, once per option, what the configuration files set that neutrino ignores."""
    for section, key in sorted(set(unused_options(conf, list(files)))):
        LOG.info("Ignoring option [%s] %s: neutrino does not use it", section, key)
