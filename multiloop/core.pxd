# C declarations for core.py when compiled (see multiloop/compiled.py).
#
# The loop class must stay a subclass of asyncio.AbstractEventLoop (a Python class), which an extension type
# cannot be; so the state the scheduler touches on every callback lives in _CoreState, an extension type with
# C fields, and LoopCore (a Python class) derives from it and from LoopServices. The hot methods of LoopCore
# declare `self` as a _CoreState (@cython.locals), which turns each self._x into a field access. Fields are
# `public` where Python code (services.py, the mixins, tests) reads or sets them.

from multiloop.fdtable cimport FdEntry, FdTable
from multiloop.timerheap cimport TimerHeap
from multiloop._fasthandles cimport *
from multiloop._clock cimport ml_monotonic
from multiloop.readiness cimport NativeWait, ReadinessSink
from multiloop.wakeup cimport Waker

cdef class _CoreState(ReadinessSink):
    cdef public object _ready
    cdef public object _ready_append
    cdef public object _ready_popleft
    cdef public TimerHeap _scheduled
    cdef public Py_ssize_t _timer_cancelled_count
    cdef public dict _fds
    cdef public set _always_ready
    cdef public FdTable _fdtable
    cdef public object _poller
    cdef public Waker _waker
    cdef public Py_ssize_t _waker_fd_count
    cdef public bint _closed
    cdef public bint _stopping
    cdef public bint _forked
    cdef public bint _may_block
    cdef public bint _debug
    cdef public double _clock_resolution
    cdef public object _current_handle
    cdef public long long _n_passes
    cdef public long long _n_callbacks
    cdef public long long _n_events
    cdef public long long _n_dead
    cdef public long long _n_stale
    cdef public object _instruments
    cdef public bint _hooked_pass
    cdef public bint _untrack_posts
    cdef public NativeWait _native
    cdef public list _stale_fds
    cdef public object _checked_function
    cdef object __weakref__

    # The pass: C functions (see _CoreState's docstring).
    cdef double _compute_timeout(self) except? -2.0
    cdef _run_once(self)
    cdef _process(self, events)
    cdef int _on_ready(self, int fd, long ev) except -1
    cdef object _new_timer(self, double when, object callback, tuple args, object context)

cdef _run_threadsafe(object handle)
