"""The chaos test's invariants, counted from samples (no lab needed)."""

from __future__ import annotations

from neutrino.lab.chaos_l3_ha import FaultRun, Report, Sample

BOTH_HOLD = {"network1": (True, False, True), "network2": (True, True, True)}
ONE_HOLDS = {"network1": (False, False, True), "network2": (True, True, True)}


def report(kind: str, nodes: dict[str, tuple[bool, bool, bool]]) -> Report:
    found = Report(1, runs=[FaultRun(kind, "network1", 0.2, True, 0.1, injected_at=1.0,
                                     healed_at=4.0)])
    found.samples = [Sample(0.5, ONE_HOLDS, {"network2": "active"}),
                     Sample(2.0, nodes, {"network2": "active"})]
    return found


def test_two_holders_break_the_invariant_unless_a_host_is_frozen() -> None:
    assert report("link", ONE_HOLDS).violations == []
    link = report("link", BOTH_HOLD)
    assert link.held_twice_by_fault == {"link": 1}
    assert link.violations == ["1 samples with two nodes holding the router's addresses "
                               "(link: 1)"]
    frozen = report("freeze", BOTH_HOLD)
    assert frozen.held_twice_by_fault == {"freeze": 1}
    assert frozen.violations == []
    assert frozen.served_twice == 0  # the frozen node's fence is closed
