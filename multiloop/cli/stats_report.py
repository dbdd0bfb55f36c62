"""The ``run --stats`` summary: each loop's ``loop.stats()``, readable, printed to stderr at exit.

It is driven by the fields of :class:`multiloop.LoopStats`, so statistics added there (timings, the backend's own
counters) appear here without a change: integers get thousands separators, floats are shown as seconds or
ratios, nested records and mappings are indented. The timings (present when ``--stats`` enabled them) are a
summary of their own (:func:`multiloop.timings.format_timings`): shares of the time, lag, the slowest callbacks
with their source locations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


def format_loops(loops: Sequence[Any]) -> str:
    if not loops:
        return "multiloop stats: the program created no event loop"
    lines = [f"multiloop stats: {len(loops)} loop{'s' if len(loops) != 1 else ''}"]
    for number, loop in enumerate(loops, 1):
        stats = loop.stats()
        state = "closed" if loop.is_closed() else "not closed"
        lines.append(f"loop {number} ({getattr(stats, 'backend', '?')}, {state}):")
        lines.extend(_lines(stats, indent="  ", skip={"backend", "timings"}))
        timings = getattr(stats, "timings", None)
        if timings is not None:
            from ..timings import format_timings

            lines.append("  timings:")
            lines.extend(format_timings(timings, indent="    "))
    return "\n".join(lines)


def _lines(record: Any, indent: str, skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    if dataclasses.is_dataclass(record):
        items = [(f.name, getattr(record, f.name)) for f in dataclasses.fields(record) if f.name not in skip]
    else:
        items = [(str(k), v) for k, v in record.items()]
    width = max((len(name) for name, _ in items), default=0)
    out = []
    for name, value in items:
        label = name.replace("_", " ")
        if dataclasses.is_dataclass(value) or isinstance(value, Mapping):
            out.append(f"{indent}{label}:")
            out.extend(_lines(value, indent + "  "))
        else:
            out.append(f"{indent}{label.ljust(width)}  {_value(value)}")
    return out


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "; ".join(_value(v) for v in value) or "-"
    return str(value)
