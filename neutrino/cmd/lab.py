"""`neutrino lab ...`: the lab's command line."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from neutrino.agent.linux.kernel import KernelError
from neutrino.agent.linux.netns import NamespaceError
from neutrino.lab import demo, topology
from neutrino.lab.lab import Lab, LabError, require_root


def _lab(args: argparse.Namespace) -> Lab:
    require_root()
    return Lab(args.lab, Path(args.dir) if args.dir else None)


def up(args: argparse.Namespace) -> int:
    """Build the lab (a failed build removes what it made)."""
    _lab(args).up(topology.load(args.topology), keystone=args.keystone)
    return 0


def down(args: argparse.Namespace) -> int:
    """Remove the lab."""
    _lab(args).down()
    return 0


def status(args: argparse.Namespace) -> int:
    """Print what runs."""
    state = _lab(args).status()
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    server = state["server"]
    print(f"Lab {state['lab']} ({state['directory']}): server {state['url']} "
          f"{'running' if server['running'] else 'NOT RUNNING'} (pid {server['pid']})")
    for host, info in state["hosts"].items():
        agents = ", ".join(f"{kind} {'running' if up else 'stopped'}"
                           for kind, up in info["agents"].items())
        print(f"  {host} ({info['namespace']}): {agents}; dnsmasq serving "
              f"{len(info['dnsmasq'])} network(s)")
    for name, vm in state["vms"].items():
        print(f"  VM {name} on {vm['host']}: {vm['network']} {vm['ip_address']} "
              f"({vm['mac_address']})")
    return 0


def vm_boot(args: argparse.Namespace) -> int:
    """Boot a VM."""
    _lab(args).vm_boot(args.name, args.network, args.host)
    return 0


def vm_dhcp(args: argparse.Namespace) -> int:
    """Ask for a lease; 1 if none came."""
    lease = _lab(args).vm_dhcp(args.name, args.attempts)
    print(lease)
    return 0 if lease.ip_address else 1


def _command(args: argparse.Namespace, usage: str) -> list[str]:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise LabError(f"say what to run: neutrino lab {usage} -- COMMAND")
    return list(command)


def vm_exec(args: argparse.Namespace) -> int:
    """Run a command in a VM."""
    return _lab(args).vm_exec(args.name, _command(args, "vm exec NAME"))


def vm_list(args: argparse.Namespace) -> int:
    """The VMs and their addresses, as `nova list` shows them."""
    rows = _lab(args).vm_list()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    widths = {k: max([len(k)] + [len(r[k]) for r in rows]) for k in
              ("name", "host", "status", "networks")}
    line = "+" + "+".join("-" * (w + 2) for w in widths.values()) + "+"
    print(line)
    print("| " + " | ".join(k.title().ljust(w) for k, w in widths.items()) + " |")
    print(line)
    for row in rows:
        print("| " + " | ".join(row[k].ljust(w) for k, w in widths.items()) + " |")
    print(line)
    return 0


def host_netns(args: argparse.Namespace) -> int:
    """What `ip netns` shows on a host."""
    for name in _lab(args).host_netns(args.host):
        print(name)
    return 0


def host_exec(args: argparse.Namespace) -> int:
    """Run a command on a host."""
    return _lab(args).host_exec(args.host, _command(args, "host exec HOST"))


def outside_exec(args: argparse.Namespace) -> int:
    """Run a command in the outside world."""
    return _lab(args).outside_exec(_command(args, "outside exec"))


def vm_delete(args: argparse.Namespace) -> int:
    """Delete a VM."""
    _lab(args).vm_delete(args.name)
    return 0


def agent(args: argparse.Namespace) -> int:
    """Stop, start or kill an agent."""
    lab = _lab(args)
    if args.action == "start":
        lab.agent_start(args.host, args.kind)
    else:
        sig = signal.SIGKILL if args.action == "kill" else signal.SIGTERM
        lab.agent_stop(args.host, args.kind, with_dnsmasq=args.with_dnsmasq, sig=sig,
                       with_keepalived=args.with_keepalived)
    return 0


def host_link(args: argparse.Namespace) -> int:
    """Cut or heal a host's underlay and external links."""
    _lab(args).host_link(args.host, up=args.state == "up")
    return 0


def host_freeze(args: argparse.Namespace) -> int:
    """SIGSTOP or SIGCONT every process of a host."""
    _lab(args).host_freeze(args.host, frozen=args.action == "freeze")
    return 0


def openstack(args: argparse.Namespace) -> int:
    """The real client against the lab's server."""
    lab = _lab(args)
    lab.require_up()
    return subprocess.run(lab.openstack_argv(args.args), env=lab.openstack_env(),
                          check=False).returncode


def run_demo(args: argparse.Namespace) -> int:
    """Run a scenario in a fresh lab and remove the lab afterwards (unless --keep)."""
    require_root()
    return demo.main(args.scenario, args.lab, Path(args.dir) if args.dir else None,
                     keep=args.keep)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `lab` subcommands."""
    parser.add_argument("--lab", default="nl", help="the lab's name (default nl)")
    parser.add_argument("--dir", help="base directory of lab state "
                        "(default $NEUTRINO_LAB_DIR or /var/tmp/neutrino-lab)")
    sub = parser.add_subparsers(dest="lab_command", required=True)
    p = sub.add_parser("up", help="build the lab")
    p.add_argument("--topology", default="seed-000",
                   help=f"a built-in topology ({', '.join(topology.BUILTIN)}) or a JSON file")
    p.add_argument("--keystone", action="store_true",
                   help="a Keystone of the lab's own (on loopback, in the lab's directory): "
                        "the server validates its tokens, `lab openstack` logs in with "
                        "passwords through its catalog")
    p.set_defaults(func=up)
    sub.add_parser("down", help="remove everything the lab made").set_defaults(func=down)
    p = sub.add_parser("status", help="what runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)

    vm = sub.add_parser("vm", help="VMs").add_subparsers(dest="vm_command", required=True)
    p = vm.add_parser("boot", help="a port bound to a host and a VM plugged to it")
    p.add_argument("name")
    p.add_argument("--network", required=True)
    p.add_argument("--host")
    p.set_defaults(func=vm_boot)
    p = vm.add_parser("dhcp", help="run a DHCP client in the VM")
    p.add_argument("name")
    p.add_argument("--attempts", type=int, default=4, help="DHCPDISCOVERs before giving up")
    p.set_defaults(func=vm_dhcp)
    p = vm.add_parser("exec", help="run a command in the VM")
    p.add_argument("name")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=vm_exec)
    p = vm.add_parser("list", help="the VMs and their addresses")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=vm_list)
    p = vm.add_parser("delete", help="remove a VM and its port")
    p.add_argument("name")
    p.set_defaults(func=vm_delete)

    host = sub.add_parser("host", help="look into a host").add_subparsers(
        dest="host_command", required=True)
    p = host.add_parser("netns", help="the namespaces the host's agents made (ip netns)")
    p.add_argument("host")
    p.set_defaults(func=host_netns)
    p = host.add_parser("exec", help="run a command on the host")
    p.add_argument("host")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=host_exec)
    p = host.add_parser("link", help="cut (down) or heal (up) the host's underlay and "
                        "external links")
    p.add_argument("state", choices=["down", "up"])
    p.add_argument("host")
    p.set_defaults(func=host_link)
    for action, text in (("freeze", "SIGSTOP every process of the host"),
                         ("thaw", "SIGCONT every process of the host")):
        p = host.add_parser(action, help=text)
        p.add_argument("host")
        p.set_defaults(func=host_freeze, action=action)

    outside = sub.add_parser("outside", help="the world outside the cloud").add_subparsers(
        dest="outside_command", required=True)
    p = outside.add_parser("exec", help="run a command on the external network")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=outside_exec)

    p = sub.add_parser("agent", help="stop, start or kill an agent")
    p.add_argument("action", choices=["stop", "start", "kill"])
    p.add_argument("host")
    p.add_argument("kind", choices=list(topology.AGENT_KINDS))
    p.add_argument("--with-dnsmasq", action="store_true",
                   help="also stop (or kill) the host's dnsmasq processes")
    p.add_argument("--with-keepalived", action="store_true",
                   help="also stop (or kill) the host's keepalived processes")
    p.set_defaults(func=agent)

    p = sub.add_parser("openstack", help="the openstack client, set up for the lab")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=openstack)

    p = sub.add_parser("demo", help="run a seed's scenario in a fresh lab")
    p.add_argument("scenario", choices=sorted(demo.SCENARIOS))
    p.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    p.set_defaults(func=run_demo)


def run(args: argparse.Namespace) -> int:
    """Run a lab command; lab errors are one line on stderr."""
    try:
        return int(args.func(args))
    except (LabError, KernelError, NamespaceError, topology.TopologyError) as err:
        print(f"neutrino lab: {err}", file=sys.stderr)
        return 1
