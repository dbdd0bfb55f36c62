"""The timer heap (multiloop.timerheap) against a model: a list kept sorted by (deadline, order scheduled).

Runs against whichever implementation this process uses (compiled in the compiled tox envs, the .py source in
the pure ones and under MULTILOOP_NO_EXTENSIONS=1), so both are held to the same behaviour.
"""

from __future__ import annotations

import gc
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multiloop.timerheap import TimerHeap


class Timer:
    def __init__(self, name: int) -> None:
        self.name = name
        self.cancelled = False

    def __repr__(self) -> str:
        return f"Timer({self.name})"


# A few distinct deadlines, so that ties (same deadline, order of scheduling decides) are common.
deadlines = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.5, -3.0, 1e9])
ops = st.lists(st.one_of(
    st.tuples(st.just("push"), deadlines),
    st.tuples(st.just("pop"), st.none()),
    st.tuples(st.just("cancel_some"), st.integers(0, 3)),
    st.tuples(st.just("take_all"), st.none()),
), max_size=120)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_heap_matches_a_sorted_model(sequence):
    heap = TimerHeap()
    model: list[tuple[float, int, Timer]] = []
    order = 0
    for op, arg in sequence:
        if op == "push":
            timer = Timer(order)
            heap.push(arg, timer)
            model.append((arg, order, timer))
            model.sort(key=lambda e: (e[0], e[1]))
            order += 1
        elif op == "pop":
            if model:
                assert heap.first_when() == model[0][0]
                assert heap.first() is model[0][2]
                assert heap.pop() is model.pop(0)[2]
            else:
                with pytest.raises(IndexError):
                    heap.pop()
        elif op == "cancel_some":
            for i, (_, _, timer) in enumerate(model):
                timer.cancelled = i % 4 == arg
            removed = heap.remove_if(lambda t: t.cancelled)
            expected = [e[2] for e in model if e[2].cancelled]
            assert sorted(removed, key=lambda t: t.name) == sorted(expected, key=lambda t: t.name)
            model = [e for e in model if not e[2].cancelled]
        else:
            taken = heap.take_all()
            assert sorted(taken, key=lambda t: t.name) == sorted((e[2] for e in model), key=lambda t: t.name)
            model = []
        assert len(heap) == len(model)
    assert [heap.pop() for _ in range(len(heap))] == [e[2] for e in model]
    assert len(heap) == 0


def test_empty_heap_says_so():
    heap = TimerHeap()
    for method in (heap.pop, heap.first, heap.first_when):
        with pytest.raises(IndexError):
            method()
    assert heap.take_all() == []
    assert heap.remove_if(lambda t: True) == []


def test_many_timers_come_out_in_deadline_order_and_slots_are_reused():
    heap = TimerHeap()
    timers = [Timer(i) for i in range(5000)]
    for i, timer in enumerate(timers):
        heap.push(float((i * 7919) % 5000), timer)
    out = [heap.pop() for _ in range(2500)]
    assert [t.name for t in out] == sorted((t.name for t in out), key=lambda n: (n * 7919) % 5000)
    for timer in out:  # refill: freed places are taken again, the heap stays ordered
        heap.push(-1.0, timer)
    first = [heap.pop() for _ in range(2500)]
    assert [t.name for t in first] == [t.name for t in out]  # same deadline: the order they were pushed


def test_a_dropped_heap_is_collected_with_its_timers_even_in_a_cycle():
    """The handles stay visible to the garbage collector: a timer that refers back to its heap (a callback
    holding the loop) must not keep the pair alive forever."""
    heap = TimerHeap()
    timer = Timer(0)
    timer.heap = heap  # type: ignore[attr-defined]
    heap.push(1.0, timer)
    gone = weakref.ref(timer)
    del heap, timer
    gc.collect()
    assert gone() is None
