"""What of CPython's ``test.test_asyncio`` runs against multiloop, and which issue owns it.

One table (``MODULES``): module -> the issue scope that owns it, which of its classes run and how their loops
become multiloop loops. Later work flips a scope on (``MULTILOOP_CONFORMANCE=core,net,unix``; default
``core``), it does not edit the runner.

How a test's loops become multiloop loops, per module entry:

- *policy* (every module): the runner process makes asyncio's default policy class produce multiloop loops,
  so ``asyncio.new_event_loop()``, ``asyncio.run()``, ``asyncio.Runner()``, ``IsolatedAsyncioTestCase`` and
  ``DefaultEventLoopPolicy().new_event_loop()`` all give a multiloop loop on the backend under test.
- *adapt*: a mixin whose concrete stock classes build a stock loop directly (``asyncio.SelectorEventLoop(
  selectors.EpollSelector())``) is combined again with a base TestCase into a ``Multiloop...`` class whose
  loop-making method returns ``multiloop.new_loop(backend)``. The stock concrete classes (every class of the
  module that subclasses an adapted mixin) are not run.
- *drop*: classes that construct stock loop classes directly and test their private machinery (mocked
  selectors, patched ``asyncio.unix_events`` globals, stock transports on a fake loop). They cannot say
  anything about multiloop; each is listed with its reason.
- Tests on ``test_utils.TestLoop`` (a fake-clock *stock* loop) still run, and pass or fail on stock asyncio
  code; the runner counts per test whether it made a multiloop loop ("exercised") so the numbers are honest.

``test_events.EventLoopTestsMixin`` mixes issue 2, 3 and 4 APIs in one class. Each of its tests is
classified by the APIs its source (and the ``self._helper`` methods it calls) uses, see ``NET_APIS`` and
``UNIX_APIS``: a test that touches a networking API needs scope ``net``, one that touches signals, pipes or
subprocesses needs ``unix``, otherwise it is ``core``. ``cpython_runner.py --list`` prints the
classification for review. Tests needing ``unix`` run in the class built on ``UnixEventLoopTestsMixin`` (the
stock arrangement, with its child watcher), the others in the one built on ``EventLoopTestsMixin``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCOPES = {
    "core": "issue 2: loop core (scheduling, timers, fds, executors, tasks, futures, sync primitives)",
    "net": "issue 3: networking (servers, transports, sock_*, sendfile, TLS, streams)",
    "unix": "issue 4: subprocesses, pipes, signals",
}
DEFAULT_SCOPES: tuple[str, ...] = ("core", "net", "unix")  # every issue's scope is implemented


@dataclass(frozen=True)
class Adapt:
    """Build ``name`` = (*mixins, base) with ``method`` returning a multiloop loop.

    ``method`` is the mixin's loop factory (``create_event_loop``/``new_loop``); the special value
    ``"setUp"`` means a ``setUp`` that makes ``self.loop`` and replaces the mixin's own (test_subprocess's
    mixin has none; test_pep492's BaseTest builds a mocked stock ``BaseEventLoop`` there).
    ``scopes``: which per-test scopes this class runs (None: the module's scope for every test).
    ``each_subclass``: the "mixin" is a base class with concrete subclasses (test_runners/test_pep492
    ``BaseTest``): build ``Multiloop<Subclass>`` = (subclass,) + the override for each of them instead.
    ``runner_flag``: the loop also records ``shutdown_ag_run`` when its ``shutdown_asyncgens`` runs, which
    test_runners' ``BaseTest.tearDown`` checks (its mocked stock loop records the same)."""

    name: str
    mixins: tuple[str, ...]
    method: str
    base: str = "test_utils.TestCase"
    scopes: frozenset[str] | None = None
    each_subclass: bool = False
    runner_flag: bool = False
    # Mixins to use instead where ``mixins`` are not all defined (a Python that reshaped the module).
    fallback_mixins: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Module:
    scope: str
    adapt: tuple[Adapt, ...] = ()
    # class name -> why it is not run (stock-only machinery; see module docstring)
    drop: dict[str, str] = field(default_factory=dict)
    # classify each test of the adapted classes by the APIs it uses (test_events only)
    classify: bool = False
    # False when the module has no loop-level test at all (pure ABC tests): no multiloop loop expected
    expect_loops: bool = True
    # True when no test of the module hands the loop an fd of its own (tasks, futures, locks, timeouts): the
    # backend is only ever asked to wait with a timeout on the loop's wake-up fd, which every other module
    # exercises too. Such a module tests the core, which is the same code under every poller; a test run may
    # run it on fewer backends (tests/conformance does: see fd_free_backends there). check-backend runs everything.
    fd_free: bool = False


_STOCK_WATCHERS = "stock child watcher classes on a fake TestLoop; multiloop does not use asyncio's watchers"

MODULES: dict[str, Module] = {
    # ---------------------------------------------------------------- issue 2: the core
    "test_events": Module(
        "core",
        classify=True,
        adapt=(
            Adapt("MultiloopEventLoopTests", ("EventLoopTestsMixin",), "create_event_loop",
                  scopes=frozenset({"core", "net"})),
            # 3.14 dropped UnixEventLoopTestsMixin (it only set up child watchers): its concrete classes are
            # EventLoopTestsMixin + SubprocessTestsMixin.
            Adapt("MultiloopUnixEventLoopTests", ("UnixEventLoopTestsMixin", "SubprocessTestsMixin"),
                  "create_event_loop", scopes=frozenset({"unix"}),
                  fallback_mixins=("EventLoopTestsMixin", "SubprocessTestsMixin")),
        ),
    ),
    "test_tasks": Module("core", fd_free=True),
    "test_futures": Module("core", fd_free=True),
    "test_futures2": Module("core", fd_free=True),
    "test_locks": Module("core", fd_free=True),
    "test_queues": Module("core", fd_free=True),
    "test_taskgroups": Module("core", fd_free=True),
    "test_timeouts": Module("core", fd_free=True),
    # BaseTest of these two builds asyncio.BaseEventLoop() with a mocked _selector/_process_events (stock
    # internals); its subclasses run again with a multiloop loop instead (the stock ones are not run).
    "test_runners": Module("core", adapt=(Adapt("Multiloop", ("BaseTest",), "new_loop", each_subclass=True,
                                                runner_flag=True),)),
    "test_pep492": Module("core", adapt=(Adapt("Multiloop", ("BaseTest",), "setUp", each_subclass=True),),
                          fd_free=True),
    "test_context": Module("core", fd_free=True),
    "test_waitfor": Module("core", fd_free=True),
    "test_threads": Module("core"),
    "test_eager_task_factory": Module("core", fd_free=True),  # 3.12+
    "test_staggered": Module("core", fd_free=True),  # 3.13+ (asyncio.staggered, used by happy eyeballs)
    "test_graph": Module("core", fd_free=True),  # 3.14+ (asyncio.graph: call graphs of tasks on the running loop)
    "test_free_threading": Module("core"),  # 3.14+ (tasks and loops used from many threads)
    # 3.14+: asyncio.tools (`python -m asyncio ps/pstree`) formatting of canned data; no loop involved
    "test_tools": Module("core", expect_loops=False, fd_free=True),
    # ---------------------------------------------------------------- issue 3: networking
    # (the network tests of test_events.EventLoopTestsMixin come from the test_events entry above)
    "test_streams": Module("net"),
    "test_server": Module("net", adapt=(Adapt("MultiloopStartServerTests", ("BaseStartServer",), "new_loop",
                                              base="unittest.TestCase"),)),
    "test_sock_lowlevel": Module("net", adapt=(Adapt("MultiloopSockTests", ("BaseSockTestsMixin",),
                                                     "create_event_loop"),)),
    "test_sendfile": Module("net", adapt=(Adapt("MultiloopSendfileTests", ("SendfileTestsBase",),
                                                "create_event_loop"),)),
    "test_ssl": Module("net"),
    "test_buffered_proto": Module("net", adapt=(Adapt("MultiloopBufferedProtocolTests",
                                                      ("BaseTestBufferedProtocol",), "new_loop",
                                                      base="unittest.TestCase"),)),
    "test_protocols": Module("net", expect_loops=False),
    "test_server_context": Module("net"),  # 3.15+ (servers' contextvars: each connection in a copy of the
                                           # server's creation-time context)
    # ---------------------------------------------------------------- issue 4: subprocess, pipes, signals
    # (UnixEventLoopTestsMixin/SubprocessTestsMixin of test_events come from the test_events entry above)
    "test_subprocess": Module(
        "unix",
        adapt=(Adapt("MultiloopSubprocessTests", ("SubprocessMixin",), "setUp"),),
        drop={"SubprocessTransportTests": "stock base_subprocess.BaseSubprocessTransport on a fake TestLoop",
              "MultiLoopChildWatcherTests": _STOCK_WATCHERS},
    ),
    "test_unix_events": Module(
        "unix",
        drop={
            "SelectorEventLoopSignalTests": "builds asyncio.SelectorEventLoop and patches "
                                            "asyncio.unix_events.signal (stock private machinery)",
            "SelectorEventLoopUnixSocketTests": "builds asyncio.SelectorEventLoop and mocks its private "
                                                "socket helpers",
            "UnixReadPipeTransportTests": "stock unix_events._UnixReadPipeTransport on a fake TestLoop",
            "UnixWritePipeTransportTests": "stock unix_events._UnixWritePipeTransport on a fake TestLoop",
            "AbstractChildWatcherTests": _STOCK_WATCHERS,
            "BaseChildWatcherTests": _STOCK_WATCHERS,
            "SafeChildWatcherTests": _STOCK_WATCHERS,
            "FastChildWatcherTests": _STOCK_WATCHERS,
        },
    ),
}

# APIs that put an EventLoopTestsMixin test into scope "net" / "unix" (matched as whole words in the source
# of the test and of the self._helpers it calls). getaddrinfo/getnameinfo are core (issue 2).
NET_APIS = (
    "create_connection", "create_server", "create_unix_connection", "create_unix_server",
    "create_datagram_endpoint", "connect_accepted_socket", "start_tls", "sendfile", "sock_sendfile",
    "sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into", "sock_sendall", "sock_sendto",
    "sock_connect", "sock_accept", "run_test_server", "run_test_unix_server", "run_udp_echo_server",
    "start_server", "open_connection", "start_unix_server", "open_unix_connection",
)
UNIX_APIS = (
    "add_signal_handler", "remove_signal_handler", "connect_read_pipe", "connect_write_pipe",
    "subprocess_exec", "subprocess_shell", "create_subprocess_exec", "create_subprocess_shell", "openpty",
)


def parse_scopes(text: str | None) -> tuple[str, ...]:
    """``"core,net"`` -> ("core", "net"); ``all`` -> every scope; empty/None -> the default."""
    if not text or not text.strip():
        return DEFAULT_SCOPES
    names = [n.strip() for n in text.replace(" ", ",").split(",") if n.strip()]
    if names == ["all"]:
        return tuple(SCOPES)
    unknown = [n for n in names if n not in SCOPES]
    if unknown:
        raise ValueError(f"unknown conformance scope(s) {unknown}; known: {', '.join(SCOPES)} or 'all'")
    if "core" not in names:
        names.insert(0, "core")  # every other scope builds on the core
    return tuple(dict.fromkeys(names))


def modules_in_scope(scopes: tuple[str, ...]) -> list[str]:
    """The modules that have at least one test in ``scopes`` (test_events is core, so always there)."""
    return [name for name, mod in MODULES.items()
            if mod.scope in scopes or (mod.classify and any(a.scopes and a.scopes & set(scopes)
                                                            for a in mod.adapt))]
