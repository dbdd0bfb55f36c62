# C declarations for epollwait.py when compiled (see multiloop/compiled.py and that module's docstring).

cdef extern from *:
    """
    #if defined(__linux__)
    #include <sys/epoll.h>
    #include <errno.h>
    #include <limits.h>
    #include <math.h>
    #define ML_EPOLL_BATCH 256

    /* select.epoll.poll(timeout)'s result, from epoll_wait(2) on a stack buffer. */
    static PyObject *ml_epoll_wait(int epfd, PyObject *timeout) {
        struct epoll_event evs[ML_EPOLL_BATCH];
        int ms, n, i, saved_errno = 0;
        PyObject *result;
        if (timeout == Py_None) {
            ms = -1;
        } else {
            double t = PyFloat_AsDouble(timeout);
            if (t == -1.0 && PyErr_Occurred()) return NULL;
            if (t < 0) {
                ms = -1;
            } else {
                double m = ceil(t * 1000.0);
                ms = m >= (double)INT_MAX ? INT_MAX : (int)m;
            }
        }
        Py_BEGIN_ALLOW_THREADS
        n = epoll_wait(epfd, evs, ML_EPOLL_BATCH, ms);
        if (n < 0) saved_errno = errno;
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (saved_errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return NULL;
                return PyList_New(0);
            }
            errno = saved_errno;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
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
    #else
    static PyObject *ml_epoll_wait(int epfd, PyObject *timeout) {
        PyErr_SetString(PyExc_OSError, "epoll_wait: this system has no epoll");
        return NULL;
    }
    #endif
    """
    object ml_epoll_wait(int epfd, object timeout)


cdef class EpollWait:
    cdef object _epoll
    cdef int _fd
