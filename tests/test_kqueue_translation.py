"""The kqueue backend's translation logic, specified against a fake kernel.

kqueue does not exist on Linux, so what runs everywhere is the translation: interest masks -> kevent change
lists, per-filter kevents -> one ``(fd, events)`` entry per fd, kernel errors -> multiloop errors, timeouts
and event-list sizes. ``FakeKqueue`` models the parts of kevent() the backend relies on: knotes keyed by
(ident, filter), ENOENT for deleting a missing knote, EBADF for a closed fd, and -- with no room in the event
list -- failing at the first bad change without applying the rest. Tests marked ``needs_kqueue`` run the
real thing; they only run where ``select.kqueue`` exists (macOS, FreeBSD: see .github/workflows/bsd-macos.yml).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import sys
from types import SimpleNamespace

import pytest

import multiloop
from multiloop.backend import ERROR, INVALID, READ, WRITE, Capability
from multiloop.errors import BackendUnavailableError, BadFdError, PollerError, UnpollableFdError
from multiloop.pollers import kqueue as kq_mod
from multiloop.pollers.kqueue import (
    HEADER,
    HOST,
    Change,
    KqConstants,
    KqueuePoller,
    build_changes,
    filter_count,
    max_events,
    merge_events,
    wait_timeout,
)

HAS_KQUEUE = hasattr(select, "kqueue")
needs_kqueue = pytest.mark.skipif(not HAS_KQUEUE, reason="needs a real kqueue (macOS, the BSDs)")
without_kqueue = pytest.mark.skipif(HAS_KQUEUE, reason="checks the behaviour where kqueue does not exist")

R, W = HEADER.filter_read, HEADER.filter_write
ADD, DEL = HEADER.ev_add, HEADER.ev_delete
EOF, EV_ERROR = HEADER.ev_eof, HEADER.ev_error
FD = 5


# ------------------------------------------------------------------------------------------------- fakes
class FakeKqueue:
    """Records every control() call and models kevent()'s registration semantics (see module docstring)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Change] | None, int, float | None]] = []
        self.knotes: set[tuple[int, int]] = set()
        self.closed_fds: set[int] = set()
        self.fail: dict[tuple[int, int, int], int] = {}  # (ident, filter, flags) -> errno, every time
        self.ready: list[Change] = []  # what the next wait returns
        self.closed = False
        self.close_calls = 0

    def control(self, changes, max_events, timeout=None):
        self.calls.append((None if changes is None else list(changes), max_events, timeout))
        for ch in changes or ():
            err = self.fail.get((ch.ident, ch.filter, ch.flags))
            if err is None and ch.ident in self.closed_fds:
                err = errno.EBADF
            if err is None and ch.flags & DEL and (ch.ident, ch.filter) not in self.knotes:
                err = errno.ENOENT
            if err is not None:
                assert max_events == 0, "the backend registers with no room for EV_ERROR records"
                raise OSError(err, os.strerror(err))  # the changes after this one are not applied
            if ch.flags & ADD:
                self.knotes.add((ch.ident, ch.filter))
            else:
                self.knotes.discard((ch.ident, ch.filter))
        if changes is None:
            ready, self.ready = self.ready[:max_events], self.ready[max_events:]
            return ready
        return []

    def close_fd(self, fd: int) -> None:
        """close(fd): the kernel drops every knote on it."""
        self.closed_fds.add(fd)
        self.knotes = {kn for kn in self.knotes if kn[0] != fd}

    def fileno(self) -> int:
        return 42

    def close(self) -> None:
        self.close_calls += 1
        self.closed = True


class FakeFs:
    """fstat() for fake fds: a socket unless told otherwise; EBADF once closed."""

    def __init__(self) -> None:
        self.modes: dict[int, int] = {}
        self.closed: set[int] = set()

    def fstat(self, fd: int):
        if fd in self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return SimpleNamespace(st_mode=self.modes.get(fd, stat.S_IFSOCK | 0o777))


def make_poller() -> tuple[KqueuePoller, FakeKqueue, FakeFs]:
    kq, fs = FakeKqueue(), FakeFs()
    poller = KqueuePoller(kqueue_factory=lambda: kq, kevent=Change, constants=HEADER, fstat=fs.fstat)
    return poller, kq, fs


def close_fd(kq: FakeKqueue, fs: FakeFs, fd: int) -> None:
    kq.close_fd(fd)
    fs.closed.add(fd)


def ev(ident: int, filt: int, flags: int = 0, fflags: int = 0, data: int = 0) -> Change:
    return Change(ident, filt, flags, fflags, data)


# ------------------------------------------------------------------------------------------- constants
def test_header_constants_are_the_bsd_and_macos_values():
    assert (HEADER.filter_read, HEADER.filter_write) == (-1, -2)
    assert (HEADER.ev_add, HEADER.ev_delete, HEADER.ev_error, HEADER.ev_eof) == (0x1, 0x2, 0x4000, 0x8000)


def test_constants_fall_back_to_the_header_values_for_what_select_lacks():
    assert KqConstants.from_module(SimpleNamespace()) == HEADER
    partial = KqConstants.from_module(SimpleNamespace(KQ_FILTER_READ=-9, KQ_EV_EOF=0x10))
    assert partial == KqConstants(filter_read=-9, filter_write=-2, ev_add=1, ev_delete=2, ev_error=0x4000,
                                  ev_eof=0x10)


@without_kqueue
def test_without_kqueue_the_module_imports_and_uses_the_header_values():
    assert HOST == HEADER
    assert kq_mod.Change is Change


@needs_kqueue
def test_with_kqueue_the_constants_are_selects():
    assert HOST == KqConstants(select.KQ_FILTER_READ, select.KQ_FILTER_WRITE, select.KQ_EV_ADD,
                               select.KQ_EV_DELETE, select.KQ_EV_ERROR, select.KQ_EV_EOF)


# ------------------------------------------------------------------------------------------ change lists
@pytest.mark.parametrize(("old", "new", "expected"), [
    (0, READ, [(FD, R, ADD)]),
    (0, WRITE, [(FD, W, ADD)]),
    (0, READ | WRITE, [(FD, R, ADD), (FD, W, ADD)]),
    (READ, READ | WRITE, [(FD, W, ADD)]),
    (WRITE, READ | WRITE, [(FD, R, ADD)]),
    (READ | WRITE, READ, [(FD, W, DEL)]),
    (READ | WRITE, WRITE, [(FD, R, DEL)]),
    (READ, WRITE, [(FD, R, DEL), (FD, W, ADD)]),
    (WRITE, READ, [(FD, R, ADD), (FD, W, DEL)]),
    (READ, 0, [(FD, R, DEL)]),
    (WRITE, 0, [(FD, W, DEL)]),
    (READ | WRITE, 0, [(FD, R, DEL), (FD, W, DEL)]),
    (READ, READ, []),
    (WRITE, WRITE, []),
    (READ | WRITE, READ | WRITE, []),
    (0, 0, []),
], ids=lambda v: v if isinstance(v, list) else {0: "none", READ: "R", WRITE: "W", READ | WRITE: "RW"}[v])
def test_change_list_touches_only_the_filters_that_changed(old, new, expected):
    assert build_changes(FD, old, new, Change, HEADER) == [Change(*e) for e in expected]


def test_change_list_uses_the_given_constructor_and_constants():
    odd = KqConstants(filter_read=-11, filter_write=-12, ev_add=0x100, ev_delete=0x200)
    calls = []

    def kevent(*args):
        calls.append(args)
        return args

    assert build_changes(7, READ, WRITE, kevent, odd) == [(7, -11, 0x200), (7, -12, 0x100)]
    assert calls == [(7, -11, 0x200), (7, -12, 0x100)]


@pytest.mark.parametrize(("mask", "count"), [(0, 0), (READ, 1), (WRITE, 1), (READ | WRITE, 2)])
def test_filter_count_is_one_knote_per_direction(mask, count):
    assert filter_count(mask) == count


# ------------------------------------------------------------------------------------------ event merging
def test_one_readable_fd_is_one_read_entry():
    assert merge_events([ev(FD, R, data=3)], HEADER) == [(FD, READ)]


def test_read_and_write_kevents_for_one_fd_merge_into_one_entry():
    assert merge_events([ev(FD, R), ev(FD, W)], HEADER) == [(FD, READ | WRITE)]
    assert merge_events([ev(FD, W), ev(FD, R)], HEADER) == [(FD, READ | WRITE)]


def test_entries_keep_the_kernels_order_across_fds():
    got = merge_events([ev(8, W), ev(FD, R), ev(8, R), ev(3, W)], HEADER)
    assert got == [(8, READ | WRITE), (FD, READ), (3, WRITE)]


def test_eof_on_read_reports_read_only():
    # The peer shut down its writing side: reading gives EOF, but the socket may still be written to.
    assert merge_events([ev(FD, R, EOF)], HEADER) == [(FD, READ)]


def test_eof_on_write_reports_write_only():
    assert merge_events([ev(FD, W, EOF)], HEADER) == [(FD, WRITE)]


def test_eof_with_a_socket_error_adds_error():
    assert merge_events([ev(FD, R, EOF, fflags=errno.ECONNRESET)], HEADER) == [(FD, READ | ERROR)]
    assert merge_events([ev(FD, W, EOF, fflags=errno.EPIPE)], HEADER) == [(FD, WRITE | ERROR)]


def test_ev_error_record_reports_error_whatever_its_filter():
    assert merge_events([ev(FD, W, EV_ERROR, data=errno.EPIPE)], HEADER) == [(FD, ERROR)]
    assert merge_events([ev(FD, R, EV_ERROR, data=errno.ENOENT), ev(FD, W)], HEADER) == [(FD, ERROR | WRITE)]


def test_ev_error_ebadf_reports_the_fd_invalid_not_in_error():
    # A closed fd: the core must drop the registration (INVALID), not wake its callbacks forever (ERROR).
    assert merge_events([ev(FD, W, EV_ERROR, data=errno.EBADF)], HEADER) == [(FD, INVALID)]
    assert merge_events([ev(FD, R, EV_ERROR, data=errno.EBADF), ev(6, R)], HEADER) == [(FD, INVALID), (6, READ)]


def test_ev_error_with_data_zero_is_a_receipt_not_an_error():
    assert merge_events([ev(FD, R, EV_ERROR | ADD, data=0)], HEADER) == []


def test_kevents_of_other_filters_are_ignored():
    assert merge_events([ev(FD, -7), ev(6, R)], HEADER) == [(6, READ)]  # -7: EVFILT_TIMER


def test_extra_error_fds_are_merged_with_kernel_events():
    assert merge_events([], HEADER, errors=[9]) == [(9, ERROR)]
    assert merge_events([ev(FD, R), ev(9, R)], HEADER, errors={9: WRITE}) == [(9, ERROR | READ), (FD, READ)]


def test_nothing_ready_is_an_empty_list():
    assert merge_events([], HEADER) == []


# ------------------------------------------------------------------------------- timeouts and list sizes
@pytest.mark.parametrize(("given", "passed"), [(None, None), (0, 0), (-1, 0), (-0.001, 0), (0.25, 0.25),
                                               (86400.0, 86400.0)])
def test_timeout_none_blocks_and_negative_becomes_zero(given, passed):
    assert wait_timeout(given) == passed
    poller, kq, _ = make_poller()
    poller.poll(given)
    assert kq.calls[-1] == (None, 1, passed)


@pytest.mark.parametrize(("nfilters", "size"), [(0, 1), (1, 1), (2, 2), (1000, 1000)])
def test_max_events_is_the_filter_count_and_at_least_one(nfilters, size):
    assert max_events(nfilters) == size


def test_poll_sizes_the_event_list_to_the_registered_filters():
    poller, kq, _ = make_poller()
    sizes = []

    def wait_size() -> int:
        poller.poll(0)
        sizes.append(kq.calls[-1][1])
        return sizes[-1]

    wait_size()
    poller.register(5, READ | WRITE)
    wait_size()
    poller.register(6, READ)
    wait_size()
    poller.modify(5, WRITE)
    wait_size()
    poller.unregister(5)
    wait_size()
    poller.unregister(6)
    wait_size()
    assert sizes == [1, 2, 3, 2, 1, 1]


def test_poll_returns_merged_kernel_events():
    poller, kq, _ = make_poller()
    poller.register(5, READ | WRITE)
    poller.register(6, READ)
    kq.ready = [ev(5, R), ev(6, R, EOF), ev(5, W)]
    assert poller.poll(None) == [(5, READ | WRITE), (6, READ)]
    assert kq.calls[-1] == (None, 3, None)


# ------------------------------------------------------------------------------------------ registration
def test_register_adds_one_filter_per_direction_in_one_call():
    poller, kq, _ = make_poller()
    poller.register(5, READ | WRITE)
    assert kq.calls == [([Change(5, R, ADD), Change(5, W, ADD)], 0, 0)]
    assert kq.knotes == {(5, R), (5, W)}


def test_modify_changes_only_the_filter_that_changed():
    poller, kq, _ = make_poller()
    poller.register(5, READ)
    poller.modify(5, READ | WRITE)
    poller.modify(5, WRITE)
    assert kq.calls[1:] == [([Change(5, W, ADD)], 0, 0), ([Change(5, R, DEL)], 0, 0)]
    assert kq.knotes == {(5, W)}


def test_modify_to_the_same_interest_makes_no_syscall():
    poller, kq, _ = make_poller()
    poller.register(5, READ)
    poller.modify(5, READ)
    assert len(kq.calls) == 1


def test_unregister_deletes_every_filter_in_one_call():
    poller, kq, _ = make_poller()
    poller.register(5, READ | WRITE)
    poller.unregister(5)
    assert kq.calls[-1] == ([Change(5, R, DEL), Change(5, W, DEL)], 0, 0)
    assert kq.knotes == set()
    assert poller.registered_filters == 0


# ------------------------------------------------------------------------------------------------ errors
def test_register_of_a_closed_fd_is_bad_fd_error_naming_backend_and_fd():
    poller, kq, fs = make_poller()
    fs.closed.add(5)
    with pytest.raises(BadFdError) as info:
        poller.register(5, READ)
    assert info.value.backend == "kqueue" and info.value.fd == 5 and info.value.errno == errno.EBADF
    assert str(info.value).startswith("kqueue: cannot watch fd 5")
    assert kq.calls == []  # refused before touching the kernel
    assert poller.registered_filters == 0


def test_ebadf_when_adding_a_filter_to_a_closed_fd_is_bad_fd_error():
    poller, kq, fs = make_poller()
    poller.register(5, READ)
    close_fd(kq, fs, 5)
    with pytest.raises(BadFdError) as info:
        poller.modify(5, READ | WRITE)
    assert info.value.backend == "kqueue" and info.value.fd == 5
    assert "fd 5" in str(info.value) and "EBADF" in str(info.value)


def test_deleting_filters_of_a_closed_fd_is_not_an_error():
    poller, kq, fs = make_poller()
    poller.register(5, READ | WRITE)
    close_fd(kq, fs, 5)  # EBADF for every change on it
    poller.unregister(5)
    assert poller.registered_filters == 0
    # The two-change call failed at its first change, so each change was retried alone.
    assert kq.calls[1:] == [([Change(5, R, DEL), Change(5, W, DEL)], 0, 0), ([Change(5, R, DEL)], 0, 0),
                            ([Change(5, W, DEL)], 0, 0)]


def test_enoent_on_delete_is_ignored():
    poller, kq, _ = make_poller()
    poller.register(5, READ)
    kq.knotes.clear()  # closed and the number reused: the knote went with the old file
    poller.unregister(5)
    poller.register(5, WRITE)
    assert kq.knotes == {(5, W)}


def test_a_failed_first_delete_does_not_leave_the_second_filter_behind():
    poller, kq, _ = make_poller()
    poller.register(5, READ | WRITE)
    kq.knotes.discard((5, R))  # kevent() stops at this ENOENT; WRITE would stay registered without a retry
    poller.unregister(5)
    assert kq.knotes == set()


def test_other_errors_become_poller_error_naming_backend_and_fd():
    poller, kq, _ = make_poller()
    kq.fail[(5, R, ADD)] = errno.ENOMEM
    with pytest.raises(PollerError) as info:
        poller.register(5, READ)
    err = info.value
    assert type(err) is PollerError
    assert (err.backend, err.fd, err.errno) == ("kqueue", 5, errno.ENOMEM)
    assert str(err).startswith("kqueue: cannot watch fd 5: ")
    assert poller.registered_filters == 0


def test_a_failed_registration_undoes_the_filters_it_added():
    poller, kq, _ = make_poller()
    kq.fail[(5, W, ADD)] = errno.ENOMEM
    with pytest.raises(PollerError):
        poller.register(5, READ | WRITE)
    assert kq.knotes == set()
    assert poller.registered_filters == 0
    assert kq.calls[-1] == ([Change(5, R, DEL)], 0, 0)  # the undo


def test_a_failed_modify_restores_the_previous_filters():
    poller, kq, _ = make_poller()
    poller.register(5, READ)
    kq.fail[(5, W, ADD)] = errno.ENOMEM
    with pytest.raises(PollerError) as info:
        poller.modify(5, WRITE)  # [DEL READ, ADD WRITE]
    assert str(info.value).startswith("kqueue: cannot change the watch on fd 5")
    assert kq.knotes == {(5, R)}
    assert poller.registered_filters == 1


def test_delete_errors_other_than_gone_are_reported():
    poller, kq, _ = make_poller()
    poller.register(5, READ)
    kq.fail[(5, R, DEL)] = errno.EINVAL
    with pytest.raises(PollerError, match="kqueue: cannot stop watching fd 5") as info:
        poller.unregister(5)
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize("code", [errno.EPIPE, errno.EPERM])
def test_write_filter_refused_because_the_peer_is_gone_is_reported_as_error(code):
    poller, kq, _ = make_poller()
    kq.fail[(5, W, ADD)] = code
    poller.register(5, WRITE)  # no exception: the fd is fine, its reader is gone
    assert poller.poll(None) == [(5, ERROR)]
    assert kq.calls[-1] == (None, 1, 0)  # an error is pending: never block
    assert poller.poll(5.0) == [(5, ERROR)]  # level-triggered, like POLLERR
    poller.modify(5, READ)  # the refused direction is no longer wanted
    assert poller.poll(None) == []
    assert kq.calls[-1] == (None, 1, None)


def test_ebadf_at_add_on_an_open_fd_means_peer_gone_not_bad_fd():
    poller, kq, _ = make_poller()  # NetBSD answers EBADF for a pipe whose reader closed
    kq.fail[(5, W, ADD)] = errno.EBADF
    poller.register(5, READ | WRITE)
    assert kq.knotes == {(5, R)}
    kq.ready = [ev(5, R)]
    assert poller.poll(1.0) == [(5, ERROR | READ)]
    poller.unregister(5)
    assert poller.poll(None) == [] and kq.knotes == set()


# ------------------------------------------------------------------------------------- kinds of files
@pytest.mark.parametrize("mode", [stat.S_IFREG, stat.S_IFDIR])
def test_regular_files_and_directories_are_unpollable_so_the_core_keeps_them_ready(mode):
    poller, kq, fs = make_poller()
    fs.modes[5] = mode | 0o644
    with pytest.raises(UnpollableFdError) as info:
        poller.register(5, READ)
    assert info.value.backend == "kqueue" and info.value.fd == 5
    assert kq.calls == []


@pytest.mark.parametrize("mode", [stat.S_IFSOCK, stat.S_IFIFO, stat.S_IFCHR])
def test_sockets_pipes_and_devices_are_watched(mode):
    poller, kq, fs = make_poller()
    fs.modes[5] = mode | 0o644
    poller.register(5, READ)
    assert kq.knotes == {(5, R)}


def test_character_device_kqueue_refuses_is_unpollable_so_the_core_keeps_it_ready():
    poller, kq, fs = make_poller()  # macOS answers EINVAL for some /dev files
    fs.modes[5] = stat.S_IFCHR | 0o666
    kq.fail[(5, W, ADD)] = errno.EINVAL
    with pytest.raises(UnpollableFdError) as info:
        poller.register(5, READ | WRITE)
    assert (info.value.backend, info.value.fd, info.value.errno) == ("kqueue", 5, errno.EINVAL)
    assert kq.knotes == set() and poller.registered_filters == 0


def test_einval_for_a_pipe_is_an_error_not_always_ready():
    poller, kq, fs = make_poller()
    fs.modes[5] = stat.S_IFIFO | 0o600
    kq.fail[(5, R, ADD)] = errno.EINVAL
    with pytest.raises(PollerError) as info:
        poller.register(5, READ)
    assert type(info.value) is PollerError and info.value.fd == 5


# -------------------------------------------------------------------------------------- close and fork
def test_close_closes_the_kqueue_and_forgets_registrations():
    poller, kq, _ = make_poller()
    poller.register(5, READ)
    assert poller.fileno() == 42
    poller.close()
    assert kq.close_calls == 1
    assert poller.registered_filters == 0


def _close_in_forked_child(kq_closed_in_child: bool) -> str:
    poller, kq, _ = make_poller()
    poller.register(5, READ)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            kq.closed = kq_closed_in_child  # what Python >= 3.12.1 does to an inherited select.kqueue
            poller.close()
            report = f"close_calls={kq.close_calls} kept={any(k is kq for k in kq_mod._INHERITED_KQUEUES)}"
        except BaseException as exc:  # noqa: BLE001
            report = repr(exc)
        os.write(w, report.encode())
        os._exit(0)
    os.close(w)
    report = os.read(r, 1000).decode()
    os.close(r)
    os.waitpid(pid, 0)
    poller.close()
    assert kq.close_calls == 1  # the parent still closes its own
    return report


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_never_closes_the_kqueue_number_and_keeps_the_object_alive():
    assert _close_in_forked_child(kq_closed_in_child=False) == "close_calls=0 kept=True"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_needs_no_keepalive_when_python_marked_the_kqueue_closed():
    assert _close_in_forked_child(kq_closed_in_child=True) == "close_calls=0 kept=False"


# ------------------------------------------------------------------------------------ the descriptor
def _descriptor():
    return kq_mod.multiloop_backends()[0]


def test_descriptor_name_priority_and_capabilities():
    d = _descriptor()
    assert (d.name, d.priority, d.auto) == ("kqueue", 40, True)
    assert d.capabilities == {Capability.O1, Capability.UNLIMITED_FDS, Capability.REGULAR_FILES,
                              Capability.EDGE_TRIGGERED}
    assert Capability.FORK_SAFE not in d.capabilities  # a kqueue is not inherited by fork()
    assert d.factory is KqueuePoller


@without_kqueue
def test_probe_says_kqueue_is_missing_here():
    here = "this is Linux" if sys.platform.startswith("linux") else f"this is {sys.platform}"
    assert _descriptor().probe() == f"select.kqueue is missing: kqueue exists on macOS and the BSDs; {here}"


@without_kqueue
def test_backends_lists_kqueue_as_unavailable_with_the_reason():
    rows = {b.name: b for b in multiloop.backends()}
    row = rows["kqueue"]
    assert row.available is False
    assert row.reason == _descriptor().probe()
    assert (row.priority, row.origin) == (40, "built-in")


@without_kqueue
def test_new_loop_kqueue_raises_unavailable_naming_kqueue_and_listing_the_available():
    available = [b.name for b in multiloop.backends() if b.available]
    assert available  # something runs here
    with pytest.raises(multiloop.BackendUnavailableError) as info:
        multiloop.new_loop("kqueue")
    msg = str(info.value)
    assert info.value.backend == "kqueue"
    assert msg.startswith("multiloop backend 'kqueue' (backend=) is not available here: select.kqueue is missing")
    assert msg.endswith("available: " + ", ".join(available))


@without_kqueue
def test_constructing_the_poller_directly_says_why_not():
    with pytest.raises(BackendUnavailableError, match="kqueue exists on macOS and the BSDs"):
        KqueuePoller()


# --------------------------------------------------------------------------- a real kernel (macOS, BSD)
@needs_kqueue
def test_real_probe_passes():
    assert _descriptor().probe() is None


@needs_kqueue
def test_real_socketpair_becomes_readable_and_writable():
    a, b = socket.socketpair()
    poller = KqueuePoller()
    try:
        poller.register(a.fileno(), READ)
        assert poller.poll(0) == []
        b.send(b"x")
        assert poller.poll(5.0) == [(a.fileno(), READ)]
        poller.modify(a.fileno(), READ | WRITE)
        assert poller.poll(5.0) == [(a.fileno(), READ | WRITE)]
        a.recv(1)
        poller.modify(a.fileno(), READ)
        assert poller.poll(0) == []
    finally:
        poller.close()
        a.close()
        b.close()


@needs_kqueue
def test_real_peer_shutdown_reports_read_without_error():
    a, b = socket.socketpair()
    poller = KqueuePoller()
    try:
        poller.register(a.fileno(), READ)
        b.shutdown(socket.SHUT_WR)
        assert poller.poll(5.0) == [(a.fileno(), READ)]
    finally:
        poller.close()
        a.close()
        b.close()


@needs_kqueue
def test_real_unregister_after_close_is_not_an_error():
    a, b = socket.socketpair()
    poller = KqueuePoller()
    try:
        fd = a.fileno()
        poller.register(fd, READ | WRITE)
        a.close()
        poller.unregister(fd)
        assert poller.registered_filters == 0
        assert poller.poll(0) == []
    finally:
        poller.close()
        b.close()


@needs_kqueue
def test_real_regular_file_is_unpollable(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    poller = KqueuePoller()
    try:
        with open(path, "rb") as f, pytest.raises(UnpollableFdError):
            poller.register(f.fileno(), READ)
    finally:
        poller.close()


@needs_kqueue
def test_real_loop_runs_on_kqueue():
    async def main():
        import asyncio

        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        try:
            await loop.sock_sendall(b, b"ping")
            return await loop.sock_recv(a, 10)
        finally:
            a.close()
            b.close()

    loop = multiloop.new_loop("kqueue")
    try:
        assert loop.backend == "kqueue"
        assert loop.run_until_complete(main()) == b"ping"
    finally:
        loop.close()


# ------------------------------------------------------------- the core on a simulated kqueue (any OS)
class PollBackedKqueue:
    """kqueue's EVFILT_READ/EVFILT_WRITE semantics *emulated* with poll(2), so the whole core can drive
    ``KqueuePoller`` over real sockets on Linux. This checks the poller's bookkeeping against the core, not
    the kernel: it is no substitute for the ``needs_kqueue`` tests."""

    def __init__(self) -> None:
        self.knotes: dict[int, int] = {}  # fd -> POLLIN/POLLOUT bits standing for the two filters
        self.closed = False

    def control(self, changes, max_events, timeout=None):
        for ch in changes or ():
            try:
                os.fstat(ch.ident)
            except OSError:
                self.knotes.pop(ch.ident, None)  # close() dropped its knotes
                raise OSError(errno.EBADF, os.strerror(errno.EBADF)) from None
            bit = select.POLLIN if ch.filter == R else select.POLLOUT
            cur = self.knotes.get(ch.ident, 0)
            if ch.flags & DEL and not cur & bit:
                raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
            cur = cur | bit if ch.flags & ADD else cur & ~bit
            if cur:
                self.knotes[ch.ident] = cur
            else:
                del self.knotes[ch.ident]
        if changes is not None:
            return []
        p = select.poll()
        for fd, bits in self.knotes.items():
            p.register(fd, bits)
        out = []
        for fd, revents in p.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999))):
            if revents & select.POLLNVAL:
                self.knotes.pop(fd, None)
                continue
            bits = self.knotes[fd]
            eof = EOF if revents & (select.POLLHUP | select.POLLERR) else 0
            if bits & select.POLLIN and revents & (select.POLLIN | select.POLLHUP | select.POLLERR):
                out.append(Change(fd, R, eof))
            if bits & select.POLLOUT and revents & (select.POLLOUT | select.POLLHUP | select.POLLERR):
                out.append(Change(fd, W, eof))
        return out[:max_events]

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def sim_loop():
    kq = PollBackedKqueue()
    poller = KqueuePoller(kqueue_factory=lambda: kq, kevent=Change, constants=HEADER)
    loop = multiloop.EventLoop(poller)
    loop.sim_kqueue = kq
    try:
        yield loop
    finally:
        loop.close()
    assert kq.closed


def test_simulated_kqueue_carries_socket_data_through_the_core(sim_loop):
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        with a, b:
            await sim_loop.sock_sendall(b, b"ping" * 10000)
            got = b""
            while len(got) < 40000:
                got += await sim_loop.sock_recv(a, 65536)
            return got

    assert sim_loop.run_until_complete(main()) == b"ping" * 10000


def test_simulated_kqueue_runs_an_asyncio_stream_server(sim_loop):
    import asyncio

    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello kqueue\n")
            line = await reader.readline()
            eof = await reader.read()
            writer.close()
            await writer.wait_closed()
            return line, eof

    assert sim_loop.run_until_complete(main()) == (b"hello kqueue\n", b"")


def test_simulated_kqueue_reader_and_writer_map_to_separate_filters(sim_loop):
    a, b = socket.socketpair()
    with a, b:
        fd = a.fileno()
        sim_loop.add_reader(fd, lambda: None)
        assert sim_loop.sim_kqueue.knotes[fd] == select.POLLIN
        sim_loop.add_writer(fd, lambda: None)
        assert sim_loop.sim_kqueue.knotes[fd] == select.POLLIN | select.POLLOUT
        assert sim_loop.remove_reader(fd)
        assert sim_loop.sim_kqueue.knotes[fd] == select.POLLOUT
        assert sim_loop.remove_writer(fd)
        assert fd not in sim_loop.sim_kqueue.knotes


def test_simulated_kqueue_is_woken_by_call_soon_threadsafe(sim_loop):
    import asyncio
    import threading

    async def main():
        fut = sim_loop.create_future()
        threading.Timer(0.05, sim_loop.call_soon_threadsafe, (fut.set_result, "woken")).start()
        return await asyncio.wait_for(fut, 5)

    assert sim_loop.run_until_complete(main()) == "woken"


def test_simulated_kqueue_treats_a_regular_file_as_always_ready(sim_loop, tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"file data")

    async def main():
        with open(path, "rb") as f:
            got = sim_loop.create_future()
            sim_loop.add_reader(f, lambda: got.done() or got.set_result(os.read(f.fileno(), 100)))
            data = await got
            sim_loop.remove_reader(f)
            return data

    assert sim_loop.run_until_complete(main()) == b"file data"


def test_simulated_kqueue_survives_a_reader_whose_fd_was_closed(sim_loop):
    async def main():
        a, b = socket.socketpair()
        fd = a.fileno()
        sim_loop.add_reader(fd, lambda: None)
        a.close()
        b.close()
        sim_loop.remove_reader(fd)  # EBADF from the kernel: already gone, not an error
        c, d = socket.socketpair()
        with c, d:
            c.setblocking(False)
            got = sim_loop.create_future()
            sim_loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(10)))
            d.send(b"again")
            data = await got
            sim_loop.remove_reader(c)
            return data

    assert sim_loop.run_until_complete(main()) == b"again"
