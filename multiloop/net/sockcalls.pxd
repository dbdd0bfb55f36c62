# C declarations for sockcalls.py when compiled (see multiloop/compiled.py and the module's docstring).
#
# Facts:
# - socket.recv on a non-blocking socket (timeout 0) is: allocate a bytes object of the asked size, recv(2)
#   into it once, retry after running signal handlers on EINTR (PEP 475), shrink it to what was read, and on
#   any error raise OSError's errno subclass, built with strerror() decoded from the locale. For EAGAIN that
#   exception (BlockingIOError) is most of the cost of a recv that finds nothing: ~4,000 instructions.
# - ml_try_recv is that recv, except that "nothing queued" is a return value, not an exception.

cdef extern from *:
    """
    #include <errno.h>
    #include <sys/types.h>
    #include <sys/socket.h>

    /* recv(fd, n) as a new bytes object (b"" at EOF); None (a new reference) if it would block; NULL with an
       OSError set on any other error. */
    static PyObject *ml_try_recv(int fd, Py_ssize_t n) {
        PyObject *buf = PyBytes_FromStringAndSize(NULL, n);
        if (buf == NULL) return NULL;
        for (;;) {
            ssize_t got = recv(fd, PyBytes_AS_STRING(buf), (size_t)n, 0);
            if (got >= 0) {
                if (got != n && _PyBytes_Resize(&buf, (Py_ssize_t)got) < 0) return NULL;
                return buf;
            }
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) break;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                Py_DECREF(buf);
                Py_RETURN_NONE;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
        Py_DECREF(buf);
        return NULL;
    }
    """
    object ml_try_recv(int fd, Py_ssize_t n)
