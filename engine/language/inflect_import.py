"""`inflect` without its import-time type-check instrumentation.

inflect 7 wraps its API in typeguard's `@typechecked`, which re-parses and recompiles every
decorated function from source when the module is imported: about 6 s on a 2-core machine,
paid by every process that names a plural (the build driver and each Ray worker). The checks
only reject calls with arguments of the wrong type; the engine passes strings. So inflect is
imported with the decorator standing aside: same answers, no start-up cost.
"""
from __future__ import annotations

import sys


def _identity(target=None, **_kwargs):
    return target if target is not None else (lambda t: t)


def load_inflect():
    """The inflect module (imported once, without typeguard's instrumentation)."""
    if "inflect" in sys.modules:
        return sys.modules["inflect"]
    import typeguard

    original = typeguard.typechecked
    typeguard.typechecked = _identity
    try:
        import inflect
    finally:
        typeguard.typechecked = original
    return inflect
