"""The netfilter driver's pure rendering, against whole expected texts."""

from __future__ import annotations

import dataclasses

from neutrino.agent.linux.netfilter import (
    Chain,
    NamedSet,
    Table,
    digest,
    render,
    render_elements,
    render_replace,
)

TABLE = Table("ip", "neutrino", chains=(
    Chain("pre", ("dnat to ip daddr map @fip_dnat",), type="nat", hook="prerouting",
          priority=-100, policy="accept"),
    Chain("snat", ('oifname "qg-x" snat to 203.0.113.10',)),
), sets=(NamedSet("fip_dnat", "ipv4_addr : ipv4_addr",
                  frozenset({"203.0.113.20 : 10.0.0.5", "203.0.113.21 : 10.0.0.6"}), map=True),
         NamedSet("blocked", "ipv4_addr", flags=("interval",))))


def test_whole_table() -> None:
    """Sets first, then chains with their hook line; elements added after the table."""
    assert render(TABLE) == f"""table ip neutrino {{
\tcomment "{digest(TABLE)}"
\tmap fip_dnat {{
\t\ttype ipv4_addr : ipv4_addr
\t}}
\tset blocked {{
\t\ttype ipv4_addr
\t\tflags interval
\t}}
\tchain pre {{
\t\ttype nat hook prerouting priority -100; policy accept;
\t\tdnat to ip daddr map @fip_dnat
\t}}
\tchain snat {{
\t\toifname "qg-x" snat to 203.0.113.10
\t}}
}}
add element ip neutrino fip_dnat {{ 203.0.113.20 : 10.0.0.5, 203.0.113.21 : 10.0.0.6 }}
"""


def test_replace_is_one_transaction_that_deletes_first() -> None:
    """The table is made if absent and deleted, then written whole, in one transaction."""
    text = render_replace(TABLE)
    assert text.startswith("add table ip neutrino\ndelete table ip neutrino\ntable ip ")


def test_elements_only_change_and_digest_ignores_them() -> None:
    """An element change keeps the digest and renders as element adds and deletes only."""
    maps = dict((s.name, s) for s in TABLE.sets)
    newer = dataclasses.replace(TABLE, sets=(
        dataclasses.replace(maps["fip_dnat"], elements=frozenset(
            {"203.0.113.21 : 10.0.0.6", "203.0.113.22 : 10.0.0.7"})), maps["blocked"]))
    assert digest(newer) == digest(TABLE)
    assert render_elements(TABLE, newer) == (
        "delete element ip neutrino fip_dnat { 203.0.113.20 : 10.0.0.5 }\n"
        "add element ip neutrino fip_dnat { 203.0.113.22 : 10.0.0.7 }\n")
    assert render_elements(newer, newer) == ""
    rule_changed = dataclasses.replace(TABLE, chains=TABLE.chains[:1])
    assert digest(rule_changed) != digest(TABLE)


def test_when_a_set_element_expires() -> None:
    """The time left of a set's first element, as nft lists it; None without one."""
    from neutrino.agent.linux.netfilter import expires_in
    listed = ("table inet t {\n\tset lease {\n\t\ttype devgroup\n\t\tflags timeout\n"
              "\t\telements = { 0 timeout 600ms expires %s }\n\t}\n}\n")
    assert expires_in(listed % "412ms") == 0.412
    assert expires_in(listed % "1s20ms") == 1.02
    assert expires_in(listed % "2s") == 2.0
    assert expires_in("table inet t {\n\tset lease {\n\t\ttype devgroup\n\t}\n}\n") is None
