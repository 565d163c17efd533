"""A subnet pool's shape and free space, computed without a database."""

from __future__ import annotations

import pytest

from neutrino import exceptions as exc
from neutrino.services.subnetpools import carve, compact, free_blocks, quota_units, read_shape


def test_prefixes_compact_and_bounds_default_as_neutrons() -> None:
    shape = read_shape({"prefixes": ["10.0.1.0/24", "10.0.0.0/24", "10.0.0.64/26"]})
    assert shape.prefixes == ("10.0.0.0/23",)
    assert (shape.min_prefixlen, shape.max_prefixlen, shape.default_prefixlen) == (8, 32, 8)
    six = read_shape({"prefixes": ["2001:db8::/48"], "default_prefixlen": 64})
    assert (six.ip_version, six.min_prefixlen, six.max_prefixlen) == (6, 64, 128)
    assert compact(["10.0.2.0/24", "10.0.0.0/24"]) == ("10.0.0.0/24", "10.0.2.0/24")


@pytest.mark.parametrize(("values", "error"), [
    ({"prefixes": []}, exc.EmptySubnetPoolPrefixList),
    ({"prefixes": ["10.0.0.0/8", "fd00::/8"]}, exc.PrefixVersionMismatch),
    ({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "max_prefixlen": 16},
     exc.IllegalSubnetPoolPrefixBounds),
    ({"prefixes": ["10.0.0.0/8"], "max_prefixlen": 33}, exc.IllegalSubnetPoolPrefixBounds),
    ({"prefixes": ["10.0.0.0/8"], "default_prefixlen": 30, "max_prefixlen": 28},
     exc.IllegalSubnetPoolPrefixBounds),
])
def test_bad_shapes(values: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        read_shape(values)


def test_the_tightest_free_block_is_carved_first() -> None:
    free = free_blocks(["10.0.0.0/22"], ["10.0.0.0/24"])
    assert [str(b) for b in free] == ["10.0.1.0/24", "10.0.2.0/23"]
    assert carve(free, 26) == "10.0.1.0/26"
    assert carve(free, 23) == "10.0.2.0/23"
    assert carve(free, 22) is None
    assert carve(free_blocks(["10.0.0.0/24"], ["10.0.0.0/24"]), 32) is None


def test_quota_units_count_addresses_or_64s() -> None:
    assert quota_units("10.0.0.0/24", 4) == 256
    assert quota_units("2001:db8::/60", 6) == 16
    assert quota_units("2001:db8::/80", 6) == 1
