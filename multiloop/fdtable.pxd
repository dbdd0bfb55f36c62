# C declarations for fdtable.py when compiled (see multiloop/compiled.py). The core's dispatch reads FdEntry's
# fields and calls FdTable's methods on every fd event; as extension types both are plain C structs.

from multiloop._fasthandles cimport *

cdef class FdEntry:
    cdef public object reader
    cdef public object writer
    cdef public int mask
    cdef public object fileobj


cdef class FdTable:
    cdef readonly dict entries
    cdef readonly set always_ready
    cdef public bint forked
    cdef readonly dict dead
    cdef dict _owners
    cdef object _poller
    cdef object _loop
    cdef object _backend
    cdef object _check_usable
    cdef object __weakref__

    cpdef _tell_backend(self, fd, FdEntry entry, int mask)
    cpdef object _add(self, fd, int direction, callback, tuple args, context)
    cpdef bint _remove(self, fd, int direction) except -1
