"""Security: files at Unix socket paths that are not sockets are left alone, TLS handshake and shutdown
timeouts hold against a silent peer, and every fd the loop opens is close-on-exec.

Facts that shape it:
- Binding a Unix socket fails when the path exists. A server restarting after a crash finds its old socket
  file there, so ``create_unix_server`` (and a Unix datagram endpoint) removes a *socket* file first; it
  must never remove anything else (a regular file, a directory, a FIFO, a symlink to any of them), and a
  server must not unlink, on close, a path that has been replaced since it bound it.
- A TLS peer that connects and then says nothing would hold a connection (and its memory) forever: the
  handshake timeout closes it, on both sides; a peer that stops answering after the handshake would do the
  same at close time: the shutdown timeout aborts it. The timers must fire however busy the loop is.
- An fd without ``O_CLOEXEC`` leaks into every program the process executes (a child keeps a listening
  socket open, or the loop's epoll object). Python makes its own fds non-inheritable; the check covers what
  the loop and its backend open: the poller's fd, eventfd or self-pipe, the signal pipe, pidfds, accepted and
  created sockets of every kind. The scenario runs in a process of its own (``ISOLATED``) so that every
  fd above 2 is the loop's or the scenario's, and a child started with ``close_fds=False`` must see none.

Promises checked: each kind of non-socket file is intact after both APIs refused it, a stale socket file is
replaced, a replaced path survives the server's close; handshake and shutdown timeouts fire (not before
their time, within 20 s after it) on client and server side; every fd is close-on-exec and an exec'd child
inherits none. Figures: kinds checked, measured timeout delays, fds checked and their kinds.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from typing import Any

from .certificates import self_signed_contexts
from .harness import Context, open_fds

ISOLATED = True

SIZES = {
    "ci": {"tls_timeout": 0.5, "timeout": 120},
    "soak": {"tls_timeout": 2.0, "timeout": 300},
}

#: A timeout must fire within this many seconds after it is due, however loaded the machine.
_LATE = 20.0


# ---------------------------------------------------------------------------------- Unix socket paths
def _make_non_sockets(tmp: str) -> dict[str, str]:
    paths = {}
    regular = os.path.join(tmp, "regular")
    with open(regular, "w") as f:
        f.write("precious")
    paths["regular file"] = regular
    directory = os.path.join(tmp, "directory")
    os.mkdir(directory)
    with open(os.path.join(directory, "inside"), "w") as f:
        f.write("precious")
    paths["directory"] = directory
    if hasattr(os, "mkfifo"):
        fifo = os.path.join(tmp, "fifo")
        os.mkfifo(fifo)
        paths["fifo"] = fifo
    link = os.path.join(tmp, "link-to-file")
    os.symlink(regular, link)
    paths["symlink to a file"] = link
    dlink = os.path.join(tmp, "link-to-dir")
    os.symlink(directory, dlink)
    paths["symlink to a directory"] = dlink
    dangling = os.path.join(tmp, "dangling")
    os.symlink(os.path.join(tmp, "nowhere"), dangling)
    paths["dangling symlink"] = dangling
    return paths


def _fingerprint(path: str) -> tuple[Any, ...]:
    st = os.lstat(path)
    content: Any = None
    if stat.S_ISREG(st.st_mode):
        with open(path) as f:
            content = f.read()
    elif stat.S_ISDIR(st.st_mode):
        content = sorted(os.listdir(path))
    elif stat.S_ISLNK(st.st_mode):
        content = os.readlink(path)
    return (st.st_ino, stat.S_IFMT(st.st_mode), content)


async def _unix_paths(ctx: Context) -> None:
    loop = ctx.loop
    tmp = tempfile.mkdtemp(prefix="multiloop-sec-")
    try:
        checked = []
        for kind, path in _make_non_sockets(tmp).items():
            before = _fingerprint(path)
            for api in ("create_unix_server", "create_datagram_endpoint"):
                try:
                    if api == "create_unix_server":
                        server = await loop.create_unix_server(asyncio.Protocol, path)
                        server.close()
                        await server.wait_closed()
                    else:
                        transport, _ = await loop.create_datagram_endpoint(
                            asyncio.DatagramProtocol, local_addr=path, family=socket.AF_UNIX)
                        transport.close()
                    ctx.check(False, f"{api} bound a socket over a {kind}")
                except OSError:
                    pass
                ctx.check(os.path.lexists(path) and _fingerprint(path) == before,
                          f"{api} changed or removed a {kind} at the socket path")
            checked.append(kind)
        ctx.figure("non_socket_kinds_left_intact", checked)
        # A socket file left by a server that is gone is replaced.
        stale_path = os.path.join(tmp, "stale.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(stale_path)
        stale.close()
        server = await loop.create_unix_server(asyncio.Protocol, stale_path)
        # A path replaced while the server runs is not the server's to remove at close.
        os.rename(stale_path, stale_path + ".moved")
        with open(stale_path, "w") as f:
            f.write("someone else's")
        server.close()
        await server.wait_closed()
        with open(stale_path) as f:
            ctx.check(f.read() == "someone else's", "a server removed, at close, a file that replaced its socket")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- TLS
class _Lost(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


async def _tls(ctx: Context) -> None:
    loop, timeout = ctx.loop, ctx.params["tls_timeout"]
    tmp = tempfile.mkdtemp(prefix="multiloop-tls-")
    try:
        contexts = self_signed_contexts(tmp, "DNS:localhost")
        if contexts is None:
            ctx.figure("tls", "skipped: no openssl command")
            return
        server_ctx, client_ctx = contexts
        delays: dict[str, float] = {}

        def in_time(name: str, elapsed: float) -> None:
            delays[name] = round(elapsed, 3)
            ctx.check(timeout * 0.9 <= elapsed <= timeout + _LATE,
                      f"{name}: fired after {elapsed:.2f} s (timeout {timeout} s)")

        # Client handshake against a server that accepts and says nothing.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        silent.setblocking(False)
        accepted: list[socket.socket] = []
        try:
            accepting = loop.create_task(loop.sock_accept(silent))
            start = time.monotonic()
            try:
                await loop.create_connection(asyncio.Protocol, *silent.getsockname(), ssl=client_ctx,
                                             server_hostname="localhost", ssl_handshake_timeout=timeout)
                ctx.check(False, "a TLS handshake with a silent server succeeded")
            except (ConnectionError, TimeoutError, ssl.SSLError):
                in_time("client_handshake_timeout_s", time.monotonic() - start)
            accepted.append((await accepting)[0])
        finally:
            for s in accepted:
                s.close()
            silent.close()

        # Server handshake against a client that connects and says nothing.
        server = await loop.create_server(_Lost, "127.0.0.1", 0, ssl=server_ctx, ssl_handshake_timeout=timeout)
        quiet = socket.socket()
        quiet.setblocking(False)
        try:
            await loop.sock_connect(quiet, server.sockets[0].getsockname()[:2])
            start = time.monotonic()
            try:
                data = await asyncio.wait_for(loop.sock_recv(quiet, 100), timeout + _LATE)
                ctx.check(data == b"", f"a silent TLS client got {data!r} instead of the end of the connection")
            except ConnectionResetError:
                pass
            except TimeoutError:
                ctx.check(False, "the server's TLS handshake timeout never closed a silent client")
            in_time("server_handshake_timeout_s", time.monotonic() - start)
        finally:
            quiet.close()
            server.close()
            await server.wait_closed()

        # Shutdown against a peer that stops answering after the handshake, server side then client side.
        await _shutdown_against_silent_peer(ctx, server_ctx, client_ctx, in_time)
        ctx.figure("tls_timeouts", {"configured_s": timeout, **delays})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _silent_tls_peer(sock: socket.socket, context: ssl.SSLContext, server_side: bool, release: threading.Event,
                     ready: threading.Event) -> None:
    """Blocking TLS peer in a thread: handshake, then silence (no reads, no close_notify) until released."""
    try:
        with context.wrap_socket(sock, server_side=server_side,
                                 server_hostname=None if server_side else "localhost") as tls:
            ready.set()
            release.wait(60)
            tls.settimeout(0)
    except (OSError, ValueError):
        ready.set()


async def _shutdown_against_silent_peer(ctx: Context, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
                                        in_time: Any) -> None:
    for side in ("server", "client"):
        await _shutdown_case(ctx, side, server_ctx, client_ctx, in_time)


async def _shutdown_case(ctx: Context, side: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
                         in_time: Any) -> None:
    """The loop's ``side`` of a TLS connection closes; the peer completed the handshake and says no more."""
    loop, timeout = ctx.loop, ctx.params["tls_timeout"]
    release, ready = threading.Event(), threading.Event()
    protocols: list[_Lost] = []
    thread: threading.Thread | None = None
    server: Any = None
    listener: socket.socket | None = None

    def factory() -> _Lost:
        protocols.append(_Lost())
        return protocols[-1]

    try:
        if side == "server":
            server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx,
                                              ssl_shutdown_timeout=timeout)
            peer = socket.create_connection(server.sockets[0].getsockname()[:2])
            thread = threading.Thread(target=_silent_tls_peer, args=(peer, client_ctx, False, release, ready))
            thread.start()
            while not protocols or not ready.is_set():
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the server's handshake is done (connection_made ran)
            protocol = protocols[0]
        else:
            listener = socket.create_server(("127.0.0.1", 0))
            addr = listener.getsockname()
            thread = threading.Thread(target=_accept_silently, args=(listener, server_ctx, release, ready))
            thread.start()
            _, protocol = await loop.create_connection(_Lost, *addr, ssl=client_ctx, server_hostname="localhost",
                                                       ssl_shutdown_timeout=timeout)
        start = time.monotonic()
        protocol.transport.close()  # sends close_notify; the peer never answers
        try:
            await asyncio.wait_for(asyncio.shield(protocol.lost), timeout + _LATE)
            in_time(f"{side}_shutdown_timeout_s", time.monotonic() - start)
        except TimeoutError:
            ctx.check(False, f"the {side}'s TLS shutdown timeout never ended a silent peer's connection")
            protocol.transport.abort()
    finally:
        release.set()
        if thread is not None:
            await loop.run_in_executor(None, thread.join, 30)
        if listener is not None:
            listener.close()
        if server is not None:
            server.close()
            await server.wait_closed()


def _accept_silently(listener: socket.socket, context: ssl.SSLContext, release: threading.Event,
                     ready: threading.Event) -> None:
    conn, _ = listener.accept()
    _silent_tls_peer(conn, context, True, release, ready)


# ------------------------------------------------------------------------------------------ O_CLOEXEC
_LIST_FDS = "import os; print(' '.join(sorted(os.listdir('/proc/self/fd' if os.path.isdir('/proc/self/fd') else '/dev/fd'))))"


async def _cloexec(ctx: Context) -> None:
    """Open every kind of fd the loop has, then check each fd above 2 and what an exec'd child inherits."""
    loop = ctx.loop
    import signal

    tmp = tempfile.mkdtemp(prefix="multiloop-fds-")
    held: list[Any] = []
    try:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        held.append(server)
        tr, _ = await loop.create_connection(asyncio.Protocol, *server.sockets[0].getsockname()[:2])
        held.append(tr)
        unix = await loop.create_unix_server(asyncio.Protocol, os.path.join(tmp, "u.sock"))
        held.append(unix)
        utr, _ = await loop.create_unix_connection(asyncio.Protocol, os.path.join(tmp, "u.sock"))
        held.append(utr)
        dtr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        held.append(dtr)
        signals = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR2")
        if signals:
            loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import sys; sys.stdin.read()",
                                                    stdin=subprocess.PIPE)
        await loop.run_in_executor(None, time.sleep, 0.01)  # call_soon_threadsafe: the waker is in use
        await asyncio.sleep(0.05)  # accepted sockets exist
        kinds: Counter[str] = Counter()
        inheritable = {}
        for fd, target in open_fds().items():
            if fd <= 2:
                continue
            try:
                flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            except OSError:
                continue
            kind = target.split(":")[0] if ":" in target else target.rsplit("/", 1)[-1]
            if target.startswith("anon_inode:"):
                kind = target
            kinds[kind] += 1
            if not flags & fcntl.FD_CLOEXEC:
                inheritable[fd] = target
        ctx.check(not inheritable, f"fds without O_CLOEXEC: {inheritable}")
        out = subprocess.run([sys.executable, "-c", _LIST_FDS], close_fds=False, capture_output=True,
                             text=True).stdout.split()
        extra = [fd for fd in out if int(fd) > 3]  # 0-2, and the listing's own directory fd
        ctx.check(not extra, f"an exec'd child inherited fds {extra}")
        ctx.figure("fds_checked", dict(sorted(kinds.items())))
        assert proc.stdin is not None
        proc.stdin.close()
        await proc.wait()
        if signals:
            loop.remove_signal_handler(signal.SIGUSR2)
    finally:
        for thing in held:
            thing.close()
        for thing in held:
            if hasattr(thing, "wait_closed"):
                await thing.wait_closed()
        await asyncio.sleep(0)
        shutil.rmtree(tmp, ignore_errors=True)


async def main(ctx: Context) -> None:
    await _unix_paths(ctx)
    await _tls(ctx)
    await _cloexec(ctx)
