"""Test support: real server processes on real databases, and the real clients.

`Server` runs `neutrino-server` as a subprocess on a free loopback port and stops it by pid.
`database_url` makes a throwaway database on SQLite, PostgreSQL or MariaDB (and drops it).
`openstack_cli` runs the real `openstack` command against a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from neutrino.agent.linux.netns import names as namespaces  # noqa: F401  (the tests check leftovers with it)
from neutrino.api.auth import UserFile
from neutrino.lab.lab import free_port
from neutrino.services import quotas

VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_ADMIN = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
BACKENDS = ("sqlite", "postgresql", "mysql")


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a child by its pid, SIGKILL it if it lingers, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def require_backend(backend: str) -> None:
    """Skip the calling test, saying why, when a database backend is not reachable."""
    import pytest

    reason = backend_unavailable(backend)
    if reason is not None:
        print(f"\nSKIP {backend}: {reason}")
        pytest.skip(reason)


def backend_unavailable(backend: str) -> str | None:
    """Why a database backend cannot be used here, or None if it can."""
    if backend == "sqlite":
        return None
    try:
        if backend == "postgresql":
            import psycopg

            psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres",
                            connect_timeout=3).close()
        else:
            import pymysql

            pymysql.connect(connect_timeout=3, **MYSQL_ADMIN).close()  # type: ignore[arg-type]
    except Exception as err:  # any failure means: not reachable here
        return f"{backend} is not reachable on 127.0.0.1: {err}"
    return None


@contextlib.contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of a new, empty database on `backend`, dropped afterwards."""
    name = f"neutrino_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'neutrino.sqlite'}"
        return
    if backend == "postgresql":
        import psycopg

        admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    import pymysql

    conn = pymysql.connect(**MYSQL_ADMIN)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


class Server:
    """A neutrino-server subprocess with its own state directory and configuration."""

    def __init__(self, tmp_path: Path, db_url: str, *, auth: str = "noauth",
                 options: dict[str, dict[str, Any]] | None = None) -> None:
        self.dir = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = auth
        self.db_url = db_url
        self.config = tmp_path / "neutrino.conf"
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"state_path": tmp_path / "state", "bind_port": self.port,
                        "auth_strategy": auth, "allow_overlapping_ips": True},
            "database": {"connection": db_url},
        }
        # The suite's servers are shared by many tests making resources in a few projects:
        # no limits, unless a test sets its own (test_quotas keeps Neutron's defaults).
        if "QUOTAS" not in (options or {}):
            sections["QUOTAS"] = dict(quotas.unlimited())
        for section, values in (options or {}).items():
            sections.setdefault(section, {}).update(values)
        self.config.write_text("".join(
            f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
            for section, values in sections.items()))
        self.log = tmp_path / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `neutrino` (the admin CLI) with this server's configuration."""
        return subprocess.run([str(VENV_BIN / "neutrino"), "--config-file", str(self.config),
                               *args], check=True, capture_output=True, text=True)

    def add_user(self, name: str, password: str, project_id: str | None = None,
                 *roles: str) -> None:
        """Add an http_basic user to the server's users file, as `neutrino user add` does
        (in this process: the command's own tests are in test_users)."""
        UserFile(str(self.dir / "state" / "users.json")).add(
            name, password, project_id, list(roles) or ["member"])

    def start(self) -> Server:
        """Migrate (non-SQLite), start, and wait until the API answers."""
        if not self.db_url.startswith("sqlite"):
            subprocess.run([str(VENV_BIN / "neutrino-db-manage"), "--config-file",
                            str(self.config), "upgrade", "head"], check=True,
                           capture_output=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "neutrino-server"), "--config-file", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"neutrino-server exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("neutrino-server did not answer within 30 s")

    def stop(self) -> None:
        """Stop the server by its pid."""
        terminate(self.proc, timeout=10)
        self.proc = None

    def log_text(self) -> str:
        """What the server logged."""
        return self.log.read_text() if self.log.exists() else ""

    # -- clients -----------------------------------------------------------------------

    def sdk(self, username: str | None = None, password: str | None = None) -> Any:
        """An openstacksdk connection: auth none, or http_basic as `username`."""
        import openstack

        if self.auth == "http_basic":
            return openstack.connect(auth_type="http_basic", auth={
                "username": username, "password": password, "endpoint": self.url})
        return openstack.connect(auth_type="none", network_endpoint_override=self.url + "/")

    def http(self, project: str | None = None, roles: str | None = None,
             basic: tuple[str, str] | None = None) -> httpx.Client:
        """A plain HTTP client, as a noauth project or an http_basic user."""
        headers = {}
        if project is not None:
            headers["X-Project-Id"] = project
        if roles is not None:
            headers["X-Roles"] = roles
        return httpx.Client(base_url=self.url, headers=headers, auth=basic, timeout=30)

    def cli_env(self, username: str | None = None, password: str | None = None) -> dict[str, str]:
        """Environment for the `openstack` command against this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        clouds = self.dir / f"clouds-{username or 'none'}.yaml"
        if self.auth == "http_basic":
            clouds.write_text(
                "clouds:\n  test:\n    auth_type: http_basic\n    auth:\n"
                f"      username: {username}\n      password: {password}\n"
                f"      endpoint: {self.url}\n")
        else:
            clouds.write_text("clouds:\n  test:\n    auth_type: none\n"
                              f"    network_endpoint_override: {self.url}/\n")
        env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="test")
        return env


def openstack_cli(env: dict[str, str], *args: str, check: bool = True,
                  cwd: Path | None = None) -> Any:
    """Run the real `openstack` command; JSON output is parsed when asked for."""
    proc = subprocess.run([str(VENV_BIN / "openstack"), *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}): "
                             f"{proc.stderr}")
    if "json" in args and proc.returncode == 0:
        return json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc


AGENT_USER = ("neutrino-agent", "agent-secret")


class AgentProcess:
    """A neutrino agent (no-op data plane) as a subprocess, stopped or killed by its pid."""

    BINARIES = {"dhcp": "neutrino-dhcp-agent", "l2": "neutrino-linuxbridge-agent",
                "l3": "neutrino-l3-agent"}

    def __init__(self, server: Server, kind: str, host: str, *, zone: str = "nova",
                 report_interval: float = 0.5, local_ip: str = "",
                 agent_mode: str = "legacy",
                 sections: dict[str, dict[str, str]] | None = None) -> None:
        self.kind, self.host = kind, host
        self.config = server.dir / f"{kind}-{host}.conf"
        extra = "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                        for name, values in (sections or {}).items())
        self.config.write_text(
            f"[DEFAULT]\nhost = {host}\nagent_mode = {agent_mode}\n"
            f"[AGENT]\nserver_url = {server.url}\nserver_username = {AGENT_USER[0]}\n"
            f"server_password = {AGENT_USER[1]}\nreport_interval = {report_interval}\n"
            f"availability_zone = {zone}\nwatch_timeout = 5\nresync_interval = 5\n"
            f"[VXLAN]\nlocal_ip = {local_ip}\n" + extra)
        self.log = server.dir / f"{kind}-{host}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        """Start the agent (it registers on its first report)."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / self.BINARIES[self.kind]), "--config-file", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        """Stop it gracefully (SIGTERM), by pid."""
        terminate(self.proc, timeout=30)
        self.proc = None

    def kill(self) -> None:
        """kill -9, by pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def wait_for(predicate: Any, timeout: float, interval: float = 0.1, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; return its value, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def root_network_snapshot() -> dict[str, str]:
    """The root namespace's links, addresses, routes and rules, as `ip` prints them (read only)."""
    def ip(*args: str) -> str:
        return subprocess.run(["ip", *args], check=True, capture_output=True, text=True,
                              timeout=30).stdout

    return {"links": ip("-o", "link", "show"), "addresses": ip("-o", "addr", "show"),
            "routes": ip("route", "show", "table", "all"), "rules": ip("rule", "show")}


def our_processes() -> list[str]:
    """Running (not zombie) dnsmasq, keepalived, conntrackd, neutrino and Keystone processes:
    pid and command line."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text[text.rfind(")") + 2] in "ZX" or int(stat.parent.name) == os.getpid():
            continue
        if "dnsmasq" in cmdline or "bin/neutrino" in cmdline or "keystone.wsgi" in cmdline \
                or "keepalived" in cmdline or "conntrackd" in cmdline:
            out.append(f"{stat.parent.name} {cmdline.strip()}")
    return sorted(out)
