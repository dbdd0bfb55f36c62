# C declarations for streamengine.py when compiled (see multiloop/compiled.py and the module's docstring).
#
# Facts:
# - A socket.socket object is a Python subclass of _socket.socket, whose C struct (PySocketSockObject) begins,
#   after the object header, with the socket's fd (SOCKET_T: an int on POSIX); close() and detach() set it to
#   -1. That struct is CPython's, not a public API: ml_sock_probe() checks the layout at import time on a real
#   socket (open, then closed) and the engine uses the fd field only if it holds; otherwise it calls the
#   socket's methods, which is always correct.
# - Reading the fd from the socket object on every call (not caching it) keeps socket semantics exactly: a
#   socket closed behind the transport's back fails with EBADF, as socket.recv_into/send would, and never
#   reaches a reused fd number.
# - recv/send here are what socket.recv_into/send do for a non-blocking socket: retry on EINTR after running
#   signal handlers (PEP 475), report EAGAIN as "nothing now", raise OSError (its errno subclass) otherwise.

cdef extern from *:
    """
    #include <errno.h>
    #include <sys/types.h>
    #include <sys/socket.h>

    typedef struct { PyObject_HEAD int ml_fd; } ml_sock_head;
    static PyTypeObject *ml_sock_type = NULL;

    #ifdef Py_GIL_DISABLED
    #define ML_SOCK_FD(s) __atomic_load_n(&((ml_sock_head *)(s))->ml_fd, __ATOMIC_RELAXED)
    #else
    #define ML_SOCK_FD(s) (((ml_sock_head *)(s))->ml_fd)
    #endif

    /* The fd field of a socket object, -2 if sock is not a _socket.socket (or the layout was not verified). */
    static inline int ml_sock_fd(PyObject *sock) {
        if (ml_sock_type == NULL || !PyObject_TypeCheck(sock, ml_sock_type)) return -2;
        return ML_SOCK_FD(sock);
    }

    /* 1 if the fd field of `sock` (a _socket.socket instance) reads `expected`. */
    static int ml_sock_probe(PyObject *sock_type, PyObject *sock, int expected) {
        if (!PyType_Check(sock_type) || !PyObject_TypeCheck(sock, (PyTypeObject *)sock_type)) return 0;
        return ((ml_sock_head *)sock)->ml_fd == expected;
    }

    /* From now on, ml_sock_fd reads the fd field of instances of sock_type (after the probes passed). */
    static int ml_sock_enable(PyObject *sock_type) {
        if (ml_sock_type == NULL) {
            Py_INCREF(sock_type);
            ml_sock_type = (PyTypeObject *)sock_type;
        }
        return 1;
    }

    /* recv() into buf: bytes read (0: EOF), -1 would block, -2 with an exception set. */
    static Py_ssize_t ml_recv(PyObject *sock, char *buf, Py_ssize_t len) {
        for (;;) {
            ssize_t n = recv(ML_SOCK_FD(sock), buf, (size_t)len, 0);
            if (n >= 0) return (Py_ssize_t)n;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return -2;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
            PyErr_SetFromErrno(PyExc_OSError);
            return -2;
        }
    }

    /* send() of a bytes object: bytes sent, -1 would block, -2 with an exception set. */
    static Py_ssize_t ml_send(PyObject *sock, PyObject *data) {
        for (;;) {
            ssize_t n = send(ML_SOCK_FD(sock), PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), 0);
            if (n >= 0) return (Py_ssize_t)n;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return -2;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
            PyErr_SetFromErrno(PyExc_OSError);
            return -2;
        }
    }

    /* recv() of up to len bytes into a new bytes object, shrunk to what arrived (b"" at EOF): the object,
       None if it would block, NULL with an exception set. */
    static PyObject *ml_recv_new(PyObject *sock, Py_ssize_t len) {
        PyObject *data = PyBytes_FromStringAndSize(NULL, len);
        if (data == NULL) return NULL;
        Py_ssize_t n = ml_recv(sock, PyBytes_AS_STRING(data), len);
        if (n < 0) {
            Py_DECREF(data);
            if (n == -2) return NULL;
            Py_RETURN_NONE;
        }
        if (n != len && _PyBytes_Resize(&data, n) < 0) return NULL;
        return data;
    }

    /* A new bytes object holding the first n bytes of a bytearray. */
    static inline PyObject *ml_bytes_of(PyObject *bytearray, Py_ssize_t n) {
        return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(bytearray), n);
    }
    """
    int ml_sock_fd(object sock)
    bint ml_sock_probe(object sock_type, object sock, int expected)
    bint ml_sock_enable(object sock_type)
    Py_ssize_t ml_recv(object sock, char *buf, Py_ssize_t n) except -2
    Py_ssize_t ml_send(object sock, object data) except -2
    char *PyByteArray_AS_STRING(object o)
    Py_ssize_t PyByteArray_GET_SIZE(object o)
    bytes ml_bytes_of(object bytearray, Py_ssize_t n)
    object ml_recv_new(object sock, Py_ssize_t n)


# A C constant, compared with a C integer on every read (a module-level Python int would be boxed for it).
cdef Py_ssize_t LARGE_READ
cdef Py_ssize_t LARGE_READ_SIZE


cdef class StreamEngine:
    cdef public object transport
    cdef public object sock
    cdef public object rview
    cdef object rbytes
    cdef public object protocol
    # Flags as bytes, and no C method table (the rare reads are Python-level methods): the object then fits
    # pymalloc's 80-byte class, one size class smaller (memory per idle connection is a target).
    cdef public unsigned char buffered
    cdef public unsigned char large_reads
    cdef public unsigned char lost
    cdef public unsigned char direct
