# C declarations for timerheap.py when compiled (see multiloop/compiled.py and the module's docstring): the heap
# is an array of C structs compared as numbers; the handles stay in a Python list the collector can see.

cimport cython

cdef extern from *:
    """
    #include <stdlib.h>
    typedef struct { double when; unsigned long long seq; Py_ssize_t slot; } ml_tentry;

    static inline int ml_tentry_less(const ml_tentry *a, const ml_tentry *b) {
        return a->when < b->when || (a->when == b->when && a->seq < b->seq);
    }

    /* Put a new entry at index n (the array has room) and restore the heap order above it. */
    static inline void ml_theap_push(ml_tentry *h, Py_ssize_t n, double when, unsigned long long seq,
                                     Py_ssize_t slot) {
        ml_tentry e;
        e.when = when; e.seq = seq; e.slot = slot;
        while (n > 0) {
            Py_ssize_t parent = (n - 1) >> 1;
            if (!ml_tentry_less(&e, &h[parent])) break;
            h[n] = h[parent];
            n = parent;
        }
        h[n] = e;
    }

    /* Remove the head of a heap that now holds n entries (the old last one is at index n). */
    static inline void ml_theap_pop(ml_tentry *h, Py_ssize_t n) {
        ml_tentry last;
        Py_ssize_t i = 0;
        if (n == 0) return;
        last = h[n];
        for (;;) {
            Py_ssize_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && ml_tentry_less(&h[child + 1], &h[child])) child++;
            if (!ml_tentry_less(&h[child], &last)) break;
            h[i] = h[child];
            i = child;
        }
        h[i] = last;
    }

    /* Both arrays to cap entries; 0, or -1 (nothing changed) when memory is short. */
    static int ml_theap_grow(ml_tentry **entries, Py_ssize_t **free_slots, Py_ssize_t cap) {
        ml_tentry *e;
        Py_ssize_t *f;
        if ((size_t)cap > PY_SSIZE_T_MAX / sizeof(ml_tentry)) return -1;
        e = (ml_tentry *)realloc(*entries, (size_t)cap * sizeof(ml_tentry));
        if (e == NULL) return -1;
        *entries = e;
        f = (Py_ssize_t *)realloc(*free_slots, (size_t)cap * sizeof(Py_ssize_t));
        if (f == NULL) return -1;
        *free_slots = f;
        return 0;
    }

    static void ml_theap_free(ml_tentry *entries, Py_ssize_t *free_slots) {
        free(entries);
        free(free_slots);
    }
    """
    ctypedef struct ml_tentry:
        double when
        unsigned long long seq
        Py_ssize_t slot
    void ml_theap_push(ml_tentry *h, Py_ssize_t n, double when, unsigned long long seq, Py_ssize_t slot)
    void ml_theap_pop(ml_tentry *h, Py_ssize_t n)
    int ml_theap_grow(ml_tentry **entries, Py_ssize_t **free_slots, Py_ssize_t cap)
    void ml_theap_free(ml_tentry *entries, Py_ssize_t *free_slots)


@cython.final
cdef class TimerHeap:
    cdef ml_tentry *_entries
    cdef Py_ssize_t *_free
    cdef Py_ssize_t _n
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _nfree
    cdef unsigned long long _seq
    cdef list _slots

    cpdef push(self, double when, timer)
    cpdef double first_when(self) except? -1.0
    cpdef first(self)
    cpdef pop(self)
    cpdef pop_due(self, double end)
    cdef _grow(self)
    cdef _push_with_seq(self, double when, unsigned long long order, timer)
