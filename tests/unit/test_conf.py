"""Configuration: Neutron's files load as they are, and the sample is generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neutrino.cmd.common import load_config

SEEDS = sorted((Path(__file__).parent.parent / "data" / "seed_confs").glob("*.conf"))
ROOT = Path(__file__).parent.parent.parent


@pytest.mark.parametrize("path", SEEDS, ids=[p.stem for p in SEEDS])
def test_seed_neutron_conf_loads(path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Every seed's neutron.conf loads; what neutrino does not use is logged once each."""
    conf = load_config(["--config-file", str(path)], "test")
    # oslo.log writes to the process's stderr, where capfd sees it.
    out, err = capfd.readouterr()
    ignored = [line.split("[-] ", 1)[1] for line in (out + err).splitlines()
               if "Ignoring option" in line]
    assert len(ignored) == len(set(ignored))
    text = path.read_text()
    if "rabbit_host" in text:
        assert "Ignoring option [DEFAULT] rabbit_host: neutrino does not use it" in ignored
    if "allow_overlapping_ips = True" in text:
        assert conf.allow_overlapping_ips is True
    if "host = HostA" in text:
        assert conf.host == "HostA"
    assert not any("allow_overlapping_ips" in m or "] host:" in m for m in ignored)


def test_defaults() -> None:
    """Neutron's option names with neutrino's defaults."""
    conf = load_config([], "test")
    assert (conf.bind_host, conf.bind_port) == ("127.0.0.1", 9696)
    assert conf.base_mac == "fa:16:3e:00:00:00"
    assert conf.state_path == "/var/lib/neutrino"
    assert conf.database.connection == "sqlite:////var/lib/neutrino/neutrino.sqlite"
    assert conf.ml2_type_flat.flat_networks == ["*"]
    assert conf.dhcp_lease_duration == 86400 and conf.global_physnet_mtu == 1500


def test_sample_config_is_generated_and_current(tmp_path: Path) -> None:
    """etc/neutrino.conf.sample is what oslo-config-generator makes from the options."""
    out = tmp_path / "sample.conf"
    subprocess.run([str(Path(sys.executable).parent / "oslo-config-generator"),
                    "--config-file", str(ROOT / "etc" / "oslo-config-generator.conf"),
                    "--output-file", str(out)], check=True)
    generated = out.read_text()
    for option in ("bind_host", "bind_port", "auth_strategy", "state_path",
                   "allow_overlapping_ips", "base_mac", "dhcp_lease_duration",
                   "global_physnet_mtu", "connection", "vni_ranges", "flat_networks"):
        assert f"#{option} = " in generated, option
    committed = (ROOT / "etc" / "neutrino.conf.sample").read_text()
    assert committed == generated, "run tools/generate-config to refresh etc/neutrino.conf.sample"
