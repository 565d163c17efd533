"""Validators: each takes a value from a request body and returns it converted, or raises.

A validator raises `Invalid(reason)`; the caller knows the attribute's name and turns it into
an `InvalidInput` naming it. Each validator also carries the JSON schema it enforces, so the
OpenAPI document is derived from the same objects that check the requests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import netaddr
import orjson


class Invalid(ValueError):
    """A value failed validation; the message is the reason."""


@dataclass(frozen=True)
class Validator:
    """A conversion function plus the JSON schema of the values it accepts."""

    convert: Callable[[Any], Any]
    schema: dict[str, Any] = field(default_factory=dict)
    nullable: bool = False
    null_is_empty_list: bool = False  # null stands for [] (Neutron's convert_none_to_empty_list)

    def __call__(self, value: Any) -> Any:
        if value is None:
            if self.null_is_empty_list:
                return []
            if self.nullable:
                return None
            raise Invalid("None is not a valid value")
        return self.convert(value)


def _string(max_len: int | None) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"'{value}' is not a valid string")
        if max_len is not None and len(value) > max_len:
            raise Invalid(f"'{value}' exceeds maximum length of {max_len}")
        return value

    return convert


def string(max_len: int | None = 255, nullable: bool = False) -> Validator:
    """A string of at most `max_len` characters."""
    schema: dict[str, Any] = {"type": "string"}
    if max_len is not None:
        schema["maxLength"] = max_len
    return Validator(_string(max_len), schema, nullable)


def to_bool(value: Any) -> bool:
    """Neutron's boolean conversion: bools, 0/1 and 'true'/'false' in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise Invalid(f"'{value}' cannot be converted to boolean")


def boolean() -> Validator:
    """A boolean."""
    return Validator(to_bool, {"type": "boolean"})


def integer(minimum: int | None = None, maximum: int | None = None,
            nullable: bool = False) -> Validator:
    """An integer within bounds; numeric strings are accepted, as Neutron does."""

    def convert(value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid(f"'{value}' is not an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise Invalid(f"'{value}' is not an integer") from None
        if isinstance(value, float) and number != value:
            raise Invalid(f"'{value}' is not an integer")
        if minimum is not None and number < minimum:
            raise Invalid(f"'{number}' is too small - must be at least '{minimum}'")
        if maximum is not None and number > maximum:
            raise Invalid(f"'{number}' is too large - must be no larger than '{maximum}'")
        return number

    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return Validator(convert, schema, nullable)


def to_uuid(value: Any) -> str:
    """A UUID in its canonical text form."""
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is not a valid UUID")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Invalid(f"'{value}' is not a valid UUID") from None


def uuid_(nullable: bool = False) -> Validator:
    """A UUID."""
    return Validator(to_uuid, {"type": "string", "format": "uuid"}, nullable)


def project_id() -> Validator:
    """A project id: Keystone ids are hex strings, but any short string is accepted."""
    return Validator(_string(255), {"type": "string", "maxLength": 255})


def to_mac(value: Any) -> str:
    """A unicast MAC address, normalised to lowercase colon form."""
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is not a valid MAC address")
    try:
        mac = netaddr.EUI(value, version=48, dialect=netaddr.mac_unix_expanded)
    except (netaddr.AddrFormatError, TypeError, ValueError):
        raise Invalid(f"'{value}' is not a valid MAC address") from None
    if int(mac) == 0 or int(mac) >> 40 & 1:
        raise Invalid(f"'{value}' is not a valid MAC address")
    return str(mac).lower()


def mac_address() -> Validator:
    """A MAC address."""
    pattern = "^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$"
    return Validator(to_mac, {"type": "string", "pattern": pattern})


def to_ip(value: Any) -> str:
    """An IPv4 or IPv6 address in its compact canonical text form."""
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is not a valid IP address")
    try:
        # inet_pton semantics: no '10.1' shorthand, no leading-zero octal surprises.
        return str(netaddr.IPAddress(value, flags=netaddr.INET_PTON))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise Invalid(f"'{value}' is not a valid IP address") from None


def ip_address(nullable: bool = False) -> Validator:
    """An IP address."""
    return Validator(to_ip, {"type": "string"}, nullable)


def to_cidr(value: Any) -> str:
    """A network CIDR; host bits are dropped (`10.41.0.5/24` is `10.41.0.0/24`), as Neutron
    stores a subnet given that way."""
    if not isinstance(value, str) or "/" not in value:
        raise Invalid(f"'{value}' is not a valid IP subnet")
    address, _, prefix = value.partition("/")
    try:
        to_ip(address)  # inet_pton rules for the address part, as for addresses
        net = netaddr.IPNetwork(value)
    except (Invalid, netaddr.AddrFormatError, ValueError, TypeError):
        raise Invalid(f"'{value}' is not a valid IP subnet") from None
    if not prefix.isdigit() or (net.version == 4 and net.prefixlen == 0):
        raise Invalid(f"'{value}' is not a valid IP subnet")
    return str(net.cidr)


def cidr(nullable: bool = False) -> Validator:
    """A subnet CIDR."""
    return Validator(to_cidr, {"type": "string"}, nullable)


def _list_of(item: Callable[[Any], Any], unique: bool = True,
             max_items: int | None = None) -> Callable[[Any], list[Any]]:
    def convert(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise Invalid(f"'{value}' is not a list")
        if max_items is not None and len(value) > max_items:
            raise Invalid(f"'{value}' has more than {max_items} items")
        out = [item(v) for v in value]
        if unique:
            seen: list[Any] = []
            for v in out:
                if v in seen:
                    raise Invalid(f"Duplicate items in the list: '{v}'")
                seen.append(v)
        return out

    return convert


def list_of_strings(max_len: int = 255) -> Validator:
    """A list of distinct short strings."""
    return Validator(_list_of(_string(max_len)),
                     {"type": "array", "items": {"type": "string", "maxLength": max_len}})


def list_of_ips() -> Validator:
    """A list of distinct IP addresses."""
    return Validator(_list_of(to_ip), {"type": "array", "items": {"type": "string"}})


def _dict_with(keys: dict[str, Callable[[Any], Any]], required: set[str]) -> Callable[[Any], Any]:
    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(f"'{value}' is not a dictionary")
        unknown = set(value) - set(keys)
        if unknown:
            raise Invalid(f"Unrecognized keys {sorted(unknown)} in '{value}'")
        missing = required - set(value)
        if missing:
            raise Invalid(f"Missing keys {sorted(missing)} in '{value}'")
        return {k: keys[k](v) for k, v in value.items()}

    return convert


def host_routes(null_is_empty_list: bool = False) -> Validator:
    """Host routes: a list of {destination: CIDR, nexthop: IP} (a router's `routes` may be
    null for none, as in Neutron)."""
    item = _dict_with({"destination": to_cidr, "nexthop": to_ip}, {"destination", "nexthop"})
    return Validator(_list_of(item), null_is_empty_list=null_is_empty_list, schema={
        "type": "array",
        "items": {"type": "object", "required": ["destination", "nexthop"],
                  "properties": {"destination": {"type": "string"},
                                 "nexthop": {"type": "string"}},
                  "additionalProperties": False}})


def allocation_pools() -> Validator:
    """Allocation pools: a list of {start: IP, end: IP}."""
    item = _dict_with({"start": to_ip, "end": to_ip}, {"start", "end"})
    return Validator(_list_of(item), {
        "type": "array",
        "items": {"type": "object", "required": ["start", "end"],
                  "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
                  "additionalProperties": False}})


def fixed_ips() -> Validator:
    """Requested fixed IPs: a list of {subnet_id?, ip_address?}, at least one key each."""
    inner = _dict_with({"subnet_id": to_uuid, "ip_address": to_ip}, set())

    def item(value: Any) -> dict[str, Any]:
        converted = inner(value)
        if not converted:
            raise Invalid(f"'{value}' must name a subnet_id or an ip_address")
        return converted

    return Validator(_list_of(item), {
        "type": "array",
        "items": {"type": "object", "minProperties": 1,
                  "properties": {"subnet_id": {"type": "string", "format": "uuid"},
                                 "ip_address": {"type": "string"}},
                  "additionalProperties": False}})


def nesting(value: Any, limit: int) -> int:
    """How deep lists and objects nest in `value` (a scalar is 0), counting no further
    than `limit` + 1: iterative, so a hostile document cannot exhaust the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


# Neutron stores a binding profile in 4,095 characters of JSON; deeper than this is no
# profile any driver reads.
PROFILE_MAX_CHARS = 4095
PROFILE_MAX_DEPTH = 8


def any_dict(max_chars: int = PROFILE_MAX_CHARS, max_depth: int = PROFILE_MAX_DEPTH,
             ) -> Validator:
    """A JSON object of anything, of bounded depth and size."""

    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid("the value is not a dictionary")
        if nesting(value, max_depth) > max_depth:
            raise Invalid(f"the dictionary nests deeper than {max_depth} levels")
        try:
            size = len(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):
            raise Invalid("the dictionary is not JSON") from None
        if size > max_chars:
            raise Invalid(f"the dictionary is longer than {max_chars} characters as JSON")
        return value

    return Validator(convert, {"type": "object"})


def ip_version() -> Validator:
    """4 or 6; numeric strings are accepted, as Neutron converts them to integers."""
    whole = integer()

    def convert(value: Any) -> int:
        try:
            number = whole.convert(value)
        except Invalid:
            number = None
        if number not in (4, 6):
            raise Invalid(f"'{value}' is not in [4, 6]")
        return number

    return Validator(convert, {"enum": [4, 6]})


def one_of(*choices: Any, nullable: bool = False) -> Validator:
    """One of a fixed set of values."""

    def convert(value: Any) -> Any:
        if value not in choices:
            raise Invalid(f"'{value}' is not in {list(choices)}")
        return value

    return Validator(convert, {"enum": list(choices)}, nullable)


def external_gateway_info() -> Validator:
    """A router's external gateway: {network_id, enable_snat?, external_fixed_ips?}; `{}`
    or null clear it (both are returned as `{}`)."""
    fixed = _dict_with({"subnet_id": to_uuid, "ip_address": to_ip}, set())
    inner = _dict_with({"network_id": to_uuid, "enable_snat": to_bool,
                        "external_fixed_ips": _list_of(fixed)}, {"network_id"})

    def convert(value: Any) -> dict[str, Any]:
        if value == {}:
            return {}
        return dict(inner(value))

    validator = Validator(convert, {
        "type": "object",
        "properties": {"network_id": {"type": "string", "format": "uuid"},
                       "enable_snat": {"type": "boolean"},
                       "external_fixed_ips": {"type": "array", "items": {
                           "type": "object", "additionalProperties": False,
                           "properties": {"subnet_id": {"type": "string", "format": "uuid"},
                                          "ip_address": {"type": "string"}}}}},
        "additionalProperties": False}, nullable=True)
    return validator


def optional_bool() -> Validator:
    """A boolean, or null for "the server's default"."""
    return Validator(to_bool, {"type": "boolean"}, nullable=True)


# -- security groups, address groups, allowed address pairs -----------------------------
# Neutron answers some of these with errors of their own type (SecurityGroupRuleInvalid*,
# InvalidCIDR, ...) rather than InvalidInput, so they raise those directly.

PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1,
             "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44,
             "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6,
             "udp": 17, "udplite": 136, "vrrp": 112}
ETHERTYPES = ("IPv4", "IPv6")
SUPPORTED_PROTOCOLS = (None, "any", *PROTOCOLS)


def not_empty_name() -> Validator:
    """A name that is not blank (a subnet pool's, as Neutron's `not_empty_name_string`)."""
    plain = _string(255)

    def convert(value: Any) -> str:
        name = plain(value)
        if not name.strip():
            raise Invalid(f"'{name}' Blank strings are not permitted")
        return name

    return Validator(convert, {"type": "string", "minLength": 1, "maxLength": 255})


RBAC_OBJECT_TYPES = ("network",)


def rbac_object_type() -> Validator:
    """An RBAC policy's object type, in any case and spacing (`Network ` is `network`)."""

    def convert(value: Any) -> str:
        from neutrino import exceptions as exc

        normalized = _string(255)(value).strip().lower()
        if normalized not in RBAC_OBJECT_TYPES:
            raise exc.InvalidInput(error_message=f"'{value}' is not a valid RBAC object type")
        return normalized

    return Validator(convert, {"type": "string", "enum": list(RBAC_OBJECT_TYPES)})


def target_project() -> Validator:
    """An RBAC policy's target: `*`, or a project id (any id a user may have here, not
    only Keystone's UUIDs)."""

    def convert(value: Any) -> str:
        text = _string(255)(value)
        if not text or text != text.strip() or " " in text:
            raise Invalid(f"'{text}' is not a valid target project ID; expected a project ID "
                          "or '*'")
        return text

    return Validator(convert, {"type": "string", "minLength": 1, "maxLength": 255})


# DHCP option names dnsmasq knows (`dnsmasq --help dhcp`, `--help dhcp6`, 2.90): a name
# it does not know would make it refuse the whole options file, and so the network.
DHCP4_OPTION_NAMES = frozenset({
    "netmask", "time-offset", "router", "dns-server", "log-server", "lpr-server",
    "boot-file-size", "domain-name", "swap-server", "root-path", "extension-path",
    "ip-forward-enable", "non-local-source-routing", "policy-filter", "max-datagram-reassembly",
    "default-ttl", "mtu", "all-subnets-local", "router-discovery", "router-solicitation",
    "static-route", "trailer-encapsulation", "arp-timeout", "ethernet-encap", "tcp-ttl",
    "tcp-keepalive", "nis-domain", "nis-server", "ntp-server", "netbios-ns", "netbios-dd",
    "netbios-nodetype", "netbios-scope", "x-windows-fs", "x-windows-dm", "T1", "T2",
    "vendor-class", "nis+-domain", "nis+-server", "tftp-server", "bootfile-name",
    "mobile-ip-home", "smtp-server", "pop3-server", "nntp-server", "irc-server", "user-class",
    "rapid-commit", "client-arch", "client-interface-id", "client-machine-id", "posix-timezone",
    "tzdb-timezone", "ipv6-only", "domain-search", "sip-server", "classless-static-route",
    "vendor-id-encap", "tftp-server-address", "server-ip-address"
})
DHCP6_OPTION_NAMES = frozenset({
    "sip-server-domain", "sip-server", "dns-server", "domain-search", "nis-server",
    "nis+-server", "nis-domain", "nis+-domain", "sntp-server", "information-refresh-time",
    "posix-timezone", "tzdb-timezone", "ntp-server", "bootfile-url", "bootfile-param"
})
# Options whose value may be blank (no router, no classless routes), as Neutron's.
BLANK_DHCP_OPTS = ("router", "classless-static-route")
_OPTION_TAG = re.compile(r"^(tag:[A-Za-z0-9_.-]+,)?([A-Za-z0-9+_.-]+)$")


def _dhcp_option(value: Any) -> dict[str, Any]:
    from neutrino import exceptions as exc

    if not isinstance(value, dict):
        raise Invalid(f"'{value}' is not a dictionary")
    unknown = set(value) - {"opt_name", "opt_value", "ip_version"}
    if unknown or "opt_name" not in value or "opt_value" not in value:
        raise Invalid(f"'{value}' must have opt_name and opt_value (and ip_version) only")
    version = value.get("ip_version", 4)
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise Invalid(f"'{version}' is not an IP version") from None
    if version not in (4, 6) or isinstance(value.get("ip_version"), bool):
        raise Invalid(f"'{version}' is not in [4, 6]")
    name = value["opt_name"]
    if not isinstance(name, str) or not name or len(name) > 64 or "\n" in name:
        raise Invalid(f"'{name}' is not a one-line name of at most 64 characters")
    match = _OPTION_TAG.match(name)
    bare = match.group(2) if match else ""
    if bare in ("client-id", "61"):  # Neutron matches hosts by it; neutrino does not yet
        raise exc.InvalidInput(error_message="The client-id option is not supported")
    known = DHCP4_OPTION_NAMES if version == 4 else DHCP6_OPTION_NAMES
    if not match or not (bare in known or (bare.isdigit() and 0 < int(bare) < 255)):
        raise Invalid(f"'{name}' is not a DHCPv{version} option name or number dnsmasq knows")
    option = value["opt_value"]
    if option is None:
        pass  # no option: on an update, the option is removed
    elif not isinstance(option, str) or len(option) > 255 or any(c in option for c in "\n\r\0"):
        raise Invalid(f"'{option}' is not a one-line value of at most 255 characters")
    elif not option.strip() and bare not in BLANK_DHCP_OPTS:
        raise Invalid(f"the value of {name} must not be blank")
    return {"opt_name": name, "opt_value": option, "ip_version": version}


def extra_dhcp_opts() -> Validator:
    """A port's DHCP options: [{opt_name, opt_value, ip_version (4)}]; a null opt_value
    removes the option on an update and is ignored on a create, as in Neutron."""

    def convert(value: Any) -> list[dict[str, Any]]:
        items = _list_of(_dhcp_option, unique=False, max_items=64)(value)
        keys = [(i["opt_name"], i["ip_version"]) for i in items]
        if len(set(keys)) != len(keys):
            raise Invalid("Duplicate options in the list")
        return items

    return Validator(convert, {"type": "array", "items": {"type": "object"}}, nullable=True)


def name_not_default() -> Validator:
    """A name, but not `default` in any case: that one the server gives."""
    from neutrino import exceptions as exc

    plain = _string(255)

    def convert(value: Any) -> str:
        name = plain(value)
        if name.lower() == "default":
            raise exc.SecurityGroupDefaultAlreadyExists()
        return name

    return Validator(convert, {"type": "string", "maxLength": 255})


def _numeric(value: Any) -> int | None:
    """An int, or a string of digits, as a number; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def sg_protocol() -> Validator:
    """A rule's protocol: a name (any case, kept lower), a number 0-255 kept as given, or
    `any`/null for every protocol."""
    from neutrino import exceptions as exc

    def convert(value: Any) -> str | None:
        if isinstance(value, str) and value.lower() == "any":
            return None
        number = _numeric(value)
        if number is not None and 0 <= number <= 255:
            return str(value)
        if number is None and isinstance(value, str) and value.lower() in PROTOCOLS:
            return value.lower()
        raise exc.SecurityGroupRuleInvalidProtocol(protocol=value,
                                                   values=SUPPORTED_PROTOCOLS)

    return Validator(convert, {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                     nullable=True)


def sg_ethertype() -> Validator:
    """IPv4 or IPv6, in any case."""
    from neutrino import exceptions as exc

    def convert(value: Any) -> str:
        if isinstance(value, str):
            for ethertype in ETHERTYPES:
                if ethertype.lower() == value.lower():
                    return ethertype
        raise exc.SecurityGroupRuleInvalidEtherType(ethertype=value, values=list(ETHERTYPES))

    return Validator(convert, {"type": "string"})


def sg_port() -> Validator:
    """A port number 0-65535 (what a rule's range means depends on its protocol)."""
    from neutrino import exceptions as exc

    def convert(value: Any) -> int:
        number = _numeric(value)
        if number is None or not 0 <= number <= 65535:
            raise exc.SecurityGroupInvalidPortValue(port=value)
        return number

    return Validator(convert, {"type": "integer", "minimum": 0, "maximum": 65535},
                     nullable=True)


def to_prefix(value: Any) -> netaddr.IPNetwork:
    """An address with an optional /prefix (host bits allowed), strictly parsed."""
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is not a valid IP prefix")
    address, slash, prefix = value.partition("/")
    ip = netaddr.IPAddress(to_ip(address))
    maximum = 32 if ip.version == 4 else 128
    if not slash:
        return netaddr.IPNetwork(f"{ip}/{maximum}")
    if not (prefix.isascii() and prefix.isdigit()) or int(prefix) > maximum:
        raise Invalid(f"'{value}' is not a valid IP prefix")
    return netaddr.IPNetwork(f"{ip}/{int(prefix)}")


def remote_ip_prefix() -> Validator:
    """A rule's remote prefix: a bare address gets /32 or /128; host bits are kept (the
    rule's `normalized_cidr` drops them); empty means none."""
    from neutrino import exceptions as exc

    def convert(value: Any) -> str | None:
        if value == "":
            return None
        try:
            return str(to_prefix(value))
        except Invalid:
            raise exc.InvalidCIDR(input=value) from None

    return Validator(convert, {"type": "string"}, nullable=True)


def cidr_list(bare_addresses: bool = False) -> Validator:
    """An address group's addresses: CIDRs, in network form, without duplicates; with
    `bare_addresses`, an address alone stands for its host prefix (Neutron's add_addresses
    and remove_addresses take it so)."""

    def item(value: Any) -> str:
        if not isinstance(value, str) or ("/" not in value and not bare_addresses):
            raise Invalid(f"'{value}' is not a valid IP subnet")
        net = to_prefix(value)
        return f"{net.network}/{net.prefixlen}"

    def convert(value: Any) -> list[str]:
        return list(dict.fromkeys(_list_of(item, unique=False)(value)))

    return Validator(convert, {"type": "array", "items": {"type": "string"}}, nullable=True)


def allowed_address_pairs() -> Validator:
    """[{ip_address: IP or CIDR, mac_address?}]: unicast, and no pair twice (the count is
    checked against max_allowed_address_pair by the service)."""
    from neutrino import exceptions as exc

    def item(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise Invalid(f"'{value}' is not a dictionary")
        unknown = set(value) - {"ip_address", "mac_address"}
        if unknown:
            raise Invalid(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
        if "ip_address" not in value:
            raise exc.AllowedAddressPairsMissingIP()
        out = {}
        if "mac_address" in value:
            out["mac_address"] = to_mac(value["mac_address"])
        raw = value["ip_address"]
        net = to_prefix(raw) if isinstance(raw, str) and "/" in raw else None
        address = str(net) if net is not None else to_ip(raw)
        if (net.network if net is not None else netaddr.IPAddress(address)).is_multicast():
            raise Invalid(f"'{raw}' is a multicast address")
        out["ip_address"] = address
        return out

    def convert(value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list):
            raise Invalid("Allowed address pairs must be a list.")
        pairs = [item(v) for v in value]
        seen: set[tuple[str | None, str]] = set()
        for pair in pairs:
            key = (pair.get("mac_address"), pair["ip_address"])
            if key in seen:
                raise exc.DuplicateAddressPairInRequest(mac_address=key[0], ip_address=key[1])
            seen.add(key)
        return pairs

    return Validator(convert, {"type": "array", "items": {
        "type": "object", "required": ["ip_address"], "additionalProperties": False,
        "properties": {"ip_address": {"type": "string"}, "mac_address": {"type": "string"}}}},
        nullable=True)


def uuid_list() -> Validator:
    """A list of distinct UUIDs; null is an empty list."""
    return Validator(_list_of(to_uuid), {"type": "array", "items": {"type": "string",
                                                                     "format": "uuid"}},
                     nullable=True)
