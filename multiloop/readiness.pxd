# C declarations for readiness.py when compiled (see that module's docstring).

cdef class ReadinessSink:
    cdef int _on_ready(self, int fd, long events) except -1

cdef class NativeWait:
    cdef public bint active
    cdef Py_ssize_t wait_into(self, ReadinessSink sink, double timeout) except -1
