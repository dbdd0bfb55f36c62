"""The kqueue(2) backend (macOS, FreeBSD, ...). PLACEHOLDER: full implementation in progress."""

from __future__ import annotations

import select as _select

from .. import hookimpl
from ..backend import Backend, Capability

NAME = "kqueue"


def _probe() -> str | None:
    if not hasattr(_select, "kqueue"):
        return "select.kqueue is missing (kqueue exists on macOS and the BSDs, not on this platform)"
    return "not implemented yet"


@hookimpl
def multiloop_backends() -> list[Backend]:
    return [Backend(
        name=NAME, priority=40,
        capabilities=frozenset({Capability.O1, Capability.UNLIMITED_FDS, Capability.REGULAR_FILES,
                                Capability.EDGE_TRIGGERED}),
        probe=_probe, factory=lambda: None,  # type: ignore[arg-type,return-value]
        description="kqueue(2): macOS/BSD, O(ready fds) per wait",
    )]
