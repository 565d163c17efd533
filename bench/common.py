"""What the benchmarks share: the machine's description, the commit, CPU readings, and
writing one benchmark's section of docs/benchmarks.md."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` percentile (0-100) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def no_quotas() -> dict[str, dict[str, Any]]:
    """Server options lifting every quota: the workloads make tens of thousands of resources
    in one project, past Neutron's default limits."""
    from neutrino.services.quotas import unlimited

    return {"QUOTAS": dict(unlimited())}


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine() -> str:
    """CPU model, cores and RAM of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    ram = f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB RAM" if mem else "RAM unknown"
    return f"{model.group(1).strip() if model else platform.machine()}, " \
           f"{os.cpu_count()} cores, {ram}"


def git_commit() -> str:
    """The short commit, marked when neutrino/ has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "neutrino"):
        commit += " (with uncommitted changes in neutrino/)"
    return commit


def write_doc(section: str, begin: str, end: str, path: Path = DOC) -> None:
    """Replace one benchmark's section (between its markers), keeping the rest."""
    text = path.read_text() if path.exists() else "# neutrino benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def publish(results: dict[str, Any], section: str, begin: str, end: str, write: bool) -> None:
    """Print a run's figures as JSON and, unless told not to, write its section."""
    print(json.dumps(results, indent=2))
    if write:
        write_doc(section, begin, end)
        print("wrote docs/benchmarks.md", file=sys.stderr)
