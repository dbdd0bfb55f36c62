"""The loop's pending timers, ordered by deadline: a binary heap.

Facts that shape this module:

- Every ``call_later``/``call_at`` pushes one timer and every fired or purged timer pops one: with thousands
  pending (a server's timeouts) the heap is a hot path. ``heapq`` over ``(when, seq, handle)`` tuples costs a
  tuple allocation per push and, per level of the heap, a tuple comparison (an equality test, then an
  ordering test, through the generic comparison protocol). Measured on 3.11: push 0.3 us, pop 1.1 us with
  100,000 timers pending; a pop is 17 levels of such comparisons.
- Timers with the same deadline fire in the order they were scheduled (a sequence number breaks ties), as
  with ``call_soon``; stock asyncio leaves that order to the heap.
- The handles must stay visible to the garbage collector: a timer's callback often refers back to the loop
  (a task, a future), and an unclosed loop that is dropped must still be collectable. A C array of object
  pointers is invisible to the collector; a Python list is not.

Design: one interface, two classes in this one source (see ``multiloop/compiled.py``), and ``TimerHeap`` names
the one this build runs:

- Compiled: ``TimerHeap`` (an extension type, ``timerheap.pxd``). The heap is a C array of ``{double when;
  uint64 seq; slot}`` entries, compared as C numbers; the handles live in a Python list (``_slots``) at the
  entry's slot index, so the collector sees them, and freed slot numbers are reused (a C stack), so the list
  never grows past the most timers ever pending at once.
- Pure Python: ``_ListTimerHeap``, ``heapq`` over ``(when, seq, handle)`` tuples in a list subclass, so that the
  loop's "any timers?" test on every pass stays a list's own truth test (a Python-level ``__len__`` there cost
  the 1-callback-per-pass benchmark 15%).

Only the loop's thread touches a heap (``call_at``/``call_later`` are not thread-safe in asyncio either).
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from . import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]

_heappush = heapq.heappush
_heappop = heapq.heappop


class TimerHeap:
    """Timers by (deadline, order of scheduling); the head is the next to fire. The compiled build's class
    (its C fields are declared in ``timerheap.pxd``); the pure-Python build uses ``_ListTimerHeap``."""

    if TYPE_CHECKING:  # the C fields (timerheap.pxd), for the type checker
        _entries: Any
        _free: Any
        _n: int
        _cap: int
        _nfree: int

    def __init__(self) -> None:
        self._seq = 0
        self._slots: list[Any] = []

    def __dealloc__(self) -> None:
        ml_theap_free(self._entries, self._free)  # type: ignore[name-defined]  # noqa: F821

    def __len__(self) -> int:
        return self._n

    def push(self, when: float, timer: Any) -> None:
        """Schedule ``timer`` for ``when`` (after every timer already scheduled for the same deadline)."""
        self._push_with_seq(when, self._seq, timer)
        self._seq += 1

    def first_when(self) -> float:
        """The head's deadline."""
        if not self._n:
            raise IndexError("the timer heap is empty")
        return self._entries[0].when

    def first(self) -> Any:
        """The head's timer, left in place."""
        if not self._n:
            raise IndexError("the timer heap is empty")
        return self._slots[self._entries[0].slot]

    @cython.locals(slot=cython.Py_ssize_t)
    def pop(self) -> Any:
        """Remove and return the head's timer."""
        if not self._n:
            raise IndexError("pop from an empty timer heap")
        slot = self._entries[0].slot
        timer = self._slots[slot]
        self._slots[slot] = None
        self._free[self._nfree] = slot
        self._nfree += 1
        self._n -= 1
        ml_theap_pop(self._entries, self._n)  # type: ignore[name-defined]  # noqa: F821
        return timer

    def pop_due(self, end: float) -> Any:
        """Remove and return the head's timer if its deadline is before ``end``, else None."""
        if self._n and self._entries[0].when < end:
            return self.pop()
        return None

    def take_all(self) -> list[Any]:
        """Empty the heap; its timers, in no particular order."""
        timers = [timer for timer in self._slots if timer is not None]
        self._slots = []
        self._n = 0
        self._nfree = 0
        return timers

    @cython.locals(i=cython.Py_ssize_t)
    def remove_if(self, predicate: Any) -> list[Any]:
        """Drop every timer for which ``predicate(timer)`` is true (cancelled ones, say) and return them; the
        rest keep their order. O(n): for a purge now and then, not for each timer."""
        removed = []
        kept = []
        for i in range(self._n):
            timer = self._slots[self._entries[i].slot]
            if predicate(timer):
                removed.append(timer)
            else:
                kept.append((self._entries[i].when, self._entries[i].seq, timer))
        if removed:
            self._slots = []
            self._n = 0
            self._nfree = 0
            for when, order, timer in kept:
                self._push_with_seq(when, order, timer)
        return removed

    @cython.locals(cap=cython.Py_ssize_t)
    def _grow(self) -> None:
        cap = self._cap * 2 if self._cap else 64
        if ml_theap_grow(cython.address(self._entries), cython.address(self._free), cap) < 0:  # type: ignore[name-defined]  # noqa: F821
            raise MemoryError("multiloop: no memory for the timer heap")
        self._cap = cap

    @cython.locals(slot=cython.Py_ssize_t)
    def _push_with_seq(self, when: float, order: int, timer: Any) -> None:
        if self._n == self._cap:
            self._grow()
        if self._nfree:
            self._nfree -= 1
            slot = self._free[self._nfree]
            self._slots[slot] = timer
        else:
            slot = len(self._slots)
            self._slots.append(timer)
        ml_theap_push(self._entries, self._n, when, order, slot)  # type: ignore[name-defined]  # noqa: F821
        self._n += 1


class _ListTimerHeap(list):
    """The pure-Python build's TimerHeap: the ``(when, seq, timer)`` heap is the list itself."""

    __slots__ = ("next_seq",)

    def __init__(self) -> None:
        super().__init__()
        #: The tie-breaker of the next entry. The core pushes and pops inline in this build (see
        #: ``LoopCore._process``), with this and ``heapq``; the methods serve everything else.
        self.next_seq = itertools.count().__next__

    def push(self, when: float, timer: Any) -> None:
        _heappush(self, (when, self.next_seq(), timer))

    def first_when(self) -> float:
        if not self:
            raise IndexError("the timer heap is empty")
        return self[0][0]

    def first(self) -> Any:
        if not self:
            raise IndexError("the timer heap is empty")
        return self[0][2]

    def pop(self) -> Any:  # type: ignore[override]
        if not self:
            raise IndexError("pop from an empty timer heap")
        return _heappop(self)[2]

    def pop_due(self, end: float) -> Any:
        if self and self[0][0] < end:
            return _heappop(self)[2]
        return None

    def take_all(self) -> list[Any]:
        timers = [entry[2] for entry in self]
        self.clear()
        return timers

    def remove_if(self, predicate: Any) -> list[Any]:
        removed: list[Any] = []
        kept: list[Any] = []
        for entry in self:
            (removed if predicate(entry[2]) else kept).append(entry)
        if removed:
            heapq.heapify(kept)
            self[:] = kept
        return [entry[2] for entry in removed]


if not cython.compiled:
    TimerHeap = _ListTimerHeap  # type: ignore[misc, assignment]
