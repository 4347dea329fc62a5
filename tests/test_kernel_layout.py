"""The compiled kernel's structs and enums are the ones ``txcore/_fast/layout.py`` declares,
and a kernel whose values differ (a stale build) is refused when it loads."""
from __future__ import annotations

import types

import pytest

from txcore._fast import layout, load_kernel


def test_the_built_kernel_matches_the_layout():
    kernel = load_kernel("cython")
    assert kernel.enums() == layout.KERNEL_ENUMS
    assert kernel.NO_LATEST_VALUE == layout.NO_LATEST


def _stale(kernel, **changes):
    enums = dict(kernel.enums(), **changes.pop("enums", {}))
    sizes = dict(kernel.sizes(), **changes.pop("sizes", {}))
    return types.SimpleNamespace(enums=lambda: enums, sizes=lambda: sizes,
                                 NO_LATEST_VALUE=changes.pop("no_latest", kernel.NO_LATEST_VALUE))


@pytest.mark.parametrize("changes, named", [
    ({"enums": {"R_DUPLICATE": 9}}, "R_DUPLICATE"),
    ({"enums": {"S_LATEST": 7}}, "S_LATEST"),
    ({"sizes": {"ENTRY": 40}}, "struct ENTRY"),
    ({"no_latest": 0}, "NO_LATEST"),
])
def test_a_stale_kernel_is_refused(changes, named):
    with pytest.raises(ImportError, match=named):
        layout.check_compiled(_stale(load_kernel("cython"), **changes))


def test_every_kernel_reason_has_an_enum():
    assert {layout.KERNEL_ENUMS[k] for k in layout.KERNEL_ENUMS if k.startswith("R_")} \
        == set(layout.KERNEL_REASONS)
