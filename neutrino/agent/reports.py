"""What agents say of themselves: Neutron's `configurations`.

One definition for the fake and the Linux data planes alike, so that switching the data
plane changes what the host does, not what the agent reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from oslo_config import cfg

from neutrino.agent.dhcp.plan import DhcpPlan


def dhcp_configurations(conf: cfg.ConfigOpts, plans: Iterable[DhcpPlan]) -> dict[str, Any]:
    """A DHCP agent's configurations, counted from the networks it serves."""
    served = list(plans)
    return {
        "dhcp_driver": conf.dhcp_driver,
        "dhcp_lease_duration": conf.dhcp_lease_duration,
        "log_agent_heartbeats": False,
        "notifies_port_ready": True,
        "networks": len(served),
        "subnets": sum(len(p.subnets) for p in served),
        "ports": sum(p.ports for p in served),
    }


def interface_mappings(conf: cfg.ConfigOpts) -> dict[str, str]:
    """physnet -> interface, from `[LINUX_BRIDGE] physical_interface_mappings`."""
    return dict(m.split(":", 1) for m in conf.LINUX_BRIDGE.physical_interface_mappings
                if ":" in m)


def l2_configurations(conf: cfg.ConfigOpts, devices: int) -> dict[str, Any]:
    """A Linux bridge agent's configurations."""
    mappings = interface_mappings(conf)
    local_ip = conf.VXLAN.local_ip
    return {"interface_mappings": mappings, "bridge_mappings": {}, "devices": devices,
            "tunneling_ip": local_ip, "tunnel_types": ["vxlan"] if local_ip else [],
            "l2_population": True}
