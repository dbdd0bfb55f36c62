"""The contract multiloop's TLS adapter relies on in ``asyncio.sslproto`` (a private CPython module).

Each test names what it relies on; when a Python release changes it, the failure message says which Python
and what changed, so the fix goes into multiloop/net/_sslproto_adapter.py and nowhere else.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
import sys
from asyncio import sslproto

import pytest

from multiloop.net import _sslproto_adapter as adapter

PY = f"Python {sys.version.split()[0]}"


def _changed(what: str) -> str:
    return (f"{PY} changed asyncio.sslproto: {what}. multiloop's TLS adapter "
            f"(multiloop/net/_sslproto_adapter.py) must be updated for this Python.")


class _RecordingTransport(asyncio.Transport):
    """A raw transport that records every attribute SSLProtocol looks up on it."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "used", set())
        object.__setattr__(self, "written", [])

    def __getattribute__(self, name: str):
        if not name.startswith("__") and name not in ("used", "written"):
            object.__getattribute__(self, "used").add(name)
        return object.__getattribute__(self, name)

    def write(self, data) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def _force_close(self, exc) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name, default=None):
        return default


def test_sslprotocol_constructor_takes_the_parameters_the_adapter_passes():
    params = inspect.signature(sslproto.SSLProtocol.__init__).parameters
    missing = [p for p in adapter.SSLPROTOCOL_PARAMETERS if p not in params]
    assert not missing, _changed(f"SSLProtocol.__init__ lost parameter(s) {missing}; it now takes "
                                 f"{list(params)}")
    required = [n for n, p in params.items() if n != "self" and p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [n for n in required if n not in adapter.SSLPROTOCOL_PARAMETERS]
    assert not unknown, _changed(f"SSLProtocol.__init__ has new required parameter(s) {unknown}")


def test_sslprotocol_is_a_buffered_protocol():
    # The socket transport under it reads with get_buffer/buffer_updated.
    assert issubclass(sslproto.SSLProtocol, asyncio.BufferedProtocol), _changed(
        "SSLProtocol is no longer an asyncio.BufferedProtocol")


def test_constructor_creates_the_app_transport():
    loop = asyncio.new_event_loop()
    try:
        proto = adapter.make_ssl_protocol(loop, asyncio.Protocol(), ssl.create_default_context(), None,
                                          server_hostname="localhost")
        assert hasattr(proto, "_app_transport"), _changed("SSLProtocol has no _app_transport attribute")
        transport = adapter.app_transport(proto)
        assert isinstance(transport, asyncio.Transport), _changed(
            f"SSLProtocol._app_transport is {type(transport)!r}, not an asyncio.Transport")
        assert adapter.is_app_transport(transport)
        missing = [n for n in adapter.APP_TRANSPORT_API if not hasattr(transport, n)]
        assert not missing, _changed(f"the app transport lost {missing}")
        assert transport._protocol_paused is False, _changed("app transport _protocol_paused is not a bool")
        assert transport.get_extra_info("sslcontext") is not None, _changed(
            "get_extra_info('sslcontext') is None before the handshake")
        transport.close()
    finally:
        loop.close()


def test_app_transport_is_marked_for_start_tls_and_sendfile_fallback():
    cls = adapter.APP_TRANSPORT_TYPE
    assert getattr(cls, "_start_tls_compatible", False), _changed(
        "_SSLProtocolTransport._start_tls_compatible is gone (TLS-in-TLS start_tls relies on it)")
    mode = getattr(cls, "_sendfile_compatible", None)
    assert getattr(mode, "name", None) == "FALLBACK", _changed(
        f"_SSLProtocolTransport._sendfile_compatible is {mode!r}, expected the FALLBACK mode")


def test_sslprotocol_keeps_the_effective_handshake_timeout():
    loop = asyncio.new_event_loop()
    try:
        ctx = ssl.create_default_context()
        given = adapter.make_ssl_protocol(loop, asyncio.Protocol(), ctx, None, server_hostname="localhost",
                                          ssl_handshake_timeout=7.5)
        default = adapter.make_ssl_protocol(loop, asyncio.Protocol(), ctx, None, server_hostname="localhost")
        try:
            assert adapter.handshake_timeout(given) == 7.5
            assert adapter.handshake_timeout(default) > 0
        except (AttributeError, TypeError) as exc:
            pytest.fail(_changed(f"SSLProtocol._ssl_handshake_timeout is not the effective timeout ({exc!r})"))
        adapter.app_transport(given).close()
        adapter.app_transport(default).close()
    finally:
        loop.close()


@pytest.mark.parametrize("timeout_name", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_sslprotocol_validates_timeouts(timeout_name):
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="positive"):
            adapter.make_ssl_protocol(loop, asyncio.Protocol(), ssl.create_default_context(), None,
                                      server_hostname="localhost", **{timeout_name: 0})
    finally:
        loop.close()


def test_sslprotocol_uses_only_the_raw_transport_api_we_document():
    """Drive a handshake start, an abort and a fatal error on a recording transport."""
    loop = asyncio.new_event_loop()
    try:
        ctx = ssl.create_default_context()
        used: set[str] = set()
        for action in ("close", "abort", "fatal", "lost"):
            raw = _RecordingTransport()
            waiter = loop.create_future()
            proto = adapter.make_ssl_protocol(loop, asyncio.Protocol(), ctx, waiter,
                                              server_hostname="localhost", ssl_handshake_timeout=5)
            proto.connection_made(raw)
            # A ClientHello was produced and written.
            assert raw.written, _changed("SSLProtocol.connection_made did not write the ClientHello")
            app = adapter.app_transport(proto)
            if action == "close":
                app.close()
            elif action == "abort":
                app.abort()
            elif action == "fatal":
                alert = b"\x15\x03\x03\x00\x02\x02\x28"  # the peer's fatal "handshake_failure" alert
                buf = proto.get_buffer(len(alert))
                buf[:len(alert)] = alert
                proto.buffer_updated(len(alert))
            else:
                proto.connection_lost(ConnectionResetError())
            loop.run_until_complete(asyncio.sleep(0))
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: the failure is the point of the exercise
            used |= raw.used
        assert "_force_close" in used or "abort" in used, _changed(
            "SSLProtocol no longer closes the raw transport through abort()/_force_close()")
        unexpected = sorted(used - set(adapter.RAW_TRANSPORT_API) - {"_extra"})
        assert not unexpected, _changed(f"SSLProtocol now uses {unexpected} on the raw transport; add them to "
                                        f"RAW_TRANSPORT_API and check multiloop's socket transport has them")
    finally:
        loop.close()


def test_multiloop_socket_transport_offers_the_raw_transport_api():
    transport_module = pytest.importorskip("multiloop.net.transport")
    cls = transport_module.SocketTransport
    missing = [n for n in adapter.RAW_TRANSPORT_API if not hasattr(cls, n)]
    assert not missing, f"multiloop's SocketTransport lacks {missing}, which asyncio.sslproto calls on {PY}"


def test_buffered_stream_data_reaches_the_tls_protocols_incoming_bio():
    # Relies on StreamReaderProtocol._stream_reader, StreamReader._buffer (a bytearray) and
    # SSLProtocol._incoming (a MemoryBIO).
    loop = asyncio.new_event_loop()
    try:
        reader = asyncio.StreamReader(loop=loop)
        app = asyncio.StreamReaderProtocol(reader, lambda r, w: None, loop=loop)
        assert getattr(app, "_stream_reader", None) is reader, _changed("StreamReaderProtocol._stream_reader")
        assert isinstance(getattr(reader, "_buffer", None), bytearray), _changed("StreamReader._buffer")
        reader.feed_data(b"\x16\x03\x01hello")
        proto = adapter.make_ssl_protocol(loop, app, ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),
                                          None, server_side=True)
        assert isinstance(getattr(proto, "_incoming", None), ssl.MemoryBIO), _changed("SSLProtocol._incoming")
        adapter.move_buffered_stream_data(proto, app)
        assert reader._buffer == b"" and proto._incoming.read() == b"\x16\x03\x01hello"
    finally:
        loop.close()
