"""The agent's reconcile loop against an in-memory driver: end states, not calls."""

from __future__ import annotations

from typing import Any

from neutrino.agent.runner import AgentRunner


class Host:
    """A fake host: networks it has, and how often something on it changed."""

    agent_type, binary, topic = "DHCP agent", "test-agent", "dhcp_agent"

    def __init__(self, leftovers: dict[str, dict[str, Any]] | None = None) -> None:
        self.networks: dict[str, dict[str, Any]] = dict(leftovers or {})
        self.changes = 0
        self.fail: set[str] = set()

    def configurations(self) -> dict[str, Any]:
        return {"networks": len(self.networks)}

    def apply(self, network_id: str, state: dict[str, Any] | None) -> None:
        if network_id in self.fail:
            raise RuntimeError("device busy")
        current = self.networks.get(network_id)
        if state is None and current is not None:
            del self.networks[network_id]
            self.changes += 1
        elif state is not None and current != state:
            self.networks[network_id] = state
            self.changes += 1

    def present(self) -> set[str]:
        return set(self.networks)

    def status(self) -> tuple[dict[str, str], set[str]]:
        return {}, set()

    def drifted(self) -> set[str]:
        return set()


def runner(host: Host) -> AgentRunner:
    return AgentRunner("h", host, client=None, report_interval=1,  # type: ignore[arg-type]
                       availability_zone=None)


def net(network_id: str, ports: int = 1) -> dict[str, Any]:
    return {"id": network_id, "ports": [f"p{i}" for i in range(ports)]}


def test_snapshot_replaces_everything_and_second_pass_changes_nothing() -> None:
    """A snapshot removes leftovers; a full pass afterwards finds nothing to do."""
    host = Host(leftovers={"stale": net("stale")})
    r = runner(host)
    r.absorb({"revision": 7, "snapshot": True, "networks": [net("n1"), net("n2", 3)],
              "removed": []})
    assert r.reconcile_once() == 0
    assert host.networks == {"n1": net("n1"), "n2": net("n2", 3)}
    assert r.state.applied == 7
    changes = host.changes
    r.mark_all_dirty()
    assert r.reconcile_once() == 0
    assert host.changes == changes


def test_incremental_changes_and_removals() -> None:
    """A watch answer replaces the networks it names and drops the removed ones."""
    host = Host()
    r = runner(host)
    r.absorb({"revision": 3, "snapshot": True, "networks": [net("n1"), net("n2")],
              "removed": []})
    r.reconcile_once()
    r.absorb({"revision": 5, "snapshot": False, "networks": [net("n2", 2)],
              "removed": ["n1"]})
    r.reconcile_once()
    assert host.networks == {"n2": net("n2", 2)}
    assert r.state.applied == 5


def test_a_failing_network_is_retried_and_holds_back_the_applied_revision() -> None:
    """One network's failure leaves the others applied and is retried until it works."""
    host = Host()
    host.fail = {"bad"}
    r = runner(host)
    r.absorb({"revision": 9, "snapshot": True, "networks": [net("good"), net("bad")],
              "removed": []})
    assert r.reconcile_once() == 1
    assert host.networks == {"good": net("good")}
    assert r.state.applied < 9 and r.state.dirty == {"bad"}
    host.fail = set()
    assert r.reconcile_once() == 0
    assert set(host.networks) == {"good", "bad"} and r.state.applied == 9


def test_a_change_arriving_mid_pass_goes_before_the_rest_of_the_pass() -> None:
    """A network changed while a long pass runs is applied after the current batch, not at
    the end of the pass; every network is still applied exactly once."""
    host = Host()
    r = AgentRunner("h", host, client=None, report_interval=1,  # type: ignore[arg-type]
                    availability_zone=None, workers=1)
    r.absorb({"revision": 1, "snapshot": True,
              "networks": [net(f"n{i:02d}") for i in range(40)], "removed": []})
    order: list[str] = []
    apply = host.apply

    def recording(network_id: str, state: dict[str, Any] | None) -> None:
        order.append(network_id)
        if network_id == "n00":  # the watch delivers a new network meanwhile
            r.absorb({"revision": 2, "snapshot": False, "networks": [net("new")],
                      "removed": []})
        apply(network_id, state)

    host.apply = recording  # type: ignore[method-assign]
    assert r.reconcile_once() == 0
    assert order.index("new") == 4  # right after the first batch (4 per worker)
    assert sorted(order) == sorted([f"n{i:02d}" for i in range(40)] + ["new"])
    assert host.networks["new"] == net("new") and r.state.applied == 2
