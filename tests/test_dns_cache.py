"""The numeric getaddrinfo cache (multiloop.dns): same answers as socket.getaddrinfo, bounded, never hiding an
error or a real lookup."""

from __future__ import annotations

import concurrent.futures
import itertools
import socket

import pytest

from multiloop import dns

HOSTS = ["127.0.0.1", "::1", "10.1.2.3", "2001:db8::7"]
PORTS = [None, 0, 80, "443", "8080"]
TYPES = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]
FAMILIES = [0, socket.AF_INET, socket.AF_INET6]
FLAGS = [0, socket.AI_PASSIVE, socket.AI_V4MAPPED, socket.AI_V4MAPPED | socket.AI_ALL]


def _stock(*args):
    try:
        return socket.getaddrinfo(*args)
    except (socket.gaierror, OSError) as exc:  # compared by type and text
        return (type(exc), str(exc))


@pytest.fixture(autouse=True)
def empty_cache():
    dns._cache.clear()
    yield
    dns._cache.clear()


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    def __init__(self):
        super().__init__(max_workers=1)
        self.calls = []

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append(args[:2])
        return super().submit(fn, *args, **kwargs)


def test_answers_equal_socket_getaddrinfo_first_and_cached():
    for args in itertools.product(HOSTS, PORTS, FAMILIES, TYPES, [0], FLAGS):
        if args[3] == socket.SOCK_RAW and args[1] not in (None, 0):
            continue  # a raw socket has no port: an error either way, checked below
        expected = _stock(*args)
        for _ in range(2):  # computed, then from the cache
            answer = dns.resolve_numeric(*args)
            if isinstance(expected, tuple):
                assert answer is None, args  # the executor will raise socket.getaddrinfo's own error
            else:
                assert answer == expected, args
    assert dns._cache  # the pure cases were stored


def test_each_call_gets_a_fresh_list():
    first = dns.resolve_numeric("127.0.0.1", 80, 0, socket.SOCK_STREAM, 0, 0)
    assert first is not None
    first.clear()
    again = dns.resolve_numeric("127.0.0.1", 80, 0, socket.SOCK_STREAM, 0, 0)
    assert again == socket.getaddrinfo("127.0.0.1", 80, 0, socket.SOCK_STREAM)
    assert again is not dns.resolve_numeric("127.0.0.1", 80, 0, socket.SOCK_STREAM, 0, 0)


def test_the_cache_is_bounded():
    for port in range(1000, 1000 + dns.CACHE_SIZE * 2 + 7):
        assert dns.resolve_numeric("127.0.0.1", port, 0, 0, 0, 0) == socket.getaddrinfo("127.0.0.1", port)
        assert len(dns._cache) <= dns.CACHE_SIZE
    assert dns._cache


@pytest.mark.parametrize("host, flags", [
    ("127.0.0.1", socket.AI_CANONNAME),
    ("127.0.0.1", getattr(socket, "AI_ADDRCONFIG", socket.AI_CANONNAME)),
    ("fe80::1%1", 0),  # a scope: as an interface name it would depend on the system's interfaces
    (None, socket.AI_PASSIVE),  # two addresses: the system's sort order applies
    (b"127.0.0.1", 0),
])
def test_answers_that_depend_on_the_system_are_not_cached(host, flags):
    answer = dns.resolve_numeric(host, 80, 0, socket.SOCK_STREAM, 0, flags)
    assert answer == socket.getaddrinfo(host, 80, 0, socket.SOCK_STREAM, 0, flags)
    assert not dns._cache


def test_names_go_to_the_executor_every_time(loop, run):
    executor = CountingExecutor()
    loop.set_default_executor(executor)

    async def main():
        for _ in range(2):
            assert await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
            assert await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM) == \
                socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)

    run(main())
    assert executor.calls == [("localhost", 80)] * 2  # the numeric host never reached it, cached or not
    assert not any("localhost" in key for key in dns._cache)


@pytest.mark.parametrize("args", [
    ("127.0.0.1", 8080.0, 0, 0, 0, 0),  # a float port equals a cached int port, and socket refuses it
    ("127.0.0.1", 8080, 2.0, 0, 0, 0),
    ("127.0.0.1", 8080, 0, 0, 0, 0.0),
    ("127.0.0.1", 8080, socket.AF_INET6, 0, 0, 0),  # an IPv4 address for an IPv6-only query
    ("127.0.0.1", 70000, 0, 0, 0, 0),
    ("127.0.0.1", -1, 0, 0, 0, 0),
    ("127.0.0.1", "http", 0, socket.SOCK_RAW, 0, 0),
    ("127.0.0.1", [80], 0, 0, 0, 0),  # unhashable
    (["127.0.0.1"], 80, 0, 0, 0, 0),
])
def test_bad_input_raises_what_socket_getaddrinfo_raises_even_after_a_good_answer_is_cached(loop, run, args):
    host, port, family, type_, proto, flags = args
    run(loop.getaddrinfo("127.0.0.1", 8080))  # cache the look-alike good query first
    run(loop.getaddrinfo("127.0.0.1", 8080, family=socket.AF_INET))
    try:
        expected: object = socket.getaddrinfo(*args)
    except Exception as exc:  # noqa: BLE001 - whatever socket raises, the loop must raise the same
        expected = (type(exc), str(exc))

    async def main():
        try:
            return await loop.getaddrinfo(host, port, family=family, type=type_, proto=proto, flags=flags)
        except Exception as exc:  # noqa: BLE001
            return (type(exc), str(exc))

    assert run(main()) == expected
