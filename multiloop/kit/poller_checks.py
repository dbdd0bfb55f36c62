"""Checks of the Poller contract itself: a backend's poller used directly, as :class:`multiloop.Poller`
documents it, without a loop in between.

Facts that shape these checks:

- A socket with an empty send buffer is writable; one of a socketpair whose peer sent data is readable;
  one whose peer closed is readable (EOF) and may also be in error (POLLHUP). A regular file is always
  ready, and some kernels refuse to watch it (epoll: EPERM), which the contract turns into
  ``UnpollableFdError``.
- The core masks what ``poll`` reports with what it registered, so a poller may report a little more than
  asked. What it may not do is report something *forever* that the core cannot clear (a direction that is
  not registered, an fd that was unregistered or closed without INVALID): level-triggered, every later wait
  returns at once, and the loop spins.
- A check cannot wait for "never": "not reported" is checked over a few short polls, which is what a loop
  would see in its next passes.

Each check fails with the contract clause it found broken; the loop-level checks
(:mod:`multiloop.kit.loop_checks`) then show what that breaks for asyncio code.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
import threading
import time
from collections.abc import Mapping

from multiloop.backend import ERROR, INVALID, READ, WRITE, Capability, Poller
from multiloop.errors import BadFdError, FdLimitError, PollerError, UnpollableFdError

from .harness import Harness, SkipCheck, check

#: How long a check waits for readiness that must come (generous: shared machines stall).
READY_WITHIN = 5.0


def poll_for(poller: Poller, fd: int, bits: int, timeout: float = READY_WITHIN) -> int:
    """Poll until ``fd`` is reported with any of ``bits``; the events seen for it (0: none in time)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return seen
        for f, ev in poller.poll(min(left, 0.5)):
            if f == fd:
                seen |= ev
        if seen & bits:
            return seen


def reported(poller: Poller, fd: int, rounds: int = 3, timeout: float = 0.02) -> list[int]:
    """What a few short polls report for ``fd`` (one entry per poll that mentioned it)."""
    seen = []
    for _ in range(rounds):
        for f, ev in poller.poll(timeout):
            if f == fd:
                seen.append(ev)
    return seen


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _bits(ev: int) -> str:
    names = [n for n, b in (("READ", READ), ("WRITE", WRITE), ("ERROR", ERROR), ("INVALID", INVALID)) if ev & b]
    return "|".join(names) or f"{ev:#x}"


@check("poller", quick=True)
def poller_reports_readable(t: Harness) -> None:
    """poll() reports READ for a registered fd once data is waiting."""
    poller = t.new_poller()
    a, b = t.socketpair()
    poller.register(a.fileno(), READ)
    b.send(b"x")
    seen = poll_for(poller, a.fileno(), READ)
    t.expect(seen & READ, f"fd {a.fileno()} was registered for READ and had data waiting, but poll() did not "
                          f"report READ for it within {READY_WITHIN} s (it reported {_bits(seen) if seen else 'nothing'})")


@check("poller", quick=True)
def poller_reports_writable(t: Harness) -> None:
    """poll() reports WRITE for a registered fd whose send buffer has room."""
    poller = t.new_poller()
    a, _ = t.socketpair()
    poller.register(a.fileno(), WRITE)
    seen = poll_for(poller, a.fileno(), WRITE)
    t.expect(seen & WRITE, f"fd {a.fileno()} was registered for WRITE and its send buffer was empty, but poll() "
                           f"did not report WRITE for it within {READY_WITHIN} s (it reported "
                           f"{_bits(seen) if seen else 'nothing'}): WRITE readiness is lost, so every transport "
                           f"with buffered data would stall")


@check("poller")
def poller_modify_changes_the_watched_directions(t: Harness) -> None:
    """modify() switches directions: a direction no longer registered stops being reported."""
    poller = t.new_poller()
    a, _ = t.socketpair()
    fd = a.fileno()
    poller.register(fd, WRITE)
    t.expect(poll_for(poller, fd, WRITE) & WRITE, f"WRITE was never reported for writable fd {fd}")
    poller.modify(fd, READ)
    late = [ev for ev in reported(poller, fd) if ev & WRITE]
    t.expect(not late, f"after modify(fd {fd}, READ) poll() kept reporting WRITE for it ({len(late)} of 3 "
                       f"polls): the core cannot clear that, so every wait would return at once (busy loop)")
    poller.modify(fd, READ | WRITE)
    t.expect(poll_for(poller, fd, WRITE) & WRITE, f"after modify(fd {fd}, READ|WRITE) WRITE was not reported "
                                                  f"again for the writable fd")


@check("poller", quick=True)
def poller_forgets_unregistered_fds(t: Harness) -> None:
    """unregister() stops reports for the fd, and succeeds for an fd closed behind the poller's back."""
    poller = t.new_poller()
    a, b = t.socketpair()
    fd = a.fileno()
    poller.register(fd, READ)
    b.send(b"x")
    t.expect(poll_for(poller, fd, READ) & READ, f"READ was never reported for readable fd {fd}")
    poller.unregister(fd)
    late = reported(poller, fd)
    if late:
        t.fail(f"fd {fd} was unregistered but poll() still reported it ({_bits(late[0])}); a wait reporting "
               f"an fd the core does not know returns at once, every time (busy loop)")
    c, d = socket.socketpair()
    cfd = c.fileno()
    poller.register(cfd, READ)
    c.close()
    d.close()
    try:
        poller.unregister(cfd)
    except Exception as exc:  # noqa: BLE001 - the contract says it must not fail
        t.fail(f"unregister(fd {cfd}) raised {type(exc).__name__}: {exc} for an fd that was closed behind the "
               f"poller's back; remove_reader() after close() is common and must work")


@check("poller", quick=True)
def poller_poll_honours_its_timeout(t: Harness) -> None:
    """poll(timeout) blocks about that long when nothing is ready: not much longer, and not zero."""
    poller = t.new_poller()
    a, b = t.socketpair()
    poller.register(a.fileno(), READ)
    # Nothing is ready. A poll that returns at once, empty, over and over is a busy loop.
    calls = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.3 and calls < 200:
        poller.poll(0.1)
        calls += 1
    t.expect(calls < 50, f"poll(0.1) with nothing ready returned {calls} times within 0.3 s: it does not block "
                         f"for its timeout (the loop would spin while waiting for a timer)")
    # And not (much) longer: a helper makes the fd readable after 5 s, so a poller that blocks past its
    # timeout returns then instead of never.
    rescue = threading.Timer(5.0, lambda: b.send(b"rescue"))
    rescue.start()
    try:
        t0 = time.monotonic()
        poller.poll(0.05)
        blocked = time.monotonic() - t0
    finally:
        rescue.cancel()
        rescue.join()
    t.expect(blocked < 3.0, f"poll(0.05) with nothing ready blocked {blocked:.1f} s (until an fd became ready): "
                            f"it ignores its timeout, so timers would fire late or never")
    t0 = time.monotonic()
    poller.poll(0)
    t.expect(time.monotonic() - t0 < 2.0, "poll(0) blocked: 0 means 'do not wait'")


@check("poller", quick=True)
def poller_refuses_closed_fds_clearly(t: Harness) -> None:
    """register() of a closed fd raises BadFdError naming the backend and the fd; the poller stays usable."""
    poller = t.new_poller()
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    try:
        poller.register(r, READ)
    except BadFdError as exc:
        t.expect(exc.fd == r and exc.backend in (t.backend, poller.name),
                 f"BadFdError for fd {r} carries fd={exc.fd!r}, backend={exc.backend!r}; it must name both")
    except Exception as exc:  # noqa: BLE001
        t.fail(f"register(closed fd {r}) raised {type(exc).__name__}: {exc}; the contract says BadFdError "
               f"(multiloop.translate_oserror turns EBADF into it)")
    else:
        poller.unregister(r)
        t.fail(f"register(closed fd {r}) succeeded; the contract says BadFdError, so that add_reader() fails "
               f"at the call that introduced the bad fd")
    a, b = t.socketpair()
    poller.register(a.fileno(), READ)
    b.send(b"x")
    t.expect(poll_for(poller, a.fileno(), READ) & READ, "after refusing a closed fd the poller no longer "
                                                        "reports readiness")


@check("poller", quick=True)
def poller_handles_regular_files(t: Harness) -> None:
    """A regular file is either watched (always ready) or refused with UnpollableFdError, nothing else."""
    poller = t.new_poller()
    fd = t.regular_file(b"data")
    try:
        poller.register(fd, READ)
    except UnpollableFdError:
        return  # the core treats it as always ready
    except PollerError as exc:
        t.fail(f"register(regular file fd {fd}) raised {type(exc).__name__} (errno {exc.errno}: {exc}) instead "
               f"of UnpollableFdError: the core cannot tell 'this kind of file is never waited for' from a real "
               f"failure, so add_reader() and connect_read_pipe() on a file (python app.py < data.txt) fail. "
               f"Translate the kernel's error with multiloop.translate_oserror() (EPERM -> UnpollableFdError)")
    except OSError as exc:
        t.fail(f"register(regular file fd {fd}) raised a bare {type(exc).__name__} ({exc}); registration errors "
               f"must be PollerError subclasses, and a file the kernel cannot watch UnpollableFdError "
               f"(multiloop.translate_oserror())")
    seen = poll_for(poller, fd, READ)
    poller.unregister(fd)
    t.expect(seen & READ, f"regular file fd {fd} was accepted for READ but never reported readable; files are "
                          f"always ready (or must be refused with UnpollableFdError)")


@check("poller")
def poller_reports_hangup(t: Harness) -> None:
    """An fd whose peer closed is reported (READ or ERROR), so its reader sees EOF."""
    poller = t.new_poller()
    a, b = t.socketpair()
    poller.register(a.fileno(), READ)
    b.close()
    seen = poll_for(poller, a.fileno(), READ | ERROR)
    t.expect(seen & (READ | ERROR), f"fd {a.fileno()}'s peer closed, but poll() reported "
                                    f"{_bits(seen) if seen else 'nothing'} for it within {READY_WITHIN} s: a "
                                    f"reader would never see EOF")


@check("poller", quick=True)
def poller_never_keeps_reporting_a_closed_fd_as_ready(t: Harness) -> None:
    """An fd closed while registered is reported INVALID or not at all, never as plain readiness forever."""
    poller = t.new_poller()
    a, b = socket.socketpair()
    fd = a.fileno()
    poller.register(fd, READ)
    b.send(b"pending")
    poll_for(poller, fd, READ)
    a.close()
    b.close()
    try:
        seen = reported(poller, fd)
    finally:
        try:
            poller.unregister(fd)
        except Exception as exc:  # noqa: BLE001
            t.fail(f"unregister(fd {fd}) after it was closed raised {type(exc).__name__}: {exc}")
    plain = [ev for ev in seen if not ev & INVALID]
    t.expect(len(plain) < 2,
             f"fd {fd} was closed behind the poller's back and poll() kept reporting it as {_bits(plain[0]) if plain else ''} "
             f"({len(plain)} of 3 polls) without INVALID: the core would wake its callback on every pass, "
             f"and the callback can never clear it (busy loop). Report INVALID (poll(2)'s POLLNVAL, "
             f"select()'s EBADF) or stop reporting the fd")


@check("poller")
def poller_close_releases_everything(t: Harness) -> None:
    """close() releases the poller's kernel objects: no fd stays open."""
    from .harness import open_fds

    a, _ = t.socketpair()
    before = open_fds()
    poller = t.descriptor.factory()
    poller.register(a.fileno(), READ | WRITE)
    poller.poll(0)
    poller.unregister(a.fileno())
    poller.close()
    leaked = {fd: what for fd, what in open_fds().items() if fd not in before}
    t.expect(not leaked, f"after Poller.close() these fds were still open: {leaked}")


@check("poller")
def poller_statistics_are_cheap_counters(t: Harness) -> None:
    """statistics() returns a mapping of counter names to ints ('registered' = fds watched, if present)."""
    poller = t.new_poller()
    a, b = t.socketpair()
    poller.register(a.fileno(), READ)
    poller.register(b.fileno(), WRITE)
    stats = poller.statistics()
    t.expect(isinstance(stats, Mapping), f"statistics() returned {type(stats).__name__}, not a mapping")
    bad = {k: v for k, v in stats.items() if not isinstance(k, str) or not isinstance(v, int)}
    t.expect(not bad, f"statistics() must map names to ints; these are not: {bad!r}")
    if "registered" in stats:
        t.expect(stats["registered"] == 2, f"statistics()['registered'] is {stats['registered']} with 2 fds "
                                           f"registered")
        poller.unregister(b.fileno())
        now = poller.statistics()["registered"]
        t.expect(now == 1, f"statistics()['registered'] is {now} after unregistering one of 2 fds")


@check("poller")
def poller_fd_limit_matches_its_capabilities(t: Harness) -> None:
    """An fd above 1024 works with 'unlimited_fds'; without it, it is refused with FdLimitError."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    high = 2000
    while _is_open(high):  # never dup2() over an fd someone else owns
        high += 1
    if hard != resource.RLIM_INFINITY and hard <= high:
        raise SkipCheck(f"RLIMIT_NOFILE hard limit {hard} does not allow fd {high}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, high + 1), hard))
    t.defer(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
    a, b = t.socketpair()
    os.dup2(a.fileno(), high)
    t.defer(lambda: os.close(high))
    poller = t.new_poller()
    unlimited = Capability.UNLIMITED_FDS in t.capabilities
    try:
        poller.register(high, READ)
    except FdLimitError as exc:
        t.expect(not unlimited, f"the backend declares 'unlimited_fds' but refused fd {high}: {exc}")
        t.expect(isinstance(exc, ValueError) and exc.fd == high, "FdLimitError must be a ValueError naming the fd")
        return
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            raise SkipCheck("cannot open an fd that high here") from None
        t.fail(f"register(fd {high}) raised {type(exc).__name__}: {exc}; an fd above the backend's limit must be "
               f"refused with FdLimitError, and with 'unlimited_fds' accepted")
    t.expect(unlimited, f"the backend lacks 'unlimited_fds' but accepted fd {high}; declare the capability")
    b.send(b"x")
    seen = poll_for(poller, high, READ)
    poller.unregister(high)
    t.expect(seen & READ, f"fd {high} was accepted but never reported readable")
