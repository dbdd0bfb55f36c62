# C declarations for fdtable.py when compiled (see multiloop/compiled.py). The core's dispatch reads FdEntry's
# fields and calls FdTable's methods on every fd event; as extension types both are plain C structs.

from multiloop._fasthandles cimport *

# fd -> FdEntry as a C array beside FdTable.entries, for the core's per-event lookup: a dict lookup by a
# Python int cost ~120 instructions an event (box the fd, hash, probe), an array index a load. The array
# *borrows*: the dict owns the entries (the collector sees them there), and FdTable changes both together in
# _add, _remove and clear -- nothing else changes either. fds at or above ML_FDINDEX_MAX (far above any
# RLIMIT_NOFILE in use; 8 MiB of pointers) stay in the dict only, looked up there.
cdef extern from *:
    """
    #define ML_FDINDEX_MAX (1L << 20)
    typedef struct { PyObject **slot; Py_ssize_t size; } ml_fdindex;

    static int ml_fdindex_put(ml_fdindex *ix, long fd, PyObject *entry) {
        if (fd < 0 || fd >= ML_FDINDEX_MAX) return 0;
        if (fd >= ix->size) {
            Py_ssize_t n = ix->size ? ix->size : 64, i;
            PyObject **grown;
            while (n <= fd) n *= 2;
            grown = (PyObject **)PyMem_Realloc(ix->slot, (size_t)n * sizeof(PyObject *));
            if (grown == NULL) { PyErr_NoMemory(); return -1; }
            for (i = ix->size; i < n; i++) grown[i] = NULL;
            ix->slot = grown;
            ix->size = n;
        }
        ix->slot[fd] = entry;
        return 0;
    }
    static inline void ml_fdindex_drop(ml_fdindex *ix, long fd) {
        if (fd >= 0 && fd < ix->size) ix->slot[fd] = NULL;
    }
    static void ml_fdindex_clear(ml_fdindex *ix) {
        Py_ssize_t i;
        for (i = 0; i < ix->size; i++) ix->slot[i] = NULL;
    }
    static void ml_fdindex_free(ml_fdindex *ix) {
        PyMem_Free(ix->slot);
        ix->slot = NULL;
        ix->size = 0;
    }
    /* A new reference: fd's entry, or None when it has none. */
    static inline PyObject *ml_fdindex_lookup(ml_fdindex *ix, long fd, PyObject *entries) {
        PyObject *e;
        if (fd >= 0 && fd < ix->size) {
            e = ix->slot[fd];
            if (e == NULL) e = Py_None;
        } else if (fd >= 0 && fd < ML_FDINDEX_MAX) {
            e = Py_None;  /* the array covers every registered fd below the maximum */
        } else {
            PyObject *key = PyLong_FromLong(fd);
            if (key == NULL) return NULL;
            e = PyDict_GetItemWithError(entries, key);
            Py_DECREF(key);
            if (e == NULL) {
                if (PyErr_Occurred()) return NULL;
                e = Py_None;
            }
        }
        Py_INCREF(e);
        return e;
    }
    """
    ctypedef struct ml_fdindex:
        Py_ssize_t size
    int ml_fdindex_put(ml_fdindex *ix, long fd, object entry) except -1
    void ml_fdindex_drop(ml_fdindex *ix, long fd)
    void ml_fdindex_clear(ml_fdindex *ix)
    void ml_fdindex_free(ml_fdindex *ix)
    object ml_fdindex_lookup(ml_fdindex *ix, long fd, object entries)

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
    cdef ml_fdindex _index
    cdef object __weakref__

    cpdef FdEntry entry_of(self, long fd)

    cpdef _tell_backend(self, fd, FdEntry entry, int mask)
    cpdef object _add(self, fd, int direction, callback, tuple args, context)
    cpdef bint _remove(self, fd, int direction) except -1
