"""One nftables table per namespace, applied atomically from a pure description.

Why nftables rather than iptables-restore: one table of our own per namespace (nothing else
in the namespace is read or rewritten), named sets and maps whose elements change without
touching a rule (a floating IP or a security group member is one element), and one
transaction for any change, from libnftables in this process, bound to the namespace by a
netlink socket opened there (no process per change, which matters at a thousand routers).

A `Table` is data: chains with their rules as nft text, and sets or maps with their elements.
`render` makes the text of the whole table; `apply` compares the table with what it applied
last (the table's comment carries a digest of everything but the set elements):
- nothing differs: nothing is done (a second pass changes nothing);
- only elements differ: one transaction adds and deletes exactly those elements;
- anything else (or no memory of the last apply: a restarted agent): one transaction deletes
  and re-creates the whole table, so packets never see half a ruleset.
The root namespace is refused: its tables belong to the machine.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field

from neutrino.agent.linux import netns

LOG = logging.getLogger(__name__)
OUTPUT_TERSE = 1 << 11  # NFT_CTX_OUTPUT_TERSE (nftables.h)


class NetfilterError(RuntimeError):
    """nftables refused a transaction (the message is nft's)."""


@dataclass(frozen=True)
class Chain:
    """A chain; a base chain when it has a hook. Rules are nft statements, in order."""

    name: str
    rules: tuple[str, ...] = ()
    type: str | None = None  # filter, nat
    hook: str | None = None  # prerouting, input, forward, output, postrouting; ingress, egress
    priority: int = 0
    policy: str | None = None  # accept, drop
    devices: tuple[str, ...] = ()  # a netdev table's base chain: the devices it hooks


@dataclass(frozen=True)
class NamedSet:
    """A set (`type ipv4_addr`) or a map (`type ipv4_addr : ipv4_addr`) and its elements,
    each as nft writes it (`10.0.0.5`, `203.0.113.5 : 10.0.0.5`)."""

    name: str
    type: str
    elements: frozenset[str] = frozenset()
    flags: tuple[str, ...] = ()
    map: bool = False
    typeof: bool = False  # `type` names the expressions (`typeof iifname : ct zone`)

    @property
    def keyword(self) -> str:
        """`set` or `map`."""
        return "map" if self.map else "set"


@dataclass(frozen=True)
class Table:
    """A table of ours: its family (ip, ip6, inet, bridge, netdev) and contents."""

    family: str
    name: str
    chains: tuple[Chain, ...] = ()
    sets: tuple[NamedSet, ...] = field(default_factory=tuple)

    @property
    def key(self) -> tuple[str, str]:
        """(family, name)."""
        return (self.family, self.name)


def _structure(table: Table) -> str:
    lines = []
    for named in table.sets:
        lines.append(f"\t{named.keyword} {named.name} {{")
        lines.extend(f"\t\t{line}" for line in _declaration(named))
        lines.append("\t}")
    for chain in table.chains:
        lines.append(f"\tchain {chain.name} {{")
        if chain.hook:
            policy = f" policy {chain.policy};" if chain.policy else ""
            devices = (" devices = { " + ", ".join(f'"{d}"' for d in chain.devices) + " }"
                       if chain.devices else "")
            lines.append(f"\t\ttype {chain.type or 'filter'} hook {chain.hook}{devices} "
                         f"priority {chain.priority};{policy}")
        lines.extend(f"\t\t{rule}" for rule in chain.rules)
        lines.append("\t}")
    return "\n".join(lines)


def _declaration(named: NamedSet) -> list[str]:
    lines = [f"{'typeof' if named.typeof else 'type'} {named.type}"]
    if named.flags:
        lines.append(f"flags {', '.join(named.flags)}")
    return lines


def digest(table: Table) -> str:
    """A digest of the table without its set elements."""
    return hashlib.sha256(f"{table.family} {table.name}\n{_structure(table)}".encode()
                          ).hexdigest()[:32]


def _elements(named: NamedSet) -> str:
    return ", ".join(sorted(named.elements))


def render(table: Table) -> str:
    """The whole table as nft text (pure), its digest as its comment."""
    body = _structure(table)
    element_lines = [f"add element {table.family} {table.name} {n.name} {{ {_elements(n)} }}"
                     for n in table.sets if n.elements]
    head = f'table {table.family} {table.name} {{\n\tcomment "{digest(table)}"\n'
    return head + (body + "\n" if body else "") + "}\n" + "".join(
        line + "\n" for line in element_lines)


def render_replace(table: Table) -> str:
    """One transaction that replaces the table whole (made first if absent)."""
    return (f"add table {table.family} {table.name}\n"
            f"delete table {table.family} {table.name}\n" + render(table))


def render_elements(old: Table, new: Table) -> str:
    """One transaction that turns `old`'s set elements into `new`'s (same structure)."""
    lines = []
    previous = {n.name: n.elements for n in old.sets}
    for named in new.sets:
        before = previous.get(named.name, frozenset())
        gone, added = sorted(before - named.elements), sorted(named.elements - before)
        if gone:
            lines.append(f"delete element {new.family} {new.name} {named.name} "
                         f"{{ {', '.join(gone)} }}")
        if added:
            lines.append(f"add element {new.family} {new.name} {named.name} "
                         f"{{ {', '.join(added)} }}")
    return "".join(line + "\n" for line in lines)


def _hooked(chain: Chain) -> tuple[object, ...]:
    """What makes a base chain: changing any of it means making the table again."""
    return (chain.hook, chain.type, chain.priority, chain.policy, chain.devices)


def render_changes(old: Table, new: Table) -> str | None:
    """One transaction that turns `old` into `new` chain by chain: new sets and chains
    made, chains whose rules differ flushed and written again, elements added and deleted,
    chains and sets no longer wanted deleted last (once nothing refers to them). None when
    only a whole replacement will do (a base chain or a set's declaration differs). A port
    more on a host with a thousand costs its own chains, not a rewrite of all of them."""
    if old.key != new.key:
        return None
    where = f"{new.family} {new.name}"
    old_chains = {c.name: c for c in old.chains}
    new_chains = {c.name: c for c in new.chains}
    old_sets = {n.name: n for n in old.sets}
    new_sets = {n.name: n for n in new.sets}
    for name, chain in new_chains.items():
        before = old_chains.get(name)
        if (chain.hook or (before is not None and before.hook)) and (
                before is None or _hooked(before) != _hooked(chain)):
            return None
    if any(c.hook for n, c in old_chains.items() if n not in new_chains):
        return None
    for name, named in new_sets.items():
        declared = old_sets.get(name)
        if declared is not None and _declaration(declared) != _declaration(named):
            return None
        if declared is not None and declared.map != named.map:
            return None
    lines = []
    for name, named in new_sets.items():
        if name not in old_sets:
            lines.append(f"add {named.keyword} {where} {name} {{ "
                         f"{'; '.join(_declaration(named))}; }}")
    for name in new_chains:
        if name not in old_chains:
            lines.append(f"add chain {where} {name}")
    for name, chain in new_chains.items():
        before = old_chains.get(name)
        if before is not None and before.rules == chain.rules:
            continue
        if before is not None:
            lines.append(f"flush chain {where} {name}")
        lines.extend(f"add rule {where} {name} {rule}" for rule in chain.rules)
    for name, named in new_sets.items():
        previous = old_sets[name].elements if name in old_sets else frozenset()
        gone = sorted(previous - named.elements)
        if gone:
            lines.append(f"delete element {where} {name} {{ {', '.join(gone)} }}")
    for name, named in new_sets.items():
        previous = old_sets[name].elements if name in old_sets else frozenset()
        added = sorted(named.elements - previous)
        if added:
            lines.append(f"add element {where} {name} {{ {', '.join(added)} }}")
    for name in old_chains:
        if name not in new_chains:
            lines += [f"flush chain {where} {name}", f"delete chain {where} {name}"]
    for name, named in old_sets.items():
        if name not in new_sets:
            lines.append(f"delete {named.keyword} {where} {name}")
    return "".join(line + "\n" for line in lines)


def expires_in(listing: str) -> float | None:
    """Seconds until the first element of a listed set expires (`expires 1s412ms`); None
    when the set has no element (pure)."""
    found = _EXPIRES.search(listing)
    if found is None:
        return None
    seconds, millis = found.group(1), found.group(2)
    return int(seconds or 0) + int(millis or 0) / 1000


_EXPIRES = re.compile(r"expires (?:(\d+)s)?(?:(\d+)ms)?")


class _Nft:
    """libnftables, with a context whose netlink socket lives in one namespace."""

    _lib: ctypes.CDLL | None = None

    @classmethod
    def lib(cls) -> ctypes.CDLL:
        if cls._lib is None:
            lib = ctypes.CDLL("libnftables.so.1", use_errno=True)
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            cls._lib = lib
        return cls._lib

    def __init__(self, namespace: str, dry_run: bool = False) -> None:
        self.namespace = namespace
        self._lock = threading.Lock()
        lib = self.lib()
        with netns.entered(namespace):  # the context's socket is opened here, and stays
            self.ctx = lib.nft_ctx_new(0)
            if not self.ctx:
                raise NetfilterError(f"cannot open nftables in {namespace}")
            lib.nft_ctx_buffer_output(self.ctx)
            lib.nft_ctx_buffer_error(self.ctx)
            # Run one command now, so that the netlink socket is opened in the namespace.
            self.run("list tables")
        if dry_run:
            lib.nft_ctx_set_dry_run(self.ctx, True)

    def run(self, commands: str, terse: bool = False) -> str:
        """Run nft commands as one transaction; their output (NetfilterError on failure).
        `terse` listings leave set elements out."""
        lib = self.lib()
        with self._lock:
            lib.nft_ctx_output_set_flags(self.ctx, OUTPUT_TERSE if terse else 0)
            rc = lib.nft_run_cmd_from_buffer(self.ctx, commands.encode())
            out = (lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode()
        if rc != 0:
            raise NetfilterError(f"nft in {self.namespace}: {err.strip() or 'failed'}")
        return out

    def close(self) -> None:
        """Free the context."""
        if self.ctx:
            self.lib().nft_ctx_free(self.ctx)
            self.ctx = None


class Netfilter:
    """Tables of ours in one namespace neutrino made (never the root namespace)."""

    def __init__(self, namespace: str | None) -> None:
        if not namespace:
            raise NetfilterError("refusing to manage netfilter tables outside a named "
                                 "namespace: the root namespace's tables are the machine's")
        self.namespace = namespace
        self._nft: _Nft | None = None
        self._applied: dict[tuple[str, str], Table] = {}
        self._lock = threading.Lock()

    def _ctx(self) -> _Nft:
        if self._nft is None:
            self._nft = _Nft(self.namespace)
        return self._nft

    def current_digest(self, family: str, name: str) -> str | None:
        """The digest our table carries in the kernel now (None: no such table)."""
        try:
            text = self._ctx().run(f"list table {family} {name}", terse=True)
        except NetfilterError:
            return None
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("comment "):
                return line.split('"')[1]
        return ""

    def has_set(self, family: str, name: str, set_name: str) -> bool:
        """Whether a set of a table of ours is in the kernel (a cheap look: listing a whole
        large table, or every table, costs tens of milliseconds)."""
        try:
            self._ctx().run(f"list set {family} {name} {set_name}", terse=True)
        except NetfilterError:
            return False
        return True

    def apply_changes(self, table: Table, verify: bool = False) -> bool:
        """Make the kernel's table `table` by changing what differs from the last apply,
        chain by chain (see `render_changes`); True if anything changed.

        The kernel's table is trusted to be the one last applied: a large table is not
        read back on every change. If the changes are refused (the table was deleted
        meanwhile), it is made again whole. `verify` (a periodic pass): unless the kernel's
        table still carries the digest of exactly this structure (as made whole), it is
        made again whole, which also repairs rules changed by hand."""
        with self._lock:
            last = self._applied.get(table.key)
            commands = None
            if last is not None and not verify:
                commands = render_changes(last, table)
            elif last is not None and verify and \
                    self.current_digest(*table.key) == digest(table):
                commands = render_elements(last, table)
            if commands == "":
                return False
            try:
                if commands is None:
                    raise NetfilterError("no changes to apply: the table is made whole")
                self._ctx().run(commands)
                LOG.debug("Changed table %s %s in %s", table.family, table.name,
                          self.namespace)
            except NetfilterError as err:
                if commands is not None:
                    LOG.warning("Making table %s %s in %s again whole: %s", table.family,
                                table.name, self.namespace, err)
                self._replace(table)
            self._applied[table.key] = table
            return True

    def _replace(self, table: Table) -> None:
        self._ctx().run(render_replace(table))
        LOG.info("Applied table %s %s in %s (%d chains, %d rules)", table.family,
                 table.name, self.namespace, len(table.chains),
                 sum(len(c.rules) for c in table.chains))

    def apply(self, table: Table) -> bool:
        """Make the kernel's table exactly `table`; True if anything changed."""
        with self._lock:
            last = self._applied.get(table.key)
            wanted = digest(table)
            in_kernel = self.current_digest(*table.key)
            if last is None and in_kernel == wanted and not any(n.elements for n in table.sets):
                # Made by an earlier run of the agent, and nothing of it is ours to fill:
                # adopted as it is (its sets may hold what the kernel added by itself, such
                # as an HA router's fence lease, which making it again would drop).
                self._applied[table.key] = table
                return False
            if last is not None and digest(last) == wanted and in_kernel == wanted:
                commands = render_elements(last, table)
                if not commands:
                    return False
                self._ctx().run(commands)
                LOG.debug("Updated the elements of %s %s in %s", table.family, table.name,
                          self.namespace)
            else:
                self._replace(table)
            self._applied[table.key] = table
            return True

    def remove(self, family: str, name: str) -> bool:
        """Delete a table of ours if it exists; True if it did."""
        with self._lock:
            self._applied.pop((family, name), None)
            if self.current_digest(family, name) is None:
                return False
            self._ctx().run(f"delete table {family} {name}")
            return True

    def run(self, commands: str) -> str:
        """Run nft commands in the namespace as one transaction (benchmarks, tests)."""
        with self._lock:
            return self._ctx().run(commands)

    def list_ruleset(self) -> str:
        """The namespace's whole ruleset as nft prints it (tests and diagnostics)."""
        return self._ctx().run("list ruleset")

    def close(self) -> None:
        """Release the nftables context."""
        if self._nft is not None:
            self._nft.close()
            self._nft = None


def check(text: str, namespace: str) -> None:
    """Check nft text without applying it (as `nft -c` does), in a namespace of ours;
    NetfilterError with nft's message if it is refused."""
    nft = _Nft(namespace, dry_run=True)
    try:
        nft.run(text)
    finally:
        nft.close()

