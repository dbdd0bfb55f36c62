"""Backends that are subtly wrong, each in one way, for proving that ``check-backend`` catches them.

A plugin module like any other (``MULTILOOP_PLUGINS=multiloop_broken_backends`` or ``check-backend
--plugin multiloop_broken_backends``, with this directory on ``PYTHONPATH``). Each backend is a built-in one
with one bug added, named after the bug; ``BROKEN`` says which kit checks must catch it.
"""

from __future__ import annotations

import errno
import time

import multiloop
from multiloop import ERROR, INVALID, WRITE, Backend, PollerError, UnpollableFdError
from multiloop.pollers.epoll import EpollPoller
from multiloop.pollers.poll import PollPoller


class DropsWrite(PollPoller):
    """Never reports WRITE readiness (a translation that forgets POLLOUT)."""

    name = "broken_drops_write"

    def poll(self, timeout):
        return [(fd, ev & ~WRITE) for fd, ev in super().poll(timeout) if ev & ~WRITE]


class EpermIsGeneric(EpollPoller):
    """Reports epoll's EPERM for regular files as a generic PollerError, not UnpollableFdError."""

    name = "broken_eperm_generic"

    def register(self, fd, events):
        try:
            super().register(fd, events)
        except UnpollableFdError as exc:
            raise PollerError(f"{self.name}: cannot watch fd {fd}: {exc.strerror}", backend=self.name, fd=fd,
                              errno=errno.EPERM) from None


class Spins(PollPoller):
    """Ignores its timeout and never blocks."""

    name = "broken_spins"

    def poll(self, timeout):
        return super().poll(0)


class OversleepsTimeouts(PollPoller):
    """Ignores its timeout and blocks until an fd is ready (timers fire late or never)."""

    name = "broken_oversleeps"

    def poll(self, timeout):
        return super().poll(None if timeout is None or timeout > 0 else 0)


class NvalIsError(PollPoller):
    """Reports a closed fd (POLLNVAL) as a plain error, as multiloop once did: the callback is woken forever."""

    name = "broken_nval_is_error"

    def poll(self, timeout):
        return [(fd, (ev & ~INVALID) | ERROR if ev & INVALID else ev) for fd, ev in super().poll(timeout)]


class KeepsStaleRegistrations(EpollPoller):
    """Plain level-triggered epoll without the stale-registration defence."""

    name = "broken_keeps_stale"

    def discard_stale(self, fds):
        pass

    def _rebuild(self):
        pass


class LeaksItsEpoll(EpollPoller):
    """Never closes its epoll object."""

    name = "broken_leaks"

    def close(self):
        pass


class ForgetsNothing(PollPoller):
    """unregister() leaves the fd in the kernel's set: it keeps being reported."""

    name = "broken_forgets_nothing"

    def unregister(self, fd):
        self._registered -= 1


class HangsForever(PollPoller):
    """poll() never returns, whatever its timeout and whatever becomes ready."""

    name = "broken_hangs"

    def poll(self, timeout):
        while True:
            time.sleep(3600)


#: backend name -> (Poller class, kit checks that must fail for it, a phrase their messages must contain)
BROKEN = {
    cls.name: (cls, checks, phrase) for cls, checks, phrase in [
        (DropsWrite, {"poller_reports_writable", "writer_runs_when_writable",
                      "writer_runs_again_once_a_full_buffer_drains"}, "WRITE"),
        (EpermIsGeneric, {"poller_handles_regular_files", "regular_file_is_always_readable"},
         "UnpollableFdError"),
        (Spins, {"poller_poll_honours_its_timeout", "idle_loop_sleeps_until_its_timer"}, "block"),
        (OversleepsTimeouts, {"poller_poll_honours_its_timeout", "timer_wakes_a_loop_blocked_in_the_backend"},
         "timeout"),
        (NvalIsError, {"poller_never_keeps_reporting_a_closed_fd_as_ready", "closed_fd_never_spins"}, "INVALID"),
        (KeepsStaleRegistrations, {"stale_registration_of_a_dup_never_spins"}, "busy loop"),
        # every check that makes a poller catches a leak (the kit compares open fds around each check)
        (LeaksItsEpoll, {"poller_close_releases_everything", "reader_runs_when_data_arrives",
                         "poller_statistics_are_cheap_counters"}, "still open"),
        (ForgetsNothing, {"poller_forgets_unregistered_fds"}, "still reported it"),
        (HangsForever, {"poller_reports_readable", "timer_wakes_a_loop_blocked_in_the_backend"}, "hung"),
    ]
}


@multiloop.hookimpl
def multiloop_backends():
    return [Backend(name=name, priority=0, capabilities=frozenset({"unlimited_fds"}), probe=lambda: None,
                    factory=cls, auto=False, description=(cls.__doc__ or "").strip())
            for name, (cls, _, _) in BROKEN.items()]
