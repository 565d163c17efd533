"""Run tempest's network API tests and neutron-tempest-plugin's API tests against neutrino
(`tools/tempest`): a Keystone and a neutrino server on loopback (SQLite, Keystone tokens),
a public external network, a tempest workspace configured for what neutrino advertises;
then the counts per test module and each failure's reason.

    python -m neutrino.lab.tempest [REGEX] [--workdir DIR] [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from neutrino.api.extensions import EXTENSIONS
from neutrino.lab.base import BIN, free_port, ini, open_tempdir
from neutrino.lab.keystone import REGION, Keystone

DEFAULT_REGEX = r"^(tempest\.api\.network|neutron_tempest_plugin\.api)\."
RESULT = re.compile(r"^\{\d+\} (?P<test>[\w.]+(?:\[[^\]]*\])?) .*?\.\.\. (?P<status>ok|FAILED|"
                    r"SKIPPED|skip)(?P<rest>.*)$")


def start_server(work: Path, keystone: Keystone) -> tuple[subprocess.Popen[bytes], str]:
    """A neutrino server validating the Keystone's tokens; the process and its URL."""
    port = free_port()
    server = work / "neutrino"
    server.mkdir(parents=True, exist_ok=True)
    conf = server / "neutrino.conf"
    conf.write_text(ini({
        "DEFAULT": {"bind_host": "127.0.0.1", "bind_port": port, "auth_strategy": "keystone",
                    "state_path": server, "allow_overlapping_ips": True},
        "database": {"connection": f"sqlite:///{server / 'neutrino.sqlite'}"},
        "keystone_authtoken": keystone.authtoken_options(),
        # tempest's classes make more routers and groups than Neutron's defaults allow: the
        # limits neutron-tempest-plugin's gate jobs set.
        "QUOTAS": {"quota_router": 100, "quota_floatingip": 500,
                   "quota_security_group": 150, "quota_security_group_rule": 1000}}))
    with open(server / "server.log", "ab") as log:
        proc = subprocess.Popen([str(BIN / "neutrino-server"), "--config-file", str(conf)],
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"neutrino-server did not start; see {server / 'server.log'}")


def start_agents(work: Path, url: str, keystone: Keystone) -> list[subprocess.Popen[bytes]]:
    """DHCP, Linux bridge and L3 agents on one host, with the no-op data plane, logged in as
    the Keystone service user: they report, take networks and routers and set ports ACTIVE,
    as tempest's router tests wait for."""
    procs = []
    for kind, binary in (("dhcp", "neutrino-dhcp-agent"), ("l2", "neutrino-linuxbridge-agent"),
                         ("l3", "neutrino-l3-agent")):
        conf = work / f"{kind}.conf"
        conf.write_text(ini({
            "DEFAULT": {"host": "tempest-host", "state_path": work / kind},
            "AGENT": {"server_url": url},
            "service_auth": keystone.service_auth_options()}))
        with open(work / f"{kind}.log", "ab") as log:
            procs.append(subprocess.Popen([str(BIN / binary), "--config-file", str(conf)],
                                          stdout=log, stderr=subprocess.STDOUT))
    return procs


def public_network(url: str, token: str) -> str:
    """The external network tempest's router and floating IP tests use; its id."""
    with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=30) as c:
        net = c.post("/v2.0/networks", json={"network": {
            "name": "public", "router:external": True}}).raise_for_status().json()["network"]
        c.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "172.24.4.0/24",
            "enable_dhcp": False, "name": "public-subnet"}}).raise_for_status()
        return str(net["id"])


def tempest_conf(keystone: Keystone, public: str) -> dict[str, dict[str, Any]]:
    """tempest.conf: Keystone v3 with dynamic credentials, only the network service, and
    the extensions neutrino advertises."""
    extensions = ",".join(sorted(EXTENSIONS))
    return {
        "DEFAULT": {"log_file": "tempest.log"},
        "auth": {"use_dynamic_credentials": True, "admin_username": "admin",
                 "admin_password": keystone.passwords["admin"], "admin_project_name": "admin",
                 "admin_domain_name": "Default"},
        "identity": {"uri_v3": keystone.url, "auth_version": "v3", "region": REGION,
                     "admin_domain_scope": False},
        "identity-feature-enabled": {"api_v2": False},
        "service_available": {"neutron": True, "nova": False, "glance": False,
                              "cinder": False, "swift": False, "heat": False},
        "network": {"project_network_cidr": "10.100.0.0/16", "project_network_mask_bits": 28,
                    "public_network_id": public, "floating_network_name": "public",
                    "project_networks_reachable": False, "region": REGION},
        "network-feature-enabled": {"api_extensions": extensions, "ipv6": True,
                                    "ipv6_subnet_attributes": True},
        "validation": {"run_validation": False},
        "neutron_plugin_options": {"available_type_drivers": "vxlan,flat,local"},
    }


def parse(output: str) -> tuple[dict[str, Counter[str]], dict[str, str]]:
    """Counts by module and status, and each failure's test id, from `tempest run`."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    failures: dict[str, str] = {}
    for line in output.splitlines():
        match = RESULT.match(line.strip())
        if not match:
            continue
        test = match["test"]
        if test in ("setUpClass", "tearDownClass"):  # `setUpClass (module.Class)`
            owner = re.search(r"\(([\w.]+)\)", line)
            test = f"{owner.group(1) if owner else 'unknown'}.{test}"
        module = test.split("[")[0].rsplit(".", 2)[0]
        status = {"ok": "pass", "FAILED": "fail"}.get(match["status"], "skip")
        counts[module][status] += 1
        if status == "fail":
            failures[test] = ""
    return counts, failures


def reasons(work: Path, failures: dict[str, str]) -> dict[str, str]:
    """The last line of each failure's traceback, from stestr's record."""
    record = subprocess.run([str(BIN / "stestr"), "last", "--subunit"], cwd=work,
                            capture_output=True, timeout=300).stdout
    text = subprocess.run([str(BIN / "subunit2pyunit")], input=record, capture_output=True,
                          timeout=300).stderr.decode(errors="replace")
    found = dict(failures)
    for block in re.split(r"\n=+\n", text):
        head = block.strip().splitlines()
        if not head or not head[0].startswith(("FAIL:", "ERROR:")):
            continue
        test = head[0].split(":", 1)[1].strip().split(" ")[0]
        lines = [line for line in head if line.strip() and not line.startswith("-")]
        for name in found:
            if name.split("[")[0] == test.split("[")[0]:
                found[name] = lines[-1].strip()[:300] if lines else ""
    return found


def markdown(counts: dict[str, Counter[str]], failures: dict[str, str]) -> str:
    """The counts per module and the failures, as docs/compatibility.md shows them."""
    lines = ["| module | passed | failed | skipped |", "|---|---|---|---|"]
    for module in sorted(counts):
        c = counts[module]
        lines.append(f"| `{module}` | {c['pass']} | {c['fail']} | {c['skip']} |")
    if failures:
        lines += ["", "| failed test | reason |", "|---|---|"]
        lines += [f"| `{test}` | {reason.replace('|', '/')[:200]} |"
                  for test, reason in sorted(failures.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Set up, run, report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("regex", nargs="?", default=DEFAULT_REGEX)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    base = args.workdir or open_tempdir("neutrino-tempest-")
    base.mkdir(parents=True, exist_ok=True)
    keystone = Keystone(base / "keystone")
    keystone.setup()
    keystone.start()
    server = None
    agents: list[subprocess.Popen[bytes]] = []
    try:
        server, url = start_server(base, keystone)
        agents = start_agents(base / "neutrino", url, keystone)
        keystone.seed(url)
        public = public_network(url, keystone.token())
        work = base / "workspace"
        # A name of its own: tempest remembers every workspace it made (~/.tempest).
        subprocess.run([str(BIN / "tempest"), "init", "--name", f"neutrino-{uuid.uuid4().hex}",
                        str(work)], check=True, capture_output=True, timeout=300)
        (work / "etc" / "tempest.conf").write_text(ini(tempest_conf(keystone, public)))
        print(f"tempest in {work}: neutrino {url}, Keystone {keystone.url}", flush=True)
        run = subprocess.run([str(BIN / "tempest"), "run", "--regex", args.regex,
                              "--concurrency", str(args.concurrency)], cwd=work,
                             capture_output=True, text=True, timeout=6 * 3600)
        (base / "tempest-run.log").write_text(run.stdout + run.stderr)
        counts, failures = parse(run.stdout)
        failures = reasons(work, failures)
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(timeout=30)
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        keystone.stop()
    totals: Counter[str] = Counter()
    for module in sorted(counts):
        c = counts[module]
        totals.update(c)
        print(f"{module}: {c['pass']} passed, {c['fail']} failed, {c['skip']} skipped")
    print(f"total: {totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped")
    for test, reason in sorted(failures.items()):
        print(f"FAILED {test}: {reason}")
    (base / "tempest-results.json").write_text(json.dumps(
        {"counts": {m: dict(c) for m, c in counts.items()}, "failures": failures}, indent=2))
    (base / "tempest-results.md").write_text(markdown(counts, failures))
    print(f"results in {base / 'tempest-results.json'} and tempest-results.md")
    if not totals:
        print("no test ran: see tempest-run.log in the work directory")
        return 1
    return 0 if totals["fail"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
