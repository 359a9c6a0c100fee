"""Intermediates several checks share (a year's quota usage, declared beside metered volumes), computed
once per run of the checks on the same tables instead of once per check.

Only inside ``reuse()`` (the check stage of a partition: ``run_checks``, ``build_cases``, the water-rights
market on the same tables), so that a caller that changes a table between two calls is never answered
from memory; the memory is dropped when the block ends.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import pandas as pd
from pydantic import BaseModel

_memory: dict | None = None


@contextmanager
def reuse():
    """Within the block, a ``shared`` function called again with the same arguments returns its first answer."""
    global _memory
    outer, _memory = _memory, {}
    try:
        yield
    finally:
        _memory = outer


def _key(value):
    if isinstance(value, dict):  # the tables: the same frames
        return ("dict", id(value), tuple((k, id(v)) for k, v in value.items()))
    if isinstance(value, BaseModel):
        return ("settings", value.model_dump_json())
    if isinstance(value, (pd.Timestamp, str, int, float)):
        return ("value", value)
    return ("id", id(value))


def shared(fn):
    """``fn`` (returning a DataFrame) remembered inside ``reuse()``; callers get a copy-on-write copy."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _memory is None or kwargs:
            return fn(*args, **kwargs)
        key = (fn.__qualname__, tuple(_key(a) for a in args))
        if key not in _memory:
            _memory[key] = (args, fn(*args))  # the arguments are kept so that their ids stay theirs
        return _memory[key][1].copy(deep=False)

    return wrapper
