"""A real Keystone for the lab and the tests: the `keystone` package on SQLite, bootstrapped
with keystone-manage and served on loopback by waitress, with the projects, users and roles
the seeds use and a `network` service whose endpoint is neutrino.

Everything lives in one directory (config, database, fernet keys, log); `stop` ends the
server by its pid.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from neutrino.agent.linux import process
from neutrino.lab.base import free_port

REGION = "RegionOne"
MARKER = "keystone.wsgi"  # in the server's command line: how its pid is recognised
# (project, user, roles) besides the bootstrap's admin: the seeds' demo user, a reader of
# demo, the service user neutrino validates tokens as (Neutron's `neutron`), and the one the
# agents log in as (the `service` role alone: all the agent channel asks for).
AGENT_USER = "neutrino-agent"
ACCOUNTS = (("demo", "demo", ("member", "reader")), ("demo", "demo-reader", ("reader",)),
            ("service", "neutron", ("service", "admin")), ("service", AGENT_USER, ("service",)))
DEFAULT_PASSWORDS = {"admin": "admin-secret", "demo": "demo-secret",
                     "demo-reader": "reader-secret", "neutron": "neutron-secret",
                     AGENT_USER: "agent-secret"}


@dataclass
class Keystone:
    """One Keystone server, its directory and its URL."""

    directory: Path
    port: int = field(default_factory=free_port)
    passwords: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PASSWORDS))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The identity endpoint (`OS_AUTH_URL`)."""
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def conf(self) -> Path:
        """Its configuration file."""
        return self.directory / "keystone.conf"

    @staticmethod
    def _bin(name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_KEYSTONE_CONFIG_FILES"] = str(self.conf)
        return env

    def _manage(self, *args: str) -> None:
        subprocess.run([self._bin("keystone-manage"), "--config-file", str(self.conf), *args],
                       check=True, capture_output=True, text=True, timeout=300,
                       env=self._env())

    def setup(self) -> None:
        """Write the configuration and make the database, keys and admin account."""
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = self.directory / "fernet-keys"
        creds = self.directory / "credential-keys"
        self.conf.write_text(
            "[DEFAULT]\n"
            f"log_file = {self.directory / 'keystone.log'}\n"
            "[database]\n"
            f"connection = sqlite:///{self.directory / 'keystone.sqlite'}\n"
            "[token]\nprovider = fernet\nexpiration = 3600\n"
            f"[fernet_tokens]\nkey_repository = {keys}\n"
            f"[credential]\nkey_repository = {creds}\n")
        keys.mkdir(exist_ok=True)
        creds.mkdir(exist_ok=True)
        user = os.environ.get("USER", "root")
        self._manage("db_sync")
        self._manage("fernet_setup", "--keystone-user", user, "--keystone-group", user)
        self._manage("credential_setup", "--keystone-user", user, "--keystone-group", user)
        self._manage("bootstrap", "--bootstrap-password", self.passwords["admin"],
                     "--bootstrap-admin-url", self.url, "--bootstrap-public-url", self.url,
                     "--bootstrap-internal-url", self.url, "--bootstrap-region-id", REGION)

    def start(self) -> None:
        """Serve Keystone on loopback; wait until it answers."""
        log = open(self.directory / "waitress.log", "ab")  # noqa: SIM115 - the child keeps it
        # Keystone parses the process's arguments with oslo.config as it loads, so the
        # server is started from a launcher whose argv holds nothing for it to misread.
        # Its configuration file is named there too, so that `ps` tells whose it is. One
        # thread: concurrent writers find Keystone's SQLite database locked (500s).
        launcher = ("import os, sys; port = int(sys.argv[1]); "
                    "os.environ['OS_KEYSTONE_CONFIG_FILES'] = sys.argv[2]; "
                    "sys.argv = sys.argv[:1]; "
                    "import waitress; from keystone.wsgi.api import application; "
                    "waitress.serve(application, host='127.0.0.1', port=port, threads=1)")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", launcher, str(self.port), str(self.conf)], stdout=log,
            stderr=subprocess.STDOUT, env=self._env(), start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Keystone did not start; see {self.directory / 'waitress.log'}")

    def stop(self) -> None:
        """End the server by its pid."""
        if self.proc is not None:
            process.stop(self.proc.pid, MARKER)
            self.proc.wait()
        self.proc = None

    # -- the catalog and accounts ---------------------------------------------------------

    def token(self, user: str = "admin", project: str = "admin") -> str:
        """A token of `user` scoped to `project` (password authentication)."""
        password = self.passwords[user]
        reply = httpx.post(f"{self.url}/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}},
            timeout=30)
        reply.raise_for_status()
        return reply.headers["X-Subject-Token"]

    def seed(self, neutrino_url: str) -> dict[str, str]:
        """Projects, users and roles of the seeds, and the `network` service at neutrino;
        the project ids by name."""
        headers = {"X-Auth-Token": self.token()}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as c:
            def find(kind: str, name: str) -> dict[str, Any] | None:
                found = c.get(f"/{kind}", params={"name": name}).json()[kind]
                return found[0] if found else None

            def ensure(kind: str, body: dict[str, Any]) -> dict[str, Any]:
                single = kind[:-1]
                return find(kind, body["name"]) or c.post(f"/{kind}", json={
                    single: body}).raise_for_status().json()[single]

            projects = {p: ensure("projects", {"name": p, "domain_id": "default"})["id"]
                        for p in ("demo", "service")}
            projects["admin"] = find("projects", "admin")["id"]  # type: ignore[index]
            roles = {r: ensure("roles", {"name": r})["id"]
                     for r in ("admin", "member", "reader", "service")}
            for project, name, wanted in ACCOUNTS:
                user = ensure("users", {"name": name, "password": self.passwords[name],
                                        "domain_id": "default"})
                for role in wanted:
                    c.put(f"/projects/{projects[project]}/users/{user['id']}/roles/"
                          f"{roles[role]}").raise_for_status()
            service = find("services", "neutron") or c.post("/services", json={"service": {
                "name": "neutron", "type": "network"}}).raise_for_status().json()["service"]
            have = c.get("/endpoints", params={"service_id": service["id"]}).json()["endpoints"]
            for interface in ("public", "internal", "admin"):
                if not any(e["interface"] == interface for e in have):
                    c.post("/endpoints", json={"endpoint": {
                        "service_id": service["id"], "interface": interface,
                        "url": neutrino_url, "region_id": REGION}}).raise_for_status()
        return projects

    def service_auth_options(self) -> dict[str, str]:
        """An agent's `[service_auth]`: it logs in as the agents' Keystone user."""
        return {"auth_type": "password", "auth_url": self.url, "username": AGENT_USER,
                "password": self.passwords[AGENT_USER], "project_name": "service",
                "user_domain_name": "Default", "project_domain_name": "Default"}

    def authtoken_options(self) -> dict[str, str]:
        """neutrino's `[keystone_authtoken]`, as Neutron's would read."""
        return {"www_authenticate_uri": self.url, "auth_url": self.url,
                "auth_type": "password", "username": "neutron",
                "password": self.passwords["neutron"],
                "project_name": "service", "user_domain_name": "Default",
                "project_domain_name": "Default", "region_name": REGION}
