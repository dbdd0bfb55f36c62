# C declarations for wakeup.py when compiled (see multiloop/compiled.py and the module's docstring).
#
# The wake-up fd is written and drained by C calls that keep the GIL: os.eventfd_write/os.eventfd_read release
# it around the syscall, and with other threads posting call_soon_threadsafe callbacks, whoever releases the GIL
# waits for it again behind them (up to a switch interval, 5 ms). The fd is non-blocking, so the syscall never
# blocks. Free-threaded builds have no GIL to keep; there the lock that orders wake() against close() is
# taken as in the Python code.

cdef extern from *:
    """
    #include <errno.h>
    #include <stdint.h>
    #include <unistd.h>
    #ifdef Py_GIL_DISABLED
    #define ML_WAKE_HAS_GIL 0
    #else
    #define ML_WAKE_HAS_GIL 1
    #endif

    /* One wake-up: 1 added to an eventfd's counter, or a byte into a pipe. "Would block" (the pipe is full, the
       counter at its maximum) means readable already; EINTR cannot lose anything a retry would add. */
    static int ml_wake_write(int fd, int counter) {
        ssize_t n;
        if (counter) {
            uint64_t one = 1;
            n = write(fd, &one, sizeof one);
        } else {
            char zero = 0;
            n = write(fd, &zero, 1);
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        return 0;
    }

    /* Empty the wake-up fd: an eventfd is reset by one read, a pipe is read until it would block. */
    static int ml_wake_drain(int fd, int counter) {
        char buf[4096];
        ssize_t n;
        for (;;) {
            n = read(fd, buf, counter ? 8 : sizeof buf);
            if (n > 0 && !counter) continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
            }
            return 0;
        }
    }
    """
    int ML_WAKE_HAS_GIL
    int ml_wake_write(int fd, int counter) except -1
    int ml_wake_drain(int fd, int counter) except -1


cdef class Waker:
    cdef int _rfd
    cdef int _wfd
    cdef bint _eventfd
    cdef bint _pending
    cdef object _custom
    cdef object _lock

    cpdef wake(self)
