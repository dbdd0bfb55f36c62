# C-level access to asyncio.Handle / asyncio.TimerHandle for the compiled modules (core, fdtable).
#
# Facts:
# - Handle and TimerHandle are public asyncio types that the loop must keep using (asyncio code and CPython's
#   tests inspect them). They are Python classes with __slots__: each slot is a member descriptor whose
#   PyMemberDef gives the slot's fixed offset in the object. Reading the offsets from the descriptors at import
#   time (not hard-coding them) keeps this right on every Python; if any slot is not what we expect (a release
#   turns Handle into a C type, renames a slot), ml_init_handles() fails and the callers keep to the Python-level
#   code paths, which are always correct.
# - A generic getattr/setattr from C costs a type lookup and a descriptor call per slot (~40 instructions); a
#   fresh handle needs 7 stores and running one 4 loads. At an offset they cost a load or a store each.
# - Free-threaded builds: a handle may be cancelled by another thread while the loop reads it (only
#   call_soon_threadsafe's handles support that, and they are another class, run through their own _run; for
#   plain handles it is unsupported but must not crash). Loads therefore go through PyMember_GetOne there, which
#   takes a reference safely; stores into a handle nobody else can see yet (just allocated) stay plain.
#
# No .py module goes with this file: it holds only C declarations and inline functions.

cdef extern from *:
    """
    #if PY_VERSION_HEX < 0x030C0000
    #include "structmember.h"
    #define ML_T_OBJECT_EX T_OBJECT_EX
    #define ML_READONLY READONLY
    #else
    #define ML_T_OBJECT_EX Py_T_OBJECT_EX
    #define ML_READONLY Py_READONLY
    #endif

    enum { ML_CALLBACK, ML_ARGS, ML_CANCELLED, ML_LOOP, ML_REPR, ML_SRCTB, ML_CONTEXT, ML_WHEN, ML_SCHEDULED,
           ML_NSLOTS };
    static PyMemberDef *ml_member[ML_NSLOTS];
    static PyTypeObject *ml_handle_type = NULL, *ml_timer_type = NULL;

    /* 1 when every slot was found with the expected kind, else 0 (the fast paths are then never used). */
    static int ml_init_handles(PyObject *handle_type, PyObject *timer_type) {
        static const char *names[ML_NSLOTS] = {"_callback", "_args", "_cancelled", "_loop", "_repr",
                                               "_source_traceback", "_context", "_when", "_scheduled"};
        int i;
        if (!PyType_Check(handle_type) || !PyType_Check(timer_type) ||
                !PyType_IsSubtype((PyTypeObject *)timer_type, (PyTypeObject *)handle_type))
            return 0;
        for (i = 0; i < ML_NSLOTS; i++) {
            PyObject *owner = i < ML_WHEN ? handle_type : timer_type;
            PyObject *d = PyDict_GetItemString(((PyTypeObject *)owner)->tp_dict, names[i]);
            PyMemberDef *m;
            if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) return 0;
            m = ((PyMemberDescrObject *)d)->d_member;
            if (m->type != ML_T_OBJECT_EX || (m->flags & ML_READONLY) || m->offset <= 0) return 0;
            ml_member[i] = m;
        }
        ml_handle_type = (PyTypeObject *)handle_type;
        ml_timer_type = (PyTypeObject *)timer_type;
        Py_INCREF(handle_type);
        Py_INCREF(timer_type);
        return 1;
    }

    #define ML_SLOT(o, i) (*(PyObject **)((char *)(o) + ml_member[i]->offset))

    static inline int ml_is_plain(PyObject *h) {
        return ml_handle_type != NULL && (Py_IS_TYPE(h, ml_handle_type) || Py_IS_TYPE(h, ml_timer_type));
    }

    /* A new reference to slot i of a handle whose slot no other thread writes now (AttributeError if unset, as
       Python would say). */
    static inline PyObject *ml_get_owned(PyObject *h, int i) {
        PyObject *v = ML_SLOT(h, i);
        if (v == NULL) { PyErr_SetString(PyExc_AttributeError, ml_member[i]->name); return NULL; }
        Py_INCREF(v);
        return v;
    }

    /* A new reference to slot i of a plain handle (AttributeError if unset, as Python would say). */
    static inline PyObject *ml_get(PyObject *h, int i) {
    #ifdef Py_GIL_DISABLED
        return PyMember_GetOne((const char *)h, ml_member[i]);
    #else
        return ml_get_owned(h, i);
    #endif
    }

    /* Replace slot i of a plain handle (the loop thread's own handles). */
    static inline int ml_set(PyObject *h, int i, PyObject *v) {
    #ifdef Py_GIL_DISABLED
        return PyMember_SetOne((char *)h, ml_member[i], v);
    #else
        PyObject *old = ML_SLOT(h, i);
        Py_INCREF(v);
        ML_SLOT(h, i) = v;
        Py_XDECREF(old);
        return 0;
    #endif
    }

    /* _cancelled of any handle: True/False are immortal, so reading the pointer needs no reference. */
    static inline int ml_cancelled(PyObject *h) {
        if (ml_is_plain(h)) {
    #ifdef Py_GIL_DISABLED
            return __atomic_load_n(&ML_SLOT(h, ML_CANCELLED), __ATOMIC_RELAXED) == Py_True;
    #else
            return ML_SLOT(h, ML_CANCELLED) == Py_True;
    #endif
        }
        {
            PyObject *v = PyObject_GetAttrString(h, "_cancelled");
            int r;
            if (v == NULL) return -1;
            r = PyObject_IsTrue(v);
            Py_DECREF(v);
            return r;
        }
    }

    /* Handle.cancel() of a plain handle when its loop is not in debug mode (debug mode also stores the repr):
       the same three stores, without a Python-level method call (~1,400 instructions each time a sock_*
       operation's reader or writer is removed). */
    static inline int ml_cancel_quiet(PyObject *h) {
        int c = ml_cancelled(h);
        if (c != 0) return c < 0 ? -1 : 0;
        if (ml_set(h, ML_CANCELLED, Py_True) < 0) return -1;
        if (ml_set(h, ML_CALLBACK, Py_None) < 0) return -1;
        return ml_set(h, ML_ARGS, Py_None);
    }

    /* Spent handles kept for reuse (GIL builds only). Facts: a plain call_soon handle lives for one pass and
       nobody but the loop holds it once it ran (call_soon's return value is almost always dropped); allocating
       and freeing it is a GC-tracked object's full cost, and each allocation counts towards the next
       generation-0 collection (measured: about 18% of a 1,000-callback pass, 3.11). So a handle whose only
       reference is the loop's, with no weak reference, is emptied at once (its callback, arguments, context
       and loop are released as freeing would) and kept for the next ml_new. Free-threaded builds skip this:
       there a reference count read from one thread says nothing about other threads. */
    #define ML_SPARE_MAX 256
    #ifndef Py_GIL_DISABLED
    static PyObject *ml_spare[ML_SPARE_MAX];
    static int ml_nspare = 0;
    #endif

    /* The caller holds one reference to h, a plain handle that has run or was cancelled. */
    #ifndef Py_GIL_DISABLED
    /* 1 when h, of type tp, is held by the caller alone and has no weak reference: its Handle slots but
       _cancelled are then released (as freeing it would). Releasing them may run arbitrary code (a finaliser
       that schedules a callback): the handle is in no list yet, and the caller checks its spare count again. */
    static inline int ml_empty_if_unshared(PyObject *h, PyTypeObject *tp) {
        if (Py_REFCNT(h) != 1 || Py_TYPE(h) != tp) return 0;
        /* Its weak reference list: at tp_weaklistoffset, which is negative (in the pre-header) where the
           interpreter manages weak references itself (3.12+); the same pointer arithmetic finds it. */
        if (tp->tp_weaklistoffset != 0 && *(PyObject **)((char *)h + tp->tp_weaklistoffset) != NULL) return 0;
        Py_CLEAR(ML_SLOT(h, ML_CALLBACK));
        Py_CLEAR(ML_SLOT(h, ML_ARGS));
        Py_CLEAR(ML_SLOT(h, ML_CONTEXT));
        Py_CLEAR(ML_SLOT(h, ML_LOOP));
        Py_CLEAR(ML_SLOT(h, ML_REPR));
        Py_CLEAR(ML_SLOT(h, ML_SRCTB));
        return 1;
    }
    #endif

    static inline void ml_recycle(PyObject *h) {
    #ifndef Py_GIL_DISABLED
        if (ml_nspare >= ML_SPARE_MAX || !ml_empty_if_unshared(h, ml_handle_type)) return;
        if (ml_nspare < ML_SPARE_MAX && Py_REFCNT(h) == 1) {
            Py_INCREF(h);
            ml_spare[ml_nspare++] = h;
        }
    #endif
    }

    /* A new reference to slot-owned object v, replacing slot i (NULL or a reference). */
    #define ML_RESET(h, i, v) Py_XSETREF(ML_SLOT(h, i), (v))

    #ifndef Py_GIL_DISABLED
    /* A spare handle made live again: every slot but _cancelled is empty (ml_empty), ``context`` is a
       reference the handle takes over. */
    static inline void ml_refill(PyObject *h, PyObject *callback, PyObject *args, PyObject *loop,
                                 PyObject *context) {
        Py_INCREF(callback); ML_RESET(h, ML_CALLBACK, callback);
        Py_INCREF(args); ML_RESET(h, ML_ARGS, args);
        ML_RESET(h, ML_CANCELLED, Py_NewRef(Py_False));
        Py_INCREF(loop); ML_RESET(h, ML_LOOP, loop);
        ML_RESET(h, ML_REPR, Py_NewRef(Py_None));
        ML_RESET(h, ML_SRCTB, Py_NewRef(Py_None));
        ML_RESET(h, ML_CONTEXT, context);
    }
    #endif

    /* asyncio.Handle(callback, args, loop, context) without its __init__ (which asks loop.get_debug()): the
       caller has checked the debug flag. tp is ml_handle_type or ml_timer_type; a timer also gets _when. */
    static PyObject *ml_new(PyObject *tpo, PyObject *callback, PyObject *args, PyObject *loop,
                            PyObject *context, PyObject *when) {
        PyTypeObject *tp = (PyTypeObject *)tpo;
        PyObject *h;
        if (context == Py_None) {
            context = PyContext_CopyCurrent();
            if (context == NULL) return NULL;
        } else {
            Py_INCREF(context);
        }
    #ifndef Py_GIL_DISABLED
        if (tp == ml_handle_type && ml_nspare > 0) {
            h = ml_spare[--ml_nspare];
            ml_refill(h, callback, args, loop, context);
            return h;
        }
    #endif
        h = tp->tp_alloc(tp, 0);
        if (h == NULL) { Py_DECREF(context); return NULL; }
        Py_INCREF(callback); ML_SLOT(h, ML_CALLBACK) = callback;
        Py_INCREF(args); ML_SLOT(h, ML_ARGS) = args;
        ML_SLOT(h, ML_CANCELLED) = Py_NewRef(Py_False);
        Py_INCREF(loop); ML_SLOT(h, ML_LOOP) = loop;
        ML_SLOT(h, ML_REPR) = Py_NewRef(Py_None);
        ML_SLOT(h, ML_SRCTB) = Py_NewRef(Py_None);
        ML_SLOT(h, ML_CONTEXT) = context;
        if (tp == ml_timer_type) {
            Py_INCREF(when); ML_SLOT(h, ML_WHEN) = when;
            ML_SLOT(h, ML_SCHEDULED) = Py_NewRef(Py_False);
        }
        return h;
    }

    /* What Handle._run does up to its except clause: context.run(callback, *args). ``owned``: no other thread
       can write the handle's slots while it runs (call_soon_threadsafe's handles, whose cancel() waits for a
       running callback to return: see multiloop._threadsafe_handle), so they are read directly. */
    static inline PyObject *ml_run_handle(PyObject *h, int owned) {
        PyObject *ctx, *cb = NULL, *args = NULL, *res = NULL;
        ctx = owned ? ml_get_owned(h, ML_CONTEXT) : ml_get(h, ML_CONTEXT);
        if (ctx == NULL) return NULL;
        cb = owned ? ml_get_owned(h, ML_CALLBACK) : ml_get(h, ML_CALLBACK);
        if (cb == NULL) goto done;
        args = owned ? ml_get_owned(h, ML_ARGS) : ml_get(h, ML_ARGS);
        if (args == NULL) goto done;
        if (!PyTuple_CheckExact(args)) {  /* None once cancelled (by another thread, unsupported): fail, not crash */
            PyObject *t = PySequence_Tuple(args);
            Py_DECREF(args);
            args = t;
            if (args == NULL) goto done;
        }
        if (PyContext_Enter(ctx) < 0) goto done;
        /* Vectorcall on the tuple's items: PyObject_Call takes the same route after checks and an unpacking of
           its own (~100 instructions a callback on 3.14). */
        res = PyObject_Vectorcall(cb, &PyTuple_GET_ITEM(args, 0), (size_t)PyTuple_GET_SIZE(args), NULL);
        if (PyContext_Exit(ctx) < 0) Py_CLEAR(res);
    done:
        Py_XDECREF(args);
        Py_XDECREF(cb);
        Py_DECREF(ctx);
        return res;
    }

    static PyObject *ml_run(PyObject *h) { return ml_run_handle(h, 0); }
    static PyObject *ml_run_threadsafe(PyObject *h) { return ml_run_handle(h, 1); }

    /* _cancelled of a handle of a Handle subclass that keeps Handle's slots (call_soon_threadsafe's): the slot is
       at the same offset. */
    static inline int ml_cancelled_slot(PyObject *h) {
    #ifdef Py_GIL_DISABLED
        return __atomic_load_n(&ML_SLOT(h, ML_CANCELLED), __ATOMIC_RELAXED) == Py_True;
    #else
        return ML_SLOT(h, ML_CANCELLED) == Py_True;
    #endif
    }

    /* call_soon_threadsafe's handles (multiloop._threadsafe_handle.ThreadSafeHandle): a Handle subclass, so
       Handle's slots sit at Handle's offsets, plus _lock (asyncio's _ThreadSafeHandle slot on 3.14+, ours
       before) and _runner. Facts: setting the two by name cost ~270 instructions per call_soon_threadsafe and
       the runner's two stores ~330 per run (a type lookup and a descriptor call each); reading the offsets from
       the class's descriptors keeps this right on every Python, and ml_init_threadsafe() fails (the Python-level
       paths then run) if either is not a plain object slot. */
    static PyTypeObject *ml_ts_type = NULL;
    static PyMemberDef *ml_ts_lock = NULL, *ml_ts_runner = NULL;
    #define ML_TS_SLOT(o, m) (*(PyObject **)((char *)(o) + (m)->offset))

    static PyMemberDef *ml_find_member(PyObject *tp, const char *name) {
        PyObject *d = PyObject_GetAttrString(tp, name);  /* on a class: the descriptor itself */
        PyMemberDef *m = NULL;
        if (d == NULL) { PyErr_Clear(); return NULL; }
        if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
            m = ((PyMemberDescrObject *)d)->d_member;
            if (m->type != ML_T_OBJECT_EX || (m->flags & ML_READONLY) || m->offset <= 0) m = NULL;
        }
        Py_DECREF(d);  /* still alive: the class's dict owns it, and the class is kept below */
        return m;
    }

    static int ml_init_threadsafe(PyObject *ts_type) {
        if (ml_handle_type == NULL || !PyType_Check(ts_type) ||
                !PyType_IsSubtype((PyTypeObject *)ts_type, ml_handle_type))
            return 0;
        ml_ts_lock = ml_find_member(ts_type, "_lock");
        ml_ts_runner = ml_find_member(ts_type, "_runner");
        if (ml_ts_lock == NULL || ml_ts_runner == NULL) return 0;
        Py_INCREF(ts_type);
        ml_ts_type = (PyTypeObject *)ts_type;
        return 1;
    }

    #ifndef Py_GIL_DISABLED
    /* Spent call_soon_threadsafe handles kept for reuse, as ml_recycle keeps plain ones. A handle whose only
       reference is the loop's cannot be cancelled by anyone (a canceller holds a reference), so reusing it is
       safe. Producer threads take from here and the loop thread puts back, always with the GIL held and no
       Python code between the test and the array access. */
    static PyObject *ml_ts_spare[ML_SPARE_MAX];
    static int ml_ts_nspare = 0;
    #endif

    /* ThreadSafeHandle(callback, args, loop, context) without __init__ (the caller checked the debug flag). */
    static PyObject *ml_new_threadsafe(PyObject *callback, PyObject *args, PyObject *loop, PyObject *context) {
        PyObject *h;
    #ifndef Py_GIL_DISABLED
        if (ml_ts_nspare > 0) {
            if (context == Py_None) {
                context = PyContext_CopyCurrent();
                if (context == NULL) return NULL;
            } else {
                Py_INCREF(context);
            }
            h = ml_ts_spare[--ml_ts_nspare];
            ml_refill(h, callback, args, loop, context);
            Py_XSETREF(ML_TS_SLOT(h, ml_ts_lock), Py_NewRef(Py_None));
            Py_XSETREF(ML_TS_SLOT(h, ml_ts_runner), Py_NewRef(Py_None));
            return h;
        }
    #endif
        h = ml_new((PyObject *)ml_ts_type, callback, args, loop, context, NULL);
        if (h == NULL) return NULL;
        ML_TS_SLOT(h, ml_ts_lock) = Py_NewRef(Py_None);
        ML_TS_SLOT(h, ml_ts_runner) = Py_NewRef(Py_None);
        return h;
    }

    /* _runner = v. Every reader and writer of _runner and _lock holds the transition lock (cancel(),
       cancelled() and _run() in Python; the compiled runner whenever a canceller may be inside, and always on
       free-threaded builds), so plain stores are safe; PyMember_SetOne's atomics cost ~150 instructions a
       handle on 3.14t for nothing. */
    static inline int ml_ts_set_runner(PyObject *h, PyObject *v) {
        Py_INCREF(v);
        Py_XSETREF(ML_TS_SLOT(h, ml_ts_runner), v);
        return 0;
    }

    /* _runner = threading.get_ident() of this thread. */
    static inline int ml_ts_set_runner_here(PyObject *h) {
        PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
        int r;
        if (ident == NULL) return -1;
        r = ml_ts_set_runner(h, ident);
        Py_DECREF(ident);
        return r;
    }

    /* A new reference to _lock (None when unset); under the transition lock, as ml_ts_set_runner. */
    static inline PyObject *ml_ts_get_lock(PyObject *h) {
        PyObject *v = ML_TS_SLOT(h, ml_ts_lock);
        return Py_NewRef(v != NULL ? v : Py_None);
    }

    /* The caller holds one reference to h, a call_soon_threadsafe handle that has run or was cancelled. */
    static inline void ml_ts_recycle(PyObject *h) {
    #ifndef Py_GIL_DISABLED
        if (ml_ts_nspare >= ML_SPARE_MAX || !ml_empty_if_unshared(h, ml_ts_type)) return;
        Py_CLEAR(ML_TS_SLOT(h, ml_ts_lock));
        Py_CLEAR(ML_TS_SLOT(h, ml_ts_runner));
        if (ml_ts_nspare < ML_SPARE_MAX && Py_REFCNT(h) == 1) {
            Py_INCREF(h);
            ml_ts_spare[ml_ts_nspare++] = h;
        }
    #endif
    }

    /* Queued call_soon_threadsafe handles out of the collector's sight (GIL builds). Facts: under a burst from
       other threads the ready queue holds thousands of these handles; every allocation counts towards the next
       collection, and each collection visits every young (then every surviving) handle through
       subtype_traverse, which walks the class's slots one descriptor at a time: measured, 1,393 instructions
       per post of 7,095 (3.11, 4 threads, 80,000 posts), against 346 for uvloop's C handle. A queued handle is
       only ever reached from the loop's queue and from the thread that posted it, and it leaves the queue on
       the next pass, where the loop tracks it again before running it; so while queued the collector can only
       miss a cycle through it for that long (a cycle is never freed early: an untracked object's references
       just count as outside ones). The loop untracks only while its own compiled pass runs (run_forever),
       tracks every queued handle again when that stops or a hooked pass starts, and the test and the append
       run under the GIL with no allocation between them, so no handle is left untracked outside a pass.
       Free-threaded builds leave tracking alone. */
    static inline void ml_gc_untrack(PyObject *h) {
    #ifndef Py_GIL_DISABLED
        PyObject_GC_UnTrack(h);
    #endif
    }

    static inline void ml_gc_retrack(PyObject *h) {
    #ifndef Py_GIL_DISABLED
        if (PyObject_IS_GC(h) && !PyObject_GC_IsTracked(h)) PyObject_GC_Track(h);
    #endif
    }

    /* ml_gc_retrack on every item of deque d. No Python code runs during the walk, so d cannot change under it. */
    static int ml_gc_retrack_all(PyObject *d) {
    #ifndef Py_GIL_DISABLED
        PyObject *it = PyObject_GetIter(d), *h;
        if (it == NULL) return -1;
        while ((h = PyIter_Next(it)) != NULL) {
            ml_gc_retrack(h);
            Py_DECREF(h);
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) return -1;
    #endif
        return 0;
    }

    #ifdef Py_GIL_DISABLED
    #define ML_GIL_DISABLED 1
    #else
    #define ML_GIL_DISABLED 0
    #endif

    /* co_flags of a plain function's code (callback checks): a field read instead of two attribute lookups
       (measured: 6% of call_soon with the GIL; on 3.14t the lookup by name was 1,484 of 4,541 instructions per
       callback). Free-threaded builds: another thread may rebind __code__, so the pointer is loaded atomically;
       the code object it pointed to stays valid while this thread runs C code, because code objects are
       reference-counted deferred there (freed only by the collector, which first stops every thread).
       tests/test_compiled.py checks that a free-threaded build still defers them. */
    static inline long ml_code_flags(PyObject *f) {
    #ifndef Py_GIL_DISABLED
        return (long)((PyCodeObject *)PyFunction_GET_CODE(f))->co_flags;
    #else
        PyObject *code = (PyObject *)_Py_atomic_load_ptr_relaxed(&((PyFunctionObject *)f)->func_code);
        return (long)((PyCodeObject *)code)->co_flags;
    #endif
    }

    /* The core's ready queue is a collections.deque, appended to once and popped once per callback. Called as
       bound methods from C, each is a vectorcall through the method object (~90 instructions); called through
       the C function behind the method (its PyMethodDef, read from the type's descriptor at import time, like
       the handle slots above) it is the deque's own code only. On free-threaded builds that function is the
       Argument Clinic wrapper that takes the deque's critical section, so the locking is the same. Any
       surprise (another flag, not a method descriptor) makes ml_init_deque() return 0 and the callers keep
       the bound methods. */
    static PyCFunction ml_deque_append_fn = NULL, ml_deque_popleft_fn = NULL;

    static PyCFunction ml_method_of(PyObject *type, const char *name, int flags) {
        PyObject *d = PyDict_GetItemString(((PyTypeObject *)type)->tp_dict, name);
        PyMethodDef *m;
        if (d == NULL || !Py_IS_TYPE(d, &PyMethodDescr_Type)) return NULL;
        m = ((PyMethodDescrObject *)d)->d_method;
        return (m->ml_flags == flags) ? m->ml_meth : NULL;
    }

    static int ml_init_deque(PyObject *deque_type) {
        if (!PyType_Check(deque_type)) return 0;
        ml_deque_append_fn = ml_method_of(deque_type, "append", METH_O);
        ml_deque_popleft_fn = ml_method_of(deque_type, "popleft", METH_NOARGS);
        return ml_deque_append_fn != NULL && ml_deque_popleft_fn != NULL;
    }

    /* Only after ml_init_deque() returned 1, and only on an exact deque: the core's _ready, made in its
       __init__ and never rebound. */
    static inline int ml_deque_append(PyObject *d, PyObject *x) {
        PyObject *r = ml_deque_append_fn(d, x);
        if (r == NULL) return -1;
        Py_DECREF(r);
        return 0;
    }
    static inline PyObject *ml_deque_popleft(PyObject *d) {
        return ml_deque_popleft_fn(d, NULL);
    }

    /* The threadsafe handles' transition lock (a _thread.lock; see multiloop._threadsafe_handle), which the
       loop takes twice for every such handle it runs on free-threaded builds. Called by name, acquire() and
       release() each cost a method lookup and a descriptor call; called through the C functions behind them
       (read from the lock type's descriptors at import time, as for the deque above) they are the lock's own
       code. A lock of another type, or methods with calling conventions other than these, keep the calls by
       name. */
    typedef PyObject *(*ml_fastcall_kw)(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);
    static PyTypeObject *ml_lock_type = NULL;
    static PyCFunction ml_lock_acquire_fn = NULL, ml_lock_release_fn = NULL;
    static int ml_lock_acquire_fast = 0;  /* acquire's convention: 1 METH_FASTCALL, 0 METH_VARARGS (+ keywords) */
    static PyObject *ml_str_acquire = NULL, *ml_str_release = NULL;

    /* Free-threaded builds (3.13+): the lock taken as the PyMutex inside it. Its acquire() parses its (empty)
       arguments with PyArg_ParseTupleAndKeywords, and the loop takes the lock twice per threadsafe handle: on
       3.14t the 4-thread call_soon_threadsafe burst ran at 0.93x uvloop with the calls and at a tie when the
       runner skipped the lock (measured, not kept: unsafe). _thread.lock is { PyObject_HEAD; PyMutex lock; }
       (Modules/_threadmodule.c, 3.13+), a private layout: it is used only after ml_init_lock has checked the
       type's size and watched the byte follow acquire() and release() made by name; otherwise, and on every
       GIL build (where the runner rarely takes the lock at all), the calls stay. PyMutex_Lock detaches the
       thread state while it waits, as acquire() does; it does not stop for signals, which a section of a few
       slot reads and writes has no use for. */
    #if defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x030D0000
    #define ML_LOCK_CAN_BE_MUTEX 1
    typedef struct { PyObject_HEAD PyMutex lock; } ml_lockobject;
    #else
    #define ML_LOCK_CAN_BE_MUTEX 0
    #endif
    static int ml_lock_is_mutex = 0;

    #if ML_LOCK_CAN_BE_MUTEX
    static int ml_lock_byte_follows(PyObject *lock) {
        /* 1 if the byte after the header is the mutex acquire()/release() set and clear, 0 if not, -1 error.
           Another thread using the lock meanwhile makes it answer 0 (safe: the calls by name stay). */
        PyMutex *m = &((ml_lockobject *)lock)->lock;
        PyObject *r;
        int held;
        if (__atomic_load_n((uint8_t *)m, __ATOMIC_ACQUIRE) != 0) return 0;
        r = PyObject_CallMethodNoArgs(lock, ml_str_acquire);
        if (r == NULL) return -1;
        Py_DECREF(r);
        held = __atomic_load_n((uint8_t *)m, __ATOMIC_ACQUIRE) & 1;
        r = PyObject_CallMethodNoArgs(lock, ml_str_release);
        if (r == NULL) return -1;
        Py_DECREF(r);
        return held && __atomic_load_n((uint8_t *)m, __ATOMIC_ACQUIRE) == 0;
    }
    #endif

    /* 2: the lock's PyMutex is used directly; 1: its methods through their C functions; 0: by name. */
    static int ml_init_lock(PyObject *lock) {
        PyObject *tp = (PyObject *)Py_TYPE(lock);
        PyCFunction acquire, release;
        if (ml_str_acquire == NULL) {
            ml_str_acquire = PyUnicode_InternFromString("acquire");
            ml_str_release = PyUnicode_InternFromString("release");
            if (ml_str_acquire == NULL || ml_str_release == NULL) return -1;
        }
        release = ml_method_of(tp, "release", METH_NOARGS);
        acquire = ml_method_of(tp, "acquire", METH_VARARGS | METH_KEYWORDS);
        ml_lock_acquire_fast = acquire == NULL;
        if (acquire == NULL) acquire = ml_method_of(tp, "acquire", METH_FASTCALL | METH_KEYWORDS);
        if (acquire == NULL || release == NULL) return 0;
        Py_INCREF(tp);
        ml_lock_acquire_fn = acquire;
        ml_lock_release_fn = release;
        ml_lock_type = (PyTypeObject *)tp;
    #if ML_LOCK_CAN_BE_MUTEX
        if (((PyTypeObject *)tp)->tp_basicsize == (Py_ssize_t)sizeof(ml_lockobject)) {
            int follows = ml_lock_byte_follows(lock);
            if (follows < 0) return -1;
            ml_lock_is_mutex = follows;
        }
    #endif
        return ml_lock_is_mutex ? 2 : 1;
    }

    static inline int ml_lock_acquire(PyObject *lock) {
        PyObject *r;
        /* The type test every time: a forked child replaces the lock (with one of the same type). */
        if (ml_lock_type != NULL && Py_IS_TYPE(lock, ml_lock_type)) {
    #if ML_LOCK_CAN_BE_MUTEX
            if (ml_lock_is_mutex) {
                PyMutex_Lock(&((ml_lockobject *)lock)->lock);
                return 0;
            }
    #endif
            if (ml_lock_acquire_fast) {
                PyObject *no_args[1] = {NULL};
                r = ((ml_fastcall_kw)(void (*)(void))ml_lock_acquire_fn)(lock, no_args, 0, NULL);
            } else {
                PyObject *empty = PyTuple_New(0);  /* the immortal empty tuple: no allocation */
                if (empty == NULL) return -1;
                r = ((PyCFunctionWithKeywords)(void (*)(void))ml_lock_acquire_fn)(lock, empty, NULL);
                Py_DECREF(empty);
            }
        } else {
            r = PyObject_CallMethodNoArgs(lock, ml_str_acquire);
        }
        if (r == NULL) return -1;
        Py_DECREF(r);
        return 0;
    }

    static inline int ml_lock_release(PyObject *lock) {
        PyObject *r;
        if (ml_lock_type != NULL && Py_IS_TYPE(lock, ml_lock_type)) {
    #if ML_LOCK_CAN_BE_MUTEX
            if (ml_lock_is_mutex) {
                PyMutex_Unlock(&((ml_lockobject *)lock)->lock);
                return 0;
            }
    #endif
            r = ml_lock_release_fn(lock, NULL);
        } else {
            r = PyObject_CallMethodNoArgs(lock, ml_str_release);
        }
        if (r == NULL) return -1;
        Py_DECREF(r);
        return 0;
    }

    /* len() of a container through its type's own slot (the core's ready deque, twice a pass): len() and a
       truth test go through PyObject_Size/PyObject_IsTrue's generic dispatch, ~45 instructions each. */
    static inline Py_ssize_t ml_len(PyObject *o) {
        PySequenceMethods *m = Py_TYPE(o)->tp_as_sequence;
        if (m != NULL && m->sq_length != NULL) return m->sq_length(o);
        return PyObject_Size(o);
    }

    /* A sequentially consistent fence (free-threaded builds only: with the GIL, taking it orders everything). */
    static inline void ml_fence(void) {
    #ifdef Py_GIL_DISABLED
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    #endif
    }
    """
    int ML_CALLBACK, ML_ARGS, ML_CANCELLED, ML_LOOP, ML_REPR, ML_SRCTB, ML_CONTEXT, ML_WHEN, ML_SCHEDULED
    bint ml_init_handles(object handle_type, object timer_type)
    bint ml_is_plain(object h)
    object ml_get(object h, int i)
    int ml_set(object h, int i, object v) except -1
    int ml_cancelled(object h) except -1
    int ml_cancel_quiet(object h) except -1
    int ml_cancelled_slot(object h) noexcept
    int ML_GIL_DISABLED
    object ml_new(object tp, object callback, object args, object loop, object context, object when)
    object ml_run(object h)
    object ml_run_threadsafe(object h)
    void ml_recycle(object h)
    long ml_code_flags(object f) except? -1
    void ml_fence() noexcept nogil
    Py_ssize_t ml_len(object o) except -1
    bint ml_init_deque(object deque_type)
    int ml_init_lock(object lock) except -1
    int ml_lock_acquire(object lock) except -1
    int ml_lock_release(object lock) except -1
    int ml_deque_append(object d, object x) except -1
    object ml_deque_popleft(object d)
    bint ml_init_threadsafe(object ts_type)
    object ml_new_threadsafe(object callback, object args, object loop, object context)
    int ml_ts_set_runner(object h, object v) except -1
    int ml_ts_set_runner_here(object h) except -1
    object ml_ts_get_lock(object h)
    void ml_ts_recycle(object h)
    void ml_gc_untrack(object h)
    void ml_gc_retrack(object h)
    int ml_gc_retrack_all(object d) except -1
