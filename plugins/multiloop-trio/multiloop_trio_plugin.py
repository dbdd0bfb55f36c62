"""multiloop's entry point for the trio backend (group ``multiloop``, name ``trio``).

Why a separate top-level module: the registry imports every entry point when it first loads, so whatever the
entry point names is imported by *every* program that uses multiloop. This module imports neither trio nor
the :mod:`multiloop_trio` package; both are imported by ``probe`` and ``factory``, i.e. only when the trio
backend is listed, named or created. Since ``auto=False``, automatic selection never probes it.
"""

from __future__ import annotations

import importlib.metadata

import multiloop

NAME = "trio"
MIN_TRIO = (0, 25)  # strict exception groups by default, TrioToken.run_sync_soon idempotent, lowlevel API


def _probe() -> str | None:
    try:
        import trio  # noqa: F401
        import trio.lowlevel as lowlevel
    except ImportError as exc:
        return f"trio is not importable ({exc}); install it with 'pip install trio'"
    version = importlib.metadata.version("trio")
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < MIN_TRIO:
        return f"trio {version} is too old; multiloop-trio needs trio >= {'.'.join(map(str, MIN_TRIO))}"
    for name in ("wait_readable", "wait_writable", "current_trio_token", "spawn_system_task", "reschedule",
                 "start_guest_run"):
        if not hasattr(lowlevel, name):
            return f"trio.lowlevel.{name} is missing on this platform (trio {version})"
    import multiloop_trio  # noqa: F401  - the backend itself must import cleanly too

    return None


def _factory() -> multiloop.Poller:
    from multiloop_trio import TrioPoller

    return TrioPoller()


@multiloop.hookimpl
def multiloop_backends() -> list[multiloop.Backend]:
    return [multiloop.Backend(
        name=NAME,
        priority=5,
        # No O1 claimed: waiting is O(ready fds) through the inner epoll/kqueue poller, but where none exists
        # the fallback runs a trio task per fd and direction, and this descriptor is built before that is
        # known (without importing trio). No fd limit either way, and no kernel state across runs (trio's
        # epoll/kqueue, its worker thread and the inner poller are made per run, trio.run or guest run), hence
        # fork-safe between runs.
        capabilities=frozenset({multiloop.Capability.UNLIMITED_FDS, multiloop.Capability.FORK_SAFE}),
        probe=_probe,
        factory=_factory,
        auto=False,
        description="trio: trio runs as the loop's guest (the loop waits in an inner epoll/kqueue poller); "
                    "asyncio<->trio bridge",
    )]
