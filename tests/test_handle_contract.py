"""The core builds asyncio.Handle / TimerHandle objects without calling their __init__ (which costs a
get_debug() call per callback). That relies on their slot layout, a private detail of a public type: if a Python
release changes it, these tests fail and say what changed."""

from __future__ import annotations

import asyncio
import contextvars
import sys

import multiloop

HANDLE_SLOTS = {"_callback", "_args", "_cancelled", "_loop", "_source_traceback", "_repr", "_context"}
TIMER_SLOTS = {"_scheduled", "_when"}


def test_handle_slot_layout_is_what_the_core_fills_in():
    slots = set(asyncio.Handle.__slots__) - {"__weakref__"}
    assert slots == HANDLE_SLOTS, (
        f"Python {sys.version_info[:2]} changed asyncio.Handle.__slots__ to {sorted(slots)}; "
        f"multiloop/core.py call_soon/call_at fill in {sorted(HANDLE_SLOTS)}: update them")
    assert set(asyncio.TimerHandle.__slots__) == TIMER_SLOTS, (
        f"Python {sys.version_info[:2]} changed asyncio.TimerHandle.__slots__ to "
        f"{asyncio.TimerHandle.__slots__}; update multiloop/core.py call_at")


def _assert_same_state(fast, slow):
    for name in HANDLE_SLOTS - {"_context"}:
        assert getattr(fast, name) == getattr(slow, name), name
    assert isinstance(fast._context, contextvars.Context)


def test_fast_handles_match_handles_built_by_asyncio():
    loop = multiloop.new_loop()
    try:
        fast = loop.call_soon(print, 1)
        slow = asyncio.Handle(print, (1,), loop)
        _assert_same_state(fast, slow)
        assert repr(fast) == repr(slow)
        fast_t = loop.call_at(123.0, print, 1)
        slow_t = asyncio.TimerHandle(123.0, print, (1,), loop)
        _assert_same_state(fast_t, slow_t)
        assert fast_t.when() == slow_t.when() == 123.0
        assert fast_t == slow_t and hash(fast_t) == hash(slow_t)
        fast_t.cancel()
        assert fast_t.cancelled() and loop.stats().cancelled_timers == 1
        fast.cancel()
        assert fast.cancelled()
    finally:
        loop.close()
