"""Instruments: objects the loop tells what it is doing (trio's ``Instrument`` API is the model).

Facts that shape this module:

- An instrument is called from inside the loop's pass, between callbacks. Whatever it raises must not reach
  the loop (a tracing exporter's bug must not take the application down), so every call is guarded; the
  instrument that raised is removed at once (it would most likely raise again on every callback) and the
  failure is reported once, through the loop's exception handler, naming the instrument and the hook.
  ``SystemExit`` and ``KeyboardInterrupt`` pass through, as they do out of callbacks (``asyncio.Handle._run``).
- Hooks come in pairs (``before_io_wait``/``after_io_wait``, ``before_callback``/``after_callback``), and an
  instrument that measures something between the two must never get an ``after`` without its ``before``.
  Instruments may be added and removed at any time, also by an instrument or a callback in the middle of a
  pair; so an ``after`` goes only to instruments that were attached for the ``before`` and still are.
- Which hooks an instrument has is looked up once, when it is added (a bound method per hook), so a pass asks
  nothing of an instrument that does not care about a hook. Methods inherited unchanged from
  :class:`Instrument` (all no-ops) count as absent.
- Reading the clock around every callback is the expensive part; it is done only while someone needs a
  duration (an instrument with ``slow_callback``, or the built-in timings).

- No instrument must mean no cost (the loop is the hot path of every asyncio program), in the compiled core as
  in the pure-Python one. So the core holds the set in one field that is None while nothing is attached; its
  pass tests that field once per pass and per wait (never per callback) and runs its plain code when it is
  None; otherwise the ready callbacks are run here (:meth:`InstrumentSet.run_ready`), hooks around each.

The loop owns one :class:`InstrumentSet` from the first ``add_instrument`` (or ``enable_timings``) on.
:func:`attach_plugin_instruments` asks installed plugins (the pluggy hook ``multiloop_instruments``, see
:mod:`multiloop.hookspecs`) for the instruments of a new loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .timings import TimingsRecorder

__all__ = ["Instrument", "HOOKS", "InstrumentSet", "attach_plugin_instruments"]

_monotonic = time.monotonic


class Instrument:
    """The hooks an instrument may define (all optional; subclassing this class is optional too).

    Pass an instance to ``loop.add_instrument()``. Each method here does nothing, and a method inherited
    unchanged from this class is never called, so a subclass pays only for what it overrides. Every hook is
    called in the loop's thread, from inside the loop's pass; it should be quick (it delays every callback)
    and must not block. An instrument that raises is removed from the loop and reported through the loop's
    exception handler.
    """

    def before_io_wait(self, timeout: float | None) -> None:
        """Once per loop pass, before the loop waits for I/O. ``timeout``: how long it may block, in seconds (0:
        callbacks are ready, it only checks; None: no timer is due, it waits until an fd is ready)."""

    def after_io_wait(self, timeout: float | None) -> None:
        """Once per loop pass, when the wait is over, before the pass queues fd callbacks and due timers and
        runs the ready callbacks. ``timeout`` is the one ``before_io_wait`` got."""

    def before_callback(self, handle: asyncio.Handle) -> None:
        """Before the loop runs a callback: a ``call_soon``/``call_soon_threadsafe`` callback (task steps and
        future done-callbacks are those), a due timer (``handle`` is an ``asyncio.TimerHandle``), an fd reader
        or writer callback (``add_reader``, transports), a signal handler. Cancelled handles are not run and
        not reported."""

    def after_callback(self, handle: asyncio.Handle) -> None:
        """After that callback returned, also when it raised (the exception went to the exception handler)."""

    def slow_callback(self, handle: asyncio.Handle, duration: float) -> None:
        """After a callback that ran for at least ``loop.slow_callback_duration`` seconds (``duration``), before
        ``after_callback``. Works outside debug mode: while an instrument has this hook, the loop times every
        callback."""

    def task_spawned(self, task: asyncio.Task[Any]) -> None:
        """A task was created by ``loop.create_task`` (``asyncio.create_task``, ``ensure_future``,
        ``TaskGroup``, ``gather`` of coroutines...), with or without a task factory. An eager task (3.12+
        ``asyncio.eager_task_factory``) is reported after its first step, which ran inside ``create_task``.
        A task constructed directly (``asyncio.Task(coro, loop=loop)``) does not go through the loop and is not
        seen."""

    def task_exited(self, task: asyncio.Task[Any]) -> None:
        """A task is done (returned, raised or was cancelled). Reported for the tasks created while an
        instrument with this hook was attached; called once per task, from the loop's pass (a done-callback),
        to the instruments with this hook attached at that time."""


#: Every hook name, in the order of a pass.
HOOKS: tuple[str, ...] = ("before_io_wait", "after_io_wait", "before_callback", "after_callback",
                          "slow_callback", "task_spawned", "task_exited")

_Table = tuple[tuple[object, Callable[..., object]], ...]


def _hooks_of(instrument: object) -> dict[str, Callable[..., object]]:
    """The hooks ``instrument`` really has (bound methods), or TypeError saying what is wrong with it."""
    if isinstance(instrument, type):
        raise TypeError(f"add_instrument() needs an instance, not the class {instrument.__qualname__}")
    found = {}
    for name in HOOKS:
        method = getattr(instrument, name, None)
        if method is None:
            continue
        if not callable(method):
            raise TypeError(f"instrument {instrument!r}: {name} must be a method, not {type(method).__name__}")
        if getattr(method, "__func__", None) is getattr(Instrument, name):
            continue  # the no-op of the base class
        found[name] = method
    if not found:
        raise TypeError(f"{instrument!r} defines none of the instrument hooks ({', '.join(HOOKS)})")
    return found


class InstrumentSet:
    """The instruments of one loop, by hook, and the guarded calls to them.

    ``loop`` is the loop (its exception handler gets the failures; ``slow_callback_duration`` is read per
    callback, as debug mode does); ``on_change`` is called after every change of membership (the loop switches
    between its plain and instrumented pass, and installs or removes its task-spawn reporter).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None]) -> None:
        self._loop = loop
        self._on_change = on_change
        self.members: tuple[object, ...] = ()
        self.generation = 0  # changes with every add/remove: the cheap "did anything change?" test
        self.before_io_wait_hooks: _Table = ()
        self.after_io_wait_hooks: _Table = ()
        self.before_callback_hooks: _Table = ()
        self.after_callback_hooks: _Table = ()
        self.slow_callback_hooks: _Table = ()
        self.task_spawned_hooks: _Table = ()
        self.task_exited_hooks: _Table = ()
        #: The built-in timings recorder, while timings are enabled (not a member: the loop feeds it directly).
        self.timings: TimingsRecorder | None = None
        #: Whether callbacks are timed (someone wants a duration).
        self.measure = False
        #: Whether tasks must be reported (someone has task_spawned or task_exited).
        self.task_hooks = False
        self._hooks: dict[int, dict[str, Callable[..., object]]] = {}
        self._wait_members: tuple[object, ...] = ()
        self._wait_generation = -1
        self._wait_timeout: float | None = None

    # -- membership ------------------------------------------------------------------------------------------
    def __bool__(self) -> bool:
        """Whether the loop needs its instrumented pass: an instrument or the timings."""
        return bool(self.members) or self.timings is not None

    def __contains__(self, instrument: object) -> bool:
        return any(m is instrument for m in self.members)

    def add(self, instrument: object) -> bool:
        """Attach ``instrument``; False if it already is (nothing changes)."""
        if instrument in self:
            return False
        self._hooks[id(instrument)] = _hooks_of(instrument)
        self.members += (instrument,)
        self._rebuild()
        return True

    def remove(self, instrument: object) -> bool:
        """Detach ``instrument``; False if it was not attached."""
        if instrument not in self:
            return False
        self.members = tuple(m for m in self.members if m is not instrument)
        del self._hooks[id(instrument)]
        self._rebuild()
        return True

    def set_timings(self, recorder: TimingsRecorder | None) -> None:
        self.timings = recorder
        self._rebuild()

    def _rebuild(self) -> None:
        self.generation += 1
        for name in HOOKS:
            table = tuple((m, self._hooks[id(m)][name]) for m in self.members if name in self._hooks[id(m)])
            setattr(self, f"{name}_hooks", table)
        self.measure = bool(self.slow_callback_hooks) or self.timings is not None
        self.task_hooks = bool(self.task_spawned_hooks or self.task_exited_hooks)
        self._on_change()

    def _still_attached(self, before: tuple[object, ...], table: _Table) -> _Table:
        """The part of ``table`` whose instrument was attached at ``before`` and still is."""
        return tuple((m, fn) for m, fn in table if any(b is m for b in before))

    # -- calling ---------------------------------------------------------------------------------------------
    def _call(self, table: _Table, name: str, *args: Any) -> None:
        generation = self.generation
        for instrument, hook in table:
            if self.generation != generation and instrument not in self:
                continue  # removed by an instrument called before it, in this very loop
            try:
                hook(*args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - whatever it is, it is the instrument's, not the loop's
                self._failed(instrument, name, exc)

    def _failed(self, instrument: object, name: str, exc: BaseException) -> None:
        if not self.remove(instrument):
            return  # removed in the meantime (by its own hook?): it was reported, or removed on purpose
        self._loop.call_exception_handler({
            "message": f"multiloop instrument {instrument!r} raised {type(exc).__name__} in {name}(); it has "
                       f"been removed from the loop",
            "exception": exc, "instrument": instrument, "hook": name})

    def before_io_wait(self, timeout: float | None) -> None:
        self._wait_members = self.members
        self._wait_generation = self.generation
        self._wait_timeout = timeout
        if self.before_io_wait_hooks:
            self._call(self.before_io_wait_hooks, "before_io_wait", timeout)
        if self.timings is not None:
            self.timings.wait_started()

    def after_io_wait(self) -> None:
        """The wait ``before_io_wait`` announced is over (its ``timeout`` is passed on again)."""
        if self._wait_generation < 0:
            return  # the wait began before anything was attached: there is no "before" to pair with
        if self.timings is not None:
            self.timings.wait_ended()
        table = self.after_io_wait_hooks
        if self._wait_generation != self.generation:
            table = self._still_attached(self._wait_members, table)
        self._wait_members = ()
        self._wait_generation = -1
        if table:
            self._call(table, "after_io_wait", self._wait_timeout)

    def run_ready(self, ntodo: int, popleft: Callable[[], Any], debug_runner: Callable[[Any], object] | None) -> None:
        """The loop's instrumented pass: run the ``ntodo`` ready callbacks (``popleft``), with the hooks around
        each (the plain pass does the same without them). ``debug_runner``: the loop's debug-mode runner, when
        debug mode is on (it warns about slow callbacks and tracks the current handle)."""
        for _ in range(ntodo):
            handle = popleft()
            if handle._cancelled:
                continue
            if self.measure or debug_runner is not None:
                self.run(handle, debug_runner)
                continue
            # The common case, run() inlined (a tracing instrument is called twice per callback: every call
            # saved here is a third of what it costs): hooks around the callback, no clock reads.
            generation = self.generation
            members = self.members
            for instrument, hook in self.before_callback_hooks:
                if self.generation != generation and instrument not in self:
                    continue
                try:
                    hook(handle)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # noqa: BLE001 - the instrument's, not the loop's
                    self._failed(instrument, "before_callback", exc)
            try:
                handle._run()
            finally:
                table = self.after_callback_hooks
                if table:
                    if self.generation != generation:
                        table = self._still_attached(members, table)
                    self._call(table, "after_callback", handle)

    def run(self, handle: Any, runner: Callable[[Any], object] | None) -> None:
        """Run one callback with the hooks around it: ``handle._run()``, or ``runner(handle)``."""
        generation = self.generation
        members = self.members
        timings = self.timings
        if self.before_callback_hooks:
            self._call(self.before_callback_hooks, "before_callback", handle)
        try:
            if self.measure:
                start = _monotonic()
                if runner is None:
                    handle._run()
                else:
                    runner(handle)
                duration = _monotonic() - start
                if timings is not None:
                    timings.ran(handle, start, duration)
                if duration >= self._loop.slow_callback_duration:
                    table = self.slow_callback_hooks
                    if self.generation != generation:
                        table = self._still_attached(members, table)
                    if table:
                        self._call(table, "slow_callback", handle, duration)
            elif runner is None:
                handle._run()
            else:
                runner(handle)
        finally:
            table = self.after_callback_hooks
            if self.generation != generation:
                table = self._still_attached(members, table)
            if table:
                self._call(table, "after_callback", handle)

    def task_created(self, task: asyncio.Task[Any]) -> None:
        """A task came out of the loop's ``create_task``: report it, and watch for its end."""
        if self.task_exited_hooks:
            task.add_done_callback(self.task_exited)
        if self.task_spawned_hooks:
            self._call(self.task_spawned_hooks, "task_spawned", task)

    def task_exited(self, task: asyncio.Task[Any]) -> None:
        if self.task_exited_hooks:
            self._call(self.task_exited_hooks, "task_exited", task)


def attach_plugin_instruments(loop: asyncio.AbstractEventLoop, add: Callable[[object], object]) -> None:
    """Attach to ``loop``, with ``add``, the instruments installed plugins want on it (the hook
    ``multiloop_instruments``).

    Each plugin is called on its own (pluggy's ``subset_hook_caller``, which keeps hook wrappers and ordering
    working), so a plugin that raises, returns something that is not a list of instruments, or returns an
    object ``add`` refuses is reported -- through the loop's exception handler, naming the plugin -- and the
    other plugins still attach theirs."""
    from .registry import get_registry

    registry = get_registry()
    pm = registry.pm
    impls = [impl for impl in pm.hook.multiloop_instruments.get_hookimpls()
             if not (impl.hookwrapper or impl.wrapper)]
    if not impls:
        return
    everyone = [impl.plugin for impl in impls]
    for impl in impls:
        others = [p for p in everyone if p is not impl.plugin]
        try:
            for result in pm.subset_hook_caller("multiloop_instruments", remove_plugins=others)(loop=loop):
                if result is None:
                    continue
                if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
                    raise TypeError(f"multiloop_instruments() returned {type(result).__name__}, expected a list "
                                    "of instruments")
                for instrument in result:
                    add(instrument)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - a broken plugin must not break loop creation
            name = impl.plugin_name.removeprefix("entrypoint:")
            loop.call_exception_handler({
                "message": f"multiloop plugin {name!r} ({registry.plugin_origin(impl.plugin_name)}) failed to "
                           f"attach its instruments (multiloop_instruments hook): {type(exc).__name__}: {exc}",
                "exception": exc, "plugin": name})
