"""keepalived.conf, the health-check script and the command line of an HA router, against
whole expected texts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from neutrino.agent.l3.keepalived import (
    RELOAD_SIGNAL,
    Address,
    HaPlan,
    Paths,
    command,
    daemon,
    health_check_text,
    render,
    vip_address,
)
from neutrino.agent.linux.kernel import Route

ROUTER = "7a0c5a3e-1f2b-4c3d-9e8f-0a1b2c3d4e5f"
HA, QR, QG = "ha-8f0e1d2c-3b", "qr-11111111-22", "qg-66666666-77"
BASE = "/var/lib/neutrino/ha_confs/7a0c5a3e-1f2b-4c3d-9e8f-0a1b2c3d4e5f"
CHECK, NOTIFY, CONNTRACKD = f"{BASE}/ha_check_script.sh", f"{BASE}/notify.sh", \
    f"{BASE}/conntrackd.sh"
GATEWAY = Route("default", "203.0.113.1", QG)


def plan(**overrides: Any) -> HaPlan:
    """A router with an internal port, a gateway with a floating IP, an IPv6 link-local
    address, an on-link route and an extra route, in deliberately unsorted order."""
    fields: dict[str, Any] = {
        "router_id": ROUTER, "vrid": 7, "ha_device": HA, "ha_cidr": "169.254.192.5/18",
        "excluded": (Address("203.0.113.101/24", QG), Address("fe80::f816:3eff:feaa:1/64", QR),
                     Address("10.60.0.1/24", QR), Address("203.0.113.50/32", QG)),
        "routes": (GATEWAY, Route("198.51.100.0/24", None, QG),
                   Route("172.20.0.0/16", "10.60.0.254", QR))}
    fields.update(overrides)
    return HaPlan(**fields)


HEADER = f"""\
# keepalived for HA router {ROUTER}, written by neutrino.
global_defs {{
    router_id neutrino
    script_user root
    enable_script_security
}}
"""

VIPS = f"""\
    virtual_ipaddress {{
        169.254.0.7/24 dev {HA}
    }}
    virtual_ipaddress_excluded {{
        10.60.0.1/24 dev {QR} no_track
        203.0.113.101/24 dev {QG} no_track
        203.0.113.50/32 dev {QG} no_track
        fe80::f816:3eff:feaa:1/64 dev {QR} no_track
    }}
"""

ROUTES = f"""\
    virtual_routes {{
        172.20.0.0/16 via 10.60.0.254 dev {QR} no_track protocol static
        198.51.100.0/24 dev {QG} scope link no_track protocol static
        0.0.0.0/0 via 203.0.113.1 dev {QG} no_track protocol static
    }}
"""


def instance(version: int = 2, advert_int: str = "2", priority: int = 50) -> str:
    """The instance's first lines, as every rendering has them."""
    return f"""
vrrp_instance VR_7 {{
    state BACKUP
    interface {HA}
    virtual_router_id 7
    priority {priority}
    version {version}
    advert_int {advert_int}
    nopreempt
    garp_master_delay 60
"""


def test_a_plain_router() -> None:
    """Only the VRID's address is advertised; the router's addresses, sorted, and its
    routes follow the primary without being tracked."""
    assert render(plan()) == HEADER + instance() + VIPS + ROUTES + "}\n"


def test_gratuitous_arps_repeated_while_primary() -> None:
    """With a refresh, the primary repeats its gratuitous ARPs (bridges that learned the
    router's MAC elsewhere learn it back)."""
    assert render(plan(garp_master_refresh=1)) == (
        HEADER + instance() + "    garp_master_refresh 1\n" + VIPS + ROUTES + "}\n")


def test_unicast_peers() -> None:
    """With peers, adverts go to them alone, from this node's HA address."""
    assert render(plan(unicast_peers=("169.254.192.12", "169.254.192.3"))) == (
        HEADER + instance() + """\
    unicast_src_ip 169.254.192.5
    unicast_peer {
        169.254.192.3
        169.254.192.12
    }
""" + VIPS + ROUTES + "}\n")


def test_a_password_is_cut_to_eight_characters_under_vrrpv2() -> None:
    """keepalived reads only the first 8 characters: only those are written."""
    assert render(plan(auth_password="s3cr3tpassw0rd", priority=100, advert_int=1)) == (
        HEADER + instance(advert_int="1", priority=100) + """\
    authentication {
        auth_type PASS
        auth_pass s3cr3tpa
    }
""" + VIPS + ROUTES + "}\n")


def test_a_fractional_advert_int_takes_vrrpv3_and_drops_the_password() -> None:
    """VRRPv2 counts whole seconds; VRRPv3 has no authentication, so the password is left
    out and the file says why."""
    ha = plan(advert_int=0.2, auth_password="s3cr3t")
    assert ha.version == 3 and ha.password is None and ha.password_ignored
    assert render(ha) == (
        HEADER + instance(version=3, advert_int="0.2")
        + "    # no authentication: VRRPv3 has none (the password is ignored)\n"
        + VIPS + ROUTES + "}\n")


def test_health_check_notify_and_conntrackd() -> None:
    """A vrrp_script tracked by the instance, one notify script for every state, and the
    conntrackd script on the three transitions it acts on."""
    assert render(plan(health_check_interval=5, health_check_script=CHECK,
                       notify_script=NOTIFY, conntrackd_script=CONNTRACKD)) == (
        HEADER + f"""
vrrp_script ha_health_check_7 {{
    script {CHECK}
    interval 5
    fall 2
    rise 2
}}
""" + instance() + f"""\
    track_script {{
        ha_health_check_7
    }}
    notify {NOTIFY}
    notify_master "{CONNTRACKD} primary"
    notify_backup "{CONNTRACKD} backup"
    notify_fault "{CONNTRACKD} fault"
""" + VIPS + ROUTES + "}\n")


def test_the_host_links_file() -> None:
    """The host links' file, declared once and tracked by the instance with weight 0 (any
    non-zero value is FAULT, not a priority change)."""
    track = "/var/lib/neutrino/ha_confs/host-links"
    assert render(plan(track_file=track)) == HEADER + f"""
track_file host_links {{
    file {track}
}}
""" + instance() + """\
    track_file {
        host_links weight 0
    }
""" + VIPS + ROUTES + "}\n"


def test_no_gateway_no_health_check() -> None:
    """Without a default route there is nothing to check: no vrrp_script, even when asked;
    without routes no virtual_routes; an address on the ha- device stays tracked."""
    ha = plan(routes=(), health_check_interval=5, health_check_script=CHECK,
              excluded=(Address("10.60.0.1/24", QR), Address("fe80::1/64", HA)))
    assert not ha.health_checked
    assert render(ha) == HEADER + instance() + f"""\
    virtual_ipaddress {{
        169.254.0.7/24 dev {HA}
    }}
    virtual_ipaddress_excluded {{
        10.60.0.1/24 dev {QR} no_track
        fe80::1/64 dev {HA}
    }}
}}
"""


def test_a_rendering_is_the_same_for_the_same_router() -> None:
    """Order and duplicates in the inputs do not change the text (no needless reload)."""
    ha = plan()
    shuffled = plan(excluded=tuple(reversed(ha.excluded)) + ha.excluded[:1],
                    routes=tuple(reversed(ha.routes)))
    assert render(shuffled) == render(ha)


@pytest.mark.parametrize(("advert_int", "vrrp_version", "version"), [
    (2, None, 2), (2.0, None, 2), (1, 3, 3), (0.2, None, 3), (1.5, None, 3), (40.95, 3, 3)])
def test_the_vrrp_version(advert_int: float, vrrp_version: int | None, version: int) -> None:
    """VRRPv2 unless the interval is fractional or VRRPv3 is asked for."""
    assert plan(advert_int=advert_int, vrrp_version=vrrp_version).version == version


@pytest.mark.parametrize("overrides", [
    {"vrid": 0}, {"vrid": 255}, {"priority": 0}, {"priority": 255}, {"vrrp_version": 1},
    {"advert_int": 0.2, "vrrp_version": 2}, {"advert_int": 0}, {"advert_int": 256},
    {"advert_int": 0.005}, {"advert_int": 41, "vrrp_version": 3}, {"advert_int": 0.125},
    {"health_check_interval": -1}, {"ha_cidr": "169.254.0.9/16"}, {"ha_device": ""},
    {"notify_script": "/a path/notify.sh"}, {"health_check_script": "/x#y"},
    {"track_file": "/a path/host-links"},
    {"auth_password": "pass word"}, {"excluded": (Address("10.0.0.1/24", "qr-{x}"),)},
    {"excluded": (Address("10.0.0.300/24", QR),)}, {"routes": (Route("default", "gw"),)},
    {"routes": (Route("10.0.0/8", "10.0.0.1"),)}, {"ha_cidr": "169.254.192.5/33"}],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_plans_keepalived_would_misread_are_refused(overrides: dict[str, Any]) -> None:
    """Values keepalived would round, ignore or misparse, and VRIDs whose address would
    collide, are errors in the plan rather than surprises on the host."""
    with pytest.raises(ValueError, match=ROUTER):
        plan(**overrides)


def test_an_empty_password_is_no_password() -> None:
    """An option left blank means no authentication, under either version."""
    for advert_int in (2, 0.5):
        ha = plan(auth_password="", advert_int=advert_int)
        assert ha.password is None and not ha.password_ignored
        assert "authentication" not in render(ha)


@pytest.mark.parametrize(("vrid", "address"), [
    (1, "169.254.0.1/24"), (7, "169.254.0.7/24"), (254, "169.254.0.254/24")])
def test_vip_address(vrid: int, address: str) -> None:
    """The VRID's own address, on the ha- device."""
    assert vip_address(vrid) == address


@pytest.mark.parametrize("vrid", [0, 255, 256, -1])
def test_vip_address_out_of_range(vrid: int) -> None:
    """255 would be the broadcast address of the /24."""
    with pytest.raises(ValueError):
        vip_address(vrid)


def test_health_check_script() -> None:
    """Success where the router's first address is absent; else each default route's
    nexthop must answer one ping (a link-local one through its device)."""
    ha = plan(routes=(GATEWAY, Route("::/0", "fe80::1", QG),
                      Route("172.20.0.0/16", "10.60.0.254", QR)))
    assert health_check_text(ha) == f"""\
#!/bin/sh
# Health check of HA router {ROUTER} (VRID 7), run by keepalived; written by neutrino.
# A backup holds none of the router's addresses: nothing to check there.
[ -n "$(ip -o addr show dev {QR} to 10.60.0.1/32)" ] || exit 0
ping -c 1 -w 1 203.0.113.1 >/dev/null 2>&1 || exit 1
ping -c 1 -w 1 -I {QG} fe80::1 >/dev/null 2>&1 || exit 1
exit 0
"""


def test_health_check_script_without_gateway_or_addresses() -> None:
    """Nothing to ping, or nothing held: always healthy."""
    expected = f"""\
#!/bin/sh
# Health check of HA router {ROUTER} (VRID 7), run by keepalived; written by neutrino.
exit 0
"""
    assert health_check_text(plan(routes=())) == expected
    assert health_check_text(plan(excluded=())) == expected


def test_health_check_of_an_ipv6_address() -> None:
    """The presence test uses the address's family's host prefix."""
    ha = plan(excluded=(Address("2001:db8::1/64", QG),), routes=(Route("::/0", "2001:db8::ff"),))
    lines = health_check_text(ha).splitlines()
    assert lines[3:5] == [f'[ -n "$(ip -o addr show dev {QG} to 2001:db8::1/128)" ] || exit 0',
                          "ping -c 1 -w 1 2001:db8::ff >/dev/null 2>&1 || exit 1"]


def test_command_and_daemon() -> None:
    """VRRP only, no BFD, every file in the router's directory; detached by default."""
    paths = Paths(BASE)
    argv = ["keepalived", "-P", "-B", "-D", "-f", f"{BASE}/keepalived.conf",
            "-p", f"{BASE}/keepalived.pid", "-r", f"{BASE}/keepalived-vrrp.pid"]
    assert command(paths) == argv
    assert command(paths, foreground=True) == [*argv, "-n", "-l"]
    ha = plan()
    ns = f"qrouter-{ROUTER}"
    assert dataclasses.asdict(daemon(ha, paths, ns)) == {
        "name": f"keepalived for router {ROUTER}", "argv": tuple(argv),
        "pid_file": f"{BASE}/keepalived.pid", "marker": f"{BASE}/keepalived.conf",
        "netns": ns, "foreground": False}
    assert RELOAD_SIGNAL.name == "SIGHUP"


def test_conntrackd_conf_with_one_peer() -> None:
    """conntrackd beside keepalived, whole: FTFW without an external cache, UDP to the one
    peer on the HA device, the HA network's own addresses ignored."""
    from neutrino.agent.l3 import conntrackd
    paths = conntrackd.Paths(BASE)
    assert conntrackd.render(plan(unicast_peers=("169.254.192.9",)), paths) == f"""\
# conntrackd for HA router {ROUTER}, written by neutrino.
Sync {{
    Mode FTFW {{
        DisableExternalCache on
    }}
    UDP {{
        IPv4_address 169.254.192.5
        IPv4_Destination_Address 169.254.192.9
        Port 3780
        Interface {HA}
        SndSocketBuffer 2097152
        RcvSocketBuffer 2097152
        Checksum on
    }}
}}
General {{
    HashSize 8192
    HashLimit 65536
    Syslog off
    LogFile {BASE}/conntrackd.log
    LockFile {BASE}/conntrackd.lock
    UNIX {{
        Path {BASE}/conntrackd.ctl
    }}
    NetlinkBufferSize 2097152
    NetlinkBufferSizeMaxGrowth 8388608
    Filter From Userspace {{
        Protocol Accept {{
            TCP
            UDP
            ICMP
        }}
        Address Ignore {{
            IPv4_address 127.0.0.1
            IPv4_address 169.254.192.5
            IPv4_address 169.254.192.9
        }}
    }}
}}
"""


def test_conntrackd_multicast_with_more_peers_and_its_script() -> None:
    """Two peers or more: a multicast group on the HA device, its port the VRID's; the
    transition script resyncs a new primary and has a backup ask for everything; a control
    socket path too long for a socket goes to a short directory."""
    from neutrino.agent.l3 import conntrackd
    paths = conntrackd.Paths(BASE)
    two = plan(unicast_peers=("169.254.192.9", "169.254.192.10"))
    assert conntrackd.transport(two) == [
        "Multicast {", "IPv4_address 225.0.0.50", "Group 3787", "IPv4_interface 169.254.192.5",
        f"Interface {HA}", "SndSocketBuffer 2097152", "RcvSocketBuffer 2097152",
        "Checksum on", "}"]
    ctl = f"conntrackd -C {BASE}/conntrackd.conf"
    assert conntrackd.script_text(two, paths) == f"""\
#!/bin/sh
# conntrackd transitions of HA router {ROUTER} (VRID 7), run by keepalived; written by neutrino.
case "$1" in
primary)
    {ctl} -R
    {ctl} -B
    ;;
backup|fault)
    {ctl} -n
    ;;
esac
exit 0
"""
    deep = conntrackd.Paths("/tmp/" + "x" * 90)
    assert deep.control.startswith(conntrackd.SHORT_SOCKETS + "/")
    assert len(deep.control) < 108
