"""Network segments: which type a network gets, its VNI or physical network, and its MTU.

A segment is owned through a row of `segment_allocations`, whose primary key is the segment
itself; two networks asking for the same VNI at once collide there, and the loser's
transaction is retried with the next free VNI.
"""

from __future__ import annotations

from dataclasses import dataclass

from oslo_config import cfg
from sqlalchemy import Connection, insert, select

from neutrino import exceptions as exc
from neutrino.db.models import SEGMENTS

VXLAN_OVERHEAD_V4 = 50  # outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)
MAX_VNI = 2**24 - 1


@dataclass(frozen=True)
class Segment:
    """A network's segment as the provider attributes show it."""

    network_type: str
    physical_network: str | None
    segmentation_id: int | None


def parse_vni_ranges(ranges: list[str]) -> list[tuple[int, int]]:
    """Parse `MIN:MAX` entries of `[ml2_type_vxlan] vni_ranges`."""
    parsed = []
    for entry in ranges:
        try:
            low, high = (int(x) for x in entry.split(":"))
        except ValueError:
            raise ValueError(f"Invalid VNI range {entry!r}: expected MIN:MAX") from None
        if not 1 <= low <= high <= MAX_VNI:
            raise ValueError(f"Invalid VNI range {entry!r}: must be within 1:{MAX_VNI}")
        parsed.append((low, high))
    return sorted(parsed)


def max_mtu(conf: cfg.ConfigOpts, network_type: str) -> int:
    """The largest MTU a network of this type can carry."""
    physical = conf.global_physnet_mtu
    if network_type == "vxlan":
        path = conf.ml2.path_mtu or physical
        return min(path, physical) - VXLAN_OVERHEAD_V4
    return physical


def _free_vni(conn: Connection, ranges: list[tuple[int, int]]) -> int | None:
    for low, high in ranges:
        used = conn.execute(
            select(SEGMENTS.c.segmentation_id)
            .where(SEGMENTS.c.network_type == "vxlan", SEGMENTS.c.physical_network == "",
                   SEGMENTS.c.segmentation_id.between(low, high))
            .order_by(SEGMENTS.c.segmentation_id)).scalars()
        expected = low
        for vni in used:
            if vni != expected:
                return expected
            expected += 1
        if expected <= high:
            return expected
    return None


def _check_requested(conf: cfg.ConfigOpts, seg: Segment) -> None:
    if seg.network_type not in conf.ml2.type_drivers:
        raise exc.InvalidInput(error_message=f"network_type value '{seg.network_type}' "
                                             "not supported")
    if seg.network_type == "flat":
        if seg.segmentation_id is not None:
            raise exc.InvalidInput(error_message="segmentation_id specified for flat network")
        if not seg.physical_network:
            raise exc.InvalidInput(error_message="physical_network required for flat provider "
                                                 "network")
        allowed = conf.ml2_type_flat.flat_networks
        if "*" not in allowed and seg.physical_network not in allowed:
            raise exc.InvalidInput(error_message=f"physical_network '{seg.physical_network}' "
                                                 "unknown for flat provider network")
    elif seg.network_type == "vxlan":
        if seg.physical_network:
            raise exc.InvalidInput(error_message="provider:physical_network specified for "
                                                 "vxlan network")
        if seg.segmentation_id is not None and not 1 <= seg.segmentation_id <= MAX_VNI:
            raise exc.InvalidInput(error_message=f"segmentation_id out of range (1 through "
                                                 f"{MAX_VNI})")
    elif seg.physical_network or seg.segmentation_id is not None:
        raise exc.InvalidInput(error_message="provider:physical_network and "
                                             "provider:segmentation_id are not allowed for a "
                                             "local network")


def allocate(conn: Connection, conf: cfg.ConfigOpts, network_id: str,
             requested: Segment | None) -> Segment:
    """Give the network its segment: the requested one if free, else a project segment."""
    if requested is None:
        network_type = conf.ml2.tenant_network_types[0] if conf.ml2.tenant_network_types \
            else "local"
        if network_type == "vxlan":
            vni = _free_vni(conn, parse_vni_ranges(conf.ml2_type_vxlan.vni_ranges))
            if vni is None:
                raise exc.NoNetworkAvailable()
            segment = Segment("vxlan", None, vni)
        else:
            segment = Segment(network_type, None, None)
    else:
        _check_requested(conf, requested)
        segment = requested
        if segment.network_type == "vxlan" and segment.segmentation_id is None:
            vni = _free_vni(conn, parse_vni_ranges(conf.ml2_type_vxlan.vni_ranges))
            if vni is None:
                raise exc.NoNetworkAvailable()
            segment = Segment("vxlan", None, vni)
    if segment.network_type in ("vxlan", "flat"):
        key = {"network_type": segment.network_type,
               "physical_network": segment.physical_network or "",
               "segmentation_id": segment.segmentation_id or 0}
        taken = conn.execute(select(SEGMENTS.c.network_id).filter_by(**key)).first()
        if taken is not None:
            shown = segment.physical_network if segment.network_type == "flat" \
                else segment.segmentation_id
            raise exc.SegmentationIdInUse(network_type=segment.network_type, segment=shown)
        conn.execute(insert(SEGMENTS).values(network_id=network_id, **key))
    return segment
