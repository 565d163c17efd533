"""What every part of a lab shares: its name and directory, the record of what it made,
the names of its namespaces, and the lab server's API as its admin.

Layout of the directory: `lab.json` (what was made: namespaces, pids, VMs), `server/`
(configuration, users, the SQLite database, the log), `hosts/<host>/` (each agent's
configuration and log, and its state: dnsmasq files and pid files), and `clouds.yaml` for
the `openstack` client.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from neutrino.agent.linux import netns, process
from neutrino.lab.topology import Topology, check_lab_name, parse

if TYPE_CHECKING:
    from neutrino.lab.keystone import Keystone

BIN = Path(sys.executable).parent
DEFAULT_DIR = Path(os.environ.get("NEUTRINO_LAB_DIR", "/var/tmp/neutrino-lab"))


class LabError(RuntimeError):
    """Something the lab cannot do, said plainly."""


def open_tempdir(prefix: str) -> Path:
    """A fresh directory under /tmp that other users may enter (`mkdtemp` makes it 0700):
    for a lab or agents whose dnsmasq reads its files as nobody."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ini(sections: dict[str, dict[str, Any]]) -> str:
    """An INI file's text."""
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                   for name, values in sections.items())


class LabBase:
    """One lab, found by its name under a base directory."""

    def __init__(self, name: str = "nl", base: Path | None = None,
                 out: Callable[[str], None] = print) -> None:
        self.name = check_lab_name(name)
        self.dir = (base or DEFAULT_DIR) / name
        self.out = out
        # Daemons orphaned while this process runs (a stopped agent's dnsmasq) come back to
        # it, so that stopping them here also reaps them.
        process.become_subreaper()
        self.state: dict[str, Any] = {}
        self._token: str | None = None  # the admin's Keystone token, in a lab with Keystone
        self.reload()

    def reload(self) -> None:
        """Read the record of what the lab made (the one source: several commands share a
        lab)."""
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())

    # -- state ----------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        """Where the lab records what it made."""
        return self.dir / "lab.json"

    def save(self) -> None:
        """Write the record of what the lab made (atomically)."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True))
        tmp.replace(self.state_file)

    def require_up(self) -> None:
        """LabError unless the lab is up."""
        if not self.state:
            raise LabError(f"lab {self.name} is not up (no {self.state_file}); "
                           "run `neutrino lab up` first")

    @property
    def topology(self) -> Topology:
        """The topology the lab was built from."""
        self.require_up()
        return parse(self.state["topology"])

    @property
    def url(self) -> str:
        """The lab server's endpoint."""
        return f"http://127.0.0.1:{self.state['server']['port']}"

    # -- names ----------------------------------------------------------------------------

    @property
    def demo_project(self) -> str:
        """The id of the seeds' `demo` project (its user `demo` is a member): Keystone's,
        in a lab that has one."""
        keystone = self.state.get("keystone") or {}
        if "projects" in keystone:
            return str(keystone["projects"]["demo"])
        return uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.demo.project").hex

    @property
    def prefix(self) -> str:
        """Every namespace of the lab starts with this."""
        return f"{self.name}-"

    def host_namespace(self, host: str) -> str:
        """The namespace standing for a host."""
        return f"{self.name}-{host}"

    def vm_namespace(self, vm: str) -> str:
        """The namespace standing for a VM."""
        return f"{self.name}-vm-{vm}"

    def run_in(self, namespace_name: str, argv: Sequence[str], timeout: float = 300) -> int:
        """Run a command in one of the lab's namespaces; its exit status (output passed
        through)."""
        result = netns.run(namespace_name, list(argv), timeout=timeout)
        if result.stdout:
            self.out(result.stdout.rstrip("\n"))
        if result.stderr:
            self.out(result.stderr.rstrip("\n"))
        return result.returncode

    # -- the API and the client -----------------------------------------------------------

    def keystone(self) -> Keystone:
        """The lab's Keystone (its passwords are the lab's)."""
        from neutrino.lab.keystone import Keystone

        return Keystone(self.dir / "keystone", self.state["keystone"]["port"], passwords={
            "admin": self.state["admin_password"], "demo": self.state["demo_password"],
            "demo-reader": self.state["demo_password"],
            "neutron": self.state["agent_password"],
            "neutrino-agent": self.state["agent_password"]})

    def api(self) -> httpx.Client:
        """An HTTP client logged in as the lab's admin."""
        self.require_up()
        if self.state.get("keystone"):  # the admin's token, asked for once per lab object
            self._token = self._token or self.keystone().token()
            return httpx.Client(base_url=self.url, headers={"X-Auth-Token": self._token},
                                timeout=30)
        return httpx.Client(base_url=self.url, auth=("admin", self.state["admin_password"]),
                            timeout=30)

    def api_get(self, path: str, **params: Any) -> Any:
        """GET a path of the lab's API as admin."""
        with self.api() as client:
            reply = client.get(path, params=params)
        if reply.status_code != 200:
            raise LabError(f"GET {path}: {reply.status_code} {reply.text}")
        return reply.json()

    def api_call(self, method: str, path: str, body: Any = None,
                 expect: Sequence[int] = (200, 201, 204)) -> Any:
        """Call the lab's API as admin; the decoded answer (LabError if unexpected)."""
        with self.api() as client:
            reply = client.request(method, path, json=body)
        if reply.status_code not in expect:
            raise LabError(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply.json() if reply.content else None

    def openstack_env(self, user: str = "admin") -> dict[str, str]:
        """Environment for the real `openstack` client against the lab's server, as its
        admin or as the demo project's user."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        cloud = self.name if user == "admin" else f"{self.name}-{user}"
        env.update(OS_CLIENT_CONFIG_FILE=str(self.dir / "clouds.yaml"), OS_CLOUD=cloud)
        return env

    def openstack_argv(self, args: Sequence[str]) -> list[str]:
        """The `openstack` command line (from this environment's bin, else the PATH)."""
        binary = BIN / "openstack"
        return [str(binary) if binary.exists() else "openstack", *args]

    def network_create(self, name: str, cidr: str) -> str:
        """A network with one IPv4 subnet (DHCP on); its id."""
        net = self.api_call("POST", "/v2.0/networks", {"network": {"name": name}})
        network_id = str(net["network"]["id"])
        self.api_call("POST", "/v2.0/subnets", {"subnet": {
            "network_id": network_id, "cidr": cidr, "ip_version": 4}})
        return network_id

    def dhcp_hosts(self, network_id: str) -> set[str]:
        """Hosts whose DHCP agents host a network."""
        path = f"/v2.0/networks/{network_id}/dhcp-agents"
        return {a["host"] for a in self.api_get(path)["agents"]}

    def network(self, name_or_id: str) -> dict[str, Any]:
        """A network by id or name (exactly one)."""
        nets = self.api_get("/v2.0/networks", id=name_or_id)["networks"] or \
            self.api_get("/v2.0/networks", name=name_or_id)["networks"]
        if len(nets) != 1:
            raise LabError(f"network {name_or_id!r}: {len(nets)} found")
        return dict(nets[0])
