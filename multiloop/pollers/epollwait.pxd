# C declarations for epollwait.py when compiled (see multiloop/compiled.py and that module's docstring).

cdef extern from *:
    """
    #if defined(__linux__)
    #include <sys/epoll.h>
    #include <errno.h>
    #include <limits.h>
    #include <math.h>
    #define ML_EPOLL_BATCH 256

    /* epoll_wait(2) for at most t seconds (negative: no limit; rounded up to whole milliseconds) into evs:
       the number of events, or -1 with an exception set. EINTR: the signal handlers run, 0 events. */
    static int ml_epoll_wait_raw(int epfd, double t, struct epoll_event *evs) {
        int ms, n, saved_errno = 0;
        if (t < 0) {
            ms = -1;
        } else {
            double m = ceil(t * 1000.0);
            ms = m >= (double)INT_MAX ? INT_MAX : (int)m;
        }
        Py_BEGIN_ALLOW_THREADS
        n = epoll_wait(epfd, evs, ML_EPOLL_BATCH, ms);
        if (n < 0) saved_errno = errno;
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (saved_errno == EINTR) return PyErr_CheckSignals() < 0 ? -1 : 0;
            errno = saved_errno;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        return n;
    }

    /* select.epoll.poll(timeout)'s result, from epoll_wait(2) on a stack buffer. */
    static PyObject *ml_epoll_wait(int epfd, PyObject *timeout) {
        struct epoll_event evs[ML_EPOLL_BATCH];
        int n, i;
        double t = -1.0;
        PyObject *result;
        if (timeout != Py_None) {
            t = PyFloat_AsDouble(timeout);
            if (t == -1.0 && PyErr_Occurred()) return NULL;
        }
        n = ml_epoll_wait_raw(epfd, t, evs);
        if (n < 0) return NULL;
        result = PyList_New(n);
        if (result == NULL) return NULL;
        for (i = 0; i < n; i++) {
            PyObject *fd = PyLong_FromLong((long)evs[i].data.fd);
            PyObject *ev = PyLong_FromUnsignedLong((unsigned long)evs[i].events);
            PyObject *pair = (fd != NULL && ev != NULL) ? PyTuple_New(2) : NULL;
            if (pair == NULL) {
                Py_XDECREF(fd);
                Py_XDECREF(ev);
                Py_DECREF(result);
                return NULL;
            }
            PyTuple_SET_ITEM(pair, 0, fd);
            PyTuple_SET_ITEM(pair, 1, ev);
            PyList_SET_ITEM(result, i, pair);
        }
        return result;
    }

    /* The same wait, the events copied to two plain arrays (for EpollWait.wait_into): the count, or -1. */
    static int ml_epoll_wait_into(int epfd, double t, int *fds, long *events) {
        struct epoll_event evs[ML_EPOLL_BATCH];
        int n = ml_epoll_wait_raw(epfd, t, evs), i;
        for (i = 0; i < n; i++) {
            fds[i] = evs[i].data.fd;
            events[i] = (long)evs[i].events;
        }
        return n;
    }
    #else
    #define ML_EPOLL_BATCH 256
    static PyObject *ml_epoll_wait(int epfd, PyObject *timeout) {
        PyErr_SetString(PyExc_OSError, "epoll_wait: this system has no epoll");
        return NULL;
    }
    static int ml_epoll_wait_into(int epfd, double t, int *fds, long *events) {
        PyErr_SetString(PyExc_OSError, "epoll_wait: this system has no epoll");
        return -1;
    }
    #endif
    """
    object ml_epoll_wait(int epfd, object timeout)
    int ml_epoll_wait_into(int epfd, double t, int *fds, long *events) except -1


from multiloop.readiness cimport NativeWait, ReadinessSink

cdef class EpollWait(NativeWait):
    cdef object _epoll
    cdef int _fd
    # ML_EPOLL_BATCH events at most per wait (256, above).
    cdef int _fds[256]
    cdef long _events[256]
    cdef Py_ssize_t wait_into(self, ReadinessSink sink, double timeout) except -1
