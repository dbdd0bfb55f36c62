"""call_soon_threadsafe's handles wait in the ready queue out of the cyclic collector's sight while the compiled
pass runs (GIL builds: ``_UNTRACK_TS`` in multiloop/core.py, ``ml_gc_untrack`` in multiloop/_fasthandles.pxd).

What must hold in every build: the collector frees everything it would have freed with tracked handles. A
cycle through a handle is freed once the handle has run; a loop stopped with posts still queued tracks them
again, so a loop dropped without ``close()`` is still freed; a hooked pass (debug mode) tracks the queued
ones before it runs them. Where untracking applies, the tests also check that it happens, so that losing it
shows up here and not only in the benchmark.

Each test posts from a thread while the loop thread waits inside a callback for that thread to finish: the
post is then queued for certain, and the loop cannot take it before the test has looked at it.
"""

from __future__ import annotations

import asyncio
import gc
import sysconfig
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import multiloop

#: Whether this build untracks queued posts: a compiled core on an interpreter built with a GIL. The C code
#: decides by the build (Py_GIL_DISABLED), not by whether a free-threaded build runs with its GIL enabled.
BUILD_UNTRACKS = multiloop.compiled.status()["active"] and not sysconfig.get_config_var("Py_GIL_DISABLED")


@pytest.fixture
def untracks(backend: str) -> bool:
    """Whether posts to a running loop on ``backend`` are untracked: only in run_forever's own compiled pass
    loop, so not on a backend that drives the loop itself (the trio bridge), where they stay tracked."""
    probe = multiloop.new_loop(backend)
    try:
        return BUILD_UNTRACKS and not probe._poller.drives_loop
    finally:
        probe.close()


def post_from_thread(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> Any:
    """``loop.call_soon_threadsafe(callback)`` from another thread, waited for here; returns the handle and
    whether the collector tracked it just after the post."""
    out: dict[str, Any] = {}

    def poster() -> None:
        handle = loop.call_soon_threadsafe(callback)
        out["tracked"] = gc.is_tracked(handle)
        out["handle"] = handle

    thread = threading.Thread(target=poster)
    thread.start()
    thread.join()
    return out["handle"], out["tracked"]


class Owner:
    """An object that keeps the handle of its own posted method: a cycle through the handle."""

    handle: Any = None
    runs = 0

    def method(self) -> None:
        self.runs += 1


def test_a_post_is_untracked_while_queued_and_tracked_again_before_it_runs(loop, untracks):
    tracked_when_run: list[bool] = []
    box: list[Any] = []

    async def main() -> None:
        handle, tracked = post_from_thread(loop, lambda: tracked_when_run.append(gc.is_tracked(box[0])))
        box.append(handle)
        assert tracked is (not untracks)
        assert gc.is_tracked(handle) is (not untracks)  # still queued: this coroutine holds the loop thread
        for _ in range(3):
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert tracked_when_run == [True]
    assert gc.is_tracked(box[0])


def test_a_cycle_through_a_handle_is_freed_once_the_handle_ran(loop):
    refs: list[weakref.ref[Owner]] = []

    async def main() -> None:
        owner = Owner()
        owner.handle, _ = post_from_thread(loop, owner.method)
        refs.append(weakref.ref(owner))
        del owner
        for _ in range(3):
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    owner = refs[0]()
    assert owner is not None and owner.runs == 1
    del owner
    gc.collect()
    assert refs[0]() is None, "a handle that ran stayed out of the collector's sight: its cycle leaked"


def run_until_stopped_with_a_post_queued(backend: str) -> tuple[dict[str, Any], weakref.ref[Any],
                                                                   weakref.ref[Owner]]:
    """A loop on ``backend`` stopped with one post still queued, then dropped unclosed: what was seen of the
    post, and weak references to the loop and to the post's owner (nothing else of the run stays alive)."""
    lp = multiloop.new_loop(backend)
    owner = Owner()
    out: dict[str, Any] = {}

    def stop_then_post() -> None:
        lp.stop()  # this pass ends with the callbacks it had; the post waits for a next run
        handle, out["tracked"] = post_from_thread(lp, owner.method)
        out["handle"] = weakref.ref(handle)

    lp.call_soon(stop_then_post)
    lp.run_forever()
    handle = out.pop("handle")()
    out["ran"] = owner.runs
    out["cancelled"] = handle.cancelled()
    out["tracked_after_run_forever"] = gc.is_tracked(handle)
    return out, weakref.ref(lp), weakref.ref(owner)


def test_a_loop_stopped_with_posts_queued_tracks_them_and_is_freed_if_dropped(backend, untracks):
    seen, loop_ref, owner_ref = run_until_stopped_with_a_post_queued(backend)
    assert seen["tracked"] is (not untracks)
    assert seen["ran"] == 0 and not seen["cancelled"]
    assert seen["tracked_after_run_forever"], "run_forever returned with a queued post still untracked"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the unclosed loop's own warning: expected here
        # A finaliser in the cycle may keep it for one more collection (PEP 442 runs finalisers first and
        # frees only what is still unreachable after them); the trio bridge's objects have one.
        for _ in range(3):
            gc.collect()
            if loop_ref() is None:
                break
    assert loop_ref() is None and owner_ref() is None, "a dropped loop with a queued post was not freed"


def test_debug_mode_switched_on_with_posts_queued_tracks_them(loop, untracks):
    async def main() -> None:
        handle, tracked = post_from_thread(loop, lambda: None)
        assert tracked is (not untracks)
        loop.set_debug(True)  # the hooked pass runs handles through Python code that would not track them
        assert gc.is_tracked(handle)
        later, tracked = post_from_thread(loop, lambda: None)
        assert tracked and gc.is_tracked(later)
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    loop.set_debug(False)


def test_posts_made_while_the_loop_is_not_running_stay_tracked(loop):
    handle = loop.call_soon_threadsafe(lambda: None)
    assert gc.is_tracked(handle)
    thread_handle, tracked = post_from_thread(loop, lambda: None)
    assert tracked and gc.is_tracked(thread_handle)
    loop.run_until_complete(asyncio.sleep(0))
