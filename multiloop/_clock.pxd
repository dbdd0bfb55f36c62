# The loop's clock for the compiled modules: time.monotonic() as a C call.
#
# Facts:
# - A pass with a timer pending reads the clock twice (how long the wait may block; which timers are due after
#   it). Through the Python function each read is a vectorcall, a float allocated and freed, and the conversion
#   back: measured, 2,180 instructions more per fd ping-pong round trip (two passes) with one pending timer
#   (asyncio.timeout), against uvloop's 79 (3.11; 9,735 without the timer).
# - On Linux CPython's time.monotonic() is clock_gettime(CLOCK_MONOTONIC) turned into integer nanoseconds, then
#   into seconds by _PyTime_AsSecondsDouble: whole seconds by integer division, anything else as
#   (double)ns / 1e9. ml_monotonic() does exactly that, so its values and loop.time()'s and the timers' are the
#   same numbers time.monotonic() gives (tests/test_clock.py checks they interleave with it).
# - Elsewhere (macOS uses another clock, and which one changed between releases) it calls time.monotonic()
#   itself, as does the pure-Python build: the loop never mixes two clocks.
#
# No .py module goes with this file: it holds only C declarations and inline functions.

cdef extern from *:
    """
    #include <time.h>

    static PyObject *ml_py_monotonic = NULL;  /* time.monotonic, for the fallback */

    static double ml_monotonic_fallback(void) {
        PyObject *r;
        double d;
        if (ml_py_monotonic == NULL) {
            PyObject *mod = PyImport_ImportModule("time");
            if (mod == NULL) return -1.0;
            ml_py_monotonic = PyObject_GetAttrString(mod, "monotonic");
            Py_DECREF(mod);
            if (ml_py_monotonic == NULL) return -1.0;
        }
        r = PyObject_CallNoArgs(ml_py_monotonic);
        if (r == NULL) return -1.0;
        d = PyFloat_AsDouble(r);
        Py_DECREF(r);
        return d;
    }

    /* time.monotonic(), in seconds; -1.0 with an exception set on failure. */
    static inline double ml_monotonic(void) {
    #if defined(__linux__) && defined(CLOCK_MONOTONIC)
        struct timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
            long long ns = (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec;
            if (ns % 1000000000LL == 0) return (double)(ns / 1000000000LL);
            return (double)ns / 1e9;
        }
    #endif
        return ml_monotonic_fallback();
    }
    """
    double ml_monotonic() except? -1.0
