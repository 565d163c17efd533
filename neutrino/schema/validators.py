"""Validators: each takes a value from a request body and returns it converted, or raises.

A validator raises `Invalid(reason)`; the caller knows the attribute's name and turns it into
an `InvalidInput` naming it. Each validator also carries the JSON schema it enforces, so the
OpenAPI document is derived from the same objects that check the requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import netaddr


class Invalid(ValueError):
    """A value failed validation; the message is the reason."""


@dataclass(frozen=True)
class Validator:
    """A conversion function plus the JSON schema of the values it accepts."""

    convert: Callable[[Any], Any]
    schema: dict[str, Any] = field(default_factory=dict)
    nullable: bool = False

    def __call__(self, value: Any) -> Any:
        if value is None:
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
    """A CIDR whose host bits are all zero, as Neutron requires of a subnet."""
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
    if net.ip != net.network:
        raise Invalid(f"'{value}' isn't a recognized IP subnet cidr, '{net.cidr}' is recommended")
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


def host_routes() -> Validator:
    """Host routes: a list of {destination: CIDR, nexthop: IP}."""
    item = _dict_with({"destination": to_cidr, "nexthop": to_ip}, {"destination", "nexthop"})
    return Validator(_list_of(item), {
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


def any_dict() -> Validator:
    """A JSON object of anything."""

    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(f"'{value}' is not a dictionary")
        return value

    return Validator(convert, {"type": "object"})


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
