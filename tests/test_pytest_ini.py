"""pytest.ini's warning policy works: a warning attributed to a workbench module fails the test, a library's own
warning does not. (Named test_estimate_* only because of who owned which files when it was written; it tests
pytest.ini, not the estimate.)

The "modules" below are real code compiled under a module name, so warnings.warn attributes the warning through
its ordinary frame lookup, exactly as for a file in workbench/ or site-packages/.
"""
from __future__ import annotations

import warnings

import pytest


def _module(name: str, source: str) -> dict:
    namespace = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace


LIBRARY = _module("somelib.api", """
import warnings

def old_api():
    # as libraries do: stacklevel=2 blames the caller, so the caller's module decides the filter
    warnings.warn("old_api is deprecated", DeprecationWarning, stacklevel=2)
""")
OURS = _module("workbench.some_module", """
import warnings

def deprecated_here():
    warnings.warn("our own deprecated path", DeprecationWarning)

def user_warning_here():
    warnings.warn("our own dubious value", UserWarning)

def call(fn):
    return fn()
""")


def test_a_warning_from_our_code_is_an_error():
    with pytest.raises(DeprecationWarning, match="our own deprecated path"):
        OURS["deprecated_here"]()
    with pytest.raises(UserWarning, match="our own dubious value"):
        OURS["user_warning_here"]()


def test_our_call_to_a_deprecated_library_api_is_an_error():
    with pytest.raises(DeprecationWarning, match="old_api is deprecated"):
        OURS["call"](LIBRARY["old_api"])


def test_a_library_warning_that_does_not_land_on_our_code_stays_a_warning():
    with warnings.catch_warnings(record=True) as caught:  # keeps the ini's filters, records instead of printing
        LIBRARY["old_api"]()  # blamed on this test module, not on workbench
    assert [str(w.message) for w in caught] == ["old_api is deprecated"]
