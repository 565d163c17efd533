"""Request parsing and validators, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino import exceptions as exc
from neutrino.schema import validators as v
from neutrino.schema.request import parse_item, parse_query, unwrap
from neutrino.schema.resources import NETWORK, PORT, SUBNET
from neutrino.services.segments import parse_vni_ranges


@pytest.mark.parametrize(("validator", "value", "expected"), [
    (v.to_mac, "FA-16-3E-AA-BB-CC", "fa:16:3e:aa:bb:cc"),
    (v.to_mac, "01:00:5e:00:00:01", None),  # multicast
    (v.to_mac, "00:00:00:00:00:00", None),
    (v.to_ip, "10.0.0.1", "10.0.0.1"),
    (v.to_ip, "2001:DB8:0:0::1", "2001:db8::1"),
    (v.to_ip, "10.1", None),
    (v.to_ip, "010.0.0.1", None),
    (v.to_cidr, "10.0.0.0/8", "10.0.0.0/8"),
    (v.to_cidr, "10.0.0.1/8", "10.0.0.0/8"),  # host bits dropped, as Neutron stores it
    (v.to_cidr, "10.0.0.0", None),
    (v.to_cidr, "0.0.0.0/0", None),
    (v.to_cidr, "2001:db8::/32", "2001:db8::/32"),
    (v.to_bool, "TRUE", True),
    (v.to_bool, 0, False),
    (v.to_bool, "yes", None),
    (v.to_uuid, "0B8C0D6E-5B1F-4A4E-9F7E-0D6A2F1D3C11", "0b8c0d6e-5b1f-4a4e-9f7e-0d6a2f1d3c11"),
    (v.to_uuid, "net2", None),
])
def test_validators(validator: Any, value: Any, expected: Any) -> None:
    """Each validator converts good values and refuses bad ones (None: refused)."""
    if expected is None:
        with pytest.raises(v.Invalid):
            validator(value)
    else:
        assert validator(value) == expected


def test_parse_create_applies_defaults_and_folds_tenant() -> None:
    """Defaults fill a POST; tenant_id becomes project_id; computed ones stay absent."""
    body = parse_item(NETWORK, {"name": "net2", "tenant_id": "p"}, create=True)
    assert body["name"] == "net2" and body["project_id"] == "p" and "tenant_id" not in body
    assert body["admin_state_up"] is True and body["shared"] is False
    assert "mtu" not in body and "provider:network_type" not in body


@pytest.mark.parametrize(("resource", "item", "create", "kind", "message"), [
    (NETWORK, {"status": "DOWN"}, True, "HTTPBadRequest", "Attribute 'status' not allowed in POST"),
    (NETWORK, {"bogus": 1}, True, "HTTPBadRequest", "Unrecognized attribute(s) 'bogus'"),
    (SUBNET, {"cidr": "10.0.0.0/24", "ip_version": 4}, True, "HTTPBadRequest",
     "Failed to parse request. Required attribute 'network_id' not specified"),
    (PORT, {"network_id": "x"}, True, "InvalidInput",
     "Invalid input for operation: Invalid input for network_id. Reason: 'x' is not a valid "
     "UUID."),
    (PORT, {"network_id": "0b8c0d6e-5b1f-4a4e-9f7e-0d6a2f1d3c11"}, False, "HTTPBadRequest",
     "Cannot update read-only attribute network_id"),
    (NETWORK, {"id": "0b8c0d6e-5b1f-4a4e-9f7e-0d6a2f1d3c11"}, False, "HTTPBadRequest",
     "Cannot update read-only attribute id"),
    (NETWORK, {"project_id": "a", "tenant_id": "b"}, True, "BadRequest",
     "Bad network request: 'project_id' and 'tenant_id' do not match."),
])
def test_parse_item_errors(resource: Any, item: dict[str, Any], create: bool, kind: str,
                           message: str) -> None:
    """Bad bodies are answered with Neutron's error type and words (clients match them)."""
    with pytest.raises(exc.BadRequest) as raised:
        parse_item(resource, item, create=create)
    assert (raised.value.type, raised.value.msg) == (kind, message)


def test_unwrap_bulk_and_single() -> None:
    """Single and bulk envelopes."""
    assert unwrap(NETWORK, {"network": {"name": "a"}}, bulk=True) == [{"name": "a"}]
    assert unwrap(NETWORK, {"networks": [{"name": "a"}, {}]}, bulk=True) == [{"name": "a"}, {}]
    for body in ([], {"networks": []}, {"network": []}, {"nope": {}}):
        with pytest.raises(exc.BadRequest):
            unwrap(NETWORK, body, bulk=True)


def test_parse_query() -> None:
    """Filters OR within a key and convert types; control keys; sort pairs."""
    query = parse_query(NETWORK, [
        ("name", "a"), ("name", "b"), ("shared", "true"), ("tenant_id", "p"),
        ("fields", "id,name"), ("fields", "mtu"), ("sort_key", "name"), ("sort_dir", "desc"),
        ("limit", "5"), ("marker", "m"), ("tags-any", "x,y")])
    assert query.filters == {"name": ["a", "b"], "shared": [True], "project_id": ["p"]}
    assert query.fields == ["id", "name", "mtu"] and query.sorts == [("name", False)]
    assert (query.limit, query.marker) == (5, "m")
    assert query.tag_filters == {"tags-any": ["x", "y"]}
    assert parse_query(NETWORK, [("limit", "10")], max_limit=3).limit == 3
    for params in ([("x", "1")], [("sort_key", "name")], [("sort_key", "subnets"),
                                                          ("sort_dir", "asc")],
                   [("limit", "-1")], [("shared", "perhaps")]):
        with pytest.raises(exc.BadRequest):
            parse_query(NETWORK, params)


def test_vni_ranges() -> None:
    """`MIN:MAX` ranges, sorted; bad ones refused."""
    assert parse_vni_ranges(["100:200", "1:10"]) == [(1, 10), (100, 200)]
    for bad in (["5"], ["10:1"], ["0:5"], ["1:16777216"]):
        with pytest.raises(ValueError):
            parse_vni_ranges(bad)
