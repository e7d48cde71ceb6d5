"""A fault-injecting HTTP proxy in front of an S3 server (moto's), for the fault tests.

It listens on 127.0.0.1 only, forwards each request to the upstream server and, by a
seeded draw per request, answers some of them badly, the ways a real object store and
the network between do:

=============  ==================================================================
``slowdown``   ``503 SlowDown`` (S3's answer to a burst), without forwarding
``reset``      the connection is reset (TCP RST): before forwarding, or after the
               upstream server has done the request, so the client cannot know
``cut``        the response is sent with its full ``Content-Length`` and half
               its body, then the connection is closed
``delay``      the answer comes up to ``--max-delay`` seconds late (``--delay`` of them)
=============  ==================================================================

The draw for a request depends only on the seed, the method, the target (run ids left
out) and how many times that method and target were seen before, not on the order in
which concurrent clients arrive: the same requests meet the same faults with the same
``--seed``, so a failure can be replayed.  Every fault is
written to ``--log`` as a JSON line; ``--stats`` gets the counts (rewritten each second
and at exit).

It is bounded: it exits by itself after ``--max-seconds`` or ``--max-requests``.
``SIGUSR1`` makes the store stop answering (``--down refuse``: connections are refused;
``hang``: they are accepted and never answered); ``SIGUSR2`` brings it back.

Usage (the test fixtures start it; it prints its port on the first line)::

    python tests/faults/proxy.py --upstream http://127.0.0.1:5000 --seed 7 \\
        --slowdown 0.2 --reset 0.05 --cut 0.02 --delay 0.05 --max-delay 2
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                 b'<Message>Please reduce your request rate.</Message>'
                 b'<RequestId>faultproxy</RequestId></Error>')
HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class FaultMix:
    """How often each fault happens, as a fraction of requests."""

    slowdown: float = 0.20
    reset: float = 0.05
    cut: float = 0.02
    delay: float = 0.05
    max_delay: float = 2.0


@dataclass(frozen=True)
class Fault:
    kind: str | None          # slowdown, reset-before, reset-after, cut, or None
    delay: float


#: run ids (microseconds since the epoch) differ from one replay to the next: the draw
#: leaves them out of the target, so the same requests of a replay meet the same faults
_RUN_ID = re.compile(r"\d{13,}")


def draw(seed: int, method: str, target: str, seen: int, mix: FaultMix) -> Fault:
    """The fault for the ``seen``-th request of ``method target`` (0: the first)."""
    target = _RUN_ID.sub("RUN", target)
    digest = hashlib.blake2b(f"{seed}|{method}|{target}|{seen}".encode(), digest_size=24)
    a, b, c = (n / 2**64 for n in struct.unpack("<3Q", digest.digest()))
    delay = c * mix.max_delay if b < mix.delay else 0.0
    kind = None
    if a < mix.slowdown:
        kind = "slowdown"
    elif a < mix.slowdown + mix.reset:
        kind = "reset-before" if b < 0.5 else "reset-after"
    elif a < mix.slowdown + mix.reset + mix.cut:
        kind = "cut"
    return Fault(kind, delay)


class Proxy:
    def __init__(self, upstream: str, seed: int, mix: FaultMix, max_requests: int,
                 down_mode: str, log_path: str | None, stats_path: str | None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.seed = seed
        self.mix = mix
        self.max_requests = max_requests
        self.down_mode = down_mode
        self.log = open(log_path, "a") if log_path else None
        self.stats_path = stats_path
        self.seen: Counter[tuple[str, str]] = Counter()
        self.counts: Counter[str] = Counter()
        self.down = False
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[asyncio.StreamWriter] = set()
        self.finished = asyncio.Event()

    # -- one client connection, many requests ---------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while not self.finished.is_set():
                if self.down:
                    await self._hang_or_reset(writer)
                    return
                try:
                    head = await reader.readuntil(HEAD_END)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    return
                if not await self._one(head, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.discard(writer)
            if not writer.is_closing():
                writer.close()

    async def _one(self, head: bytes, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        """Handle one request; False when the connection is to end."""
        method, target, headers = _parse_request(head)
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # answered here, not forwarded
            await writer.drain()
        body = await _read_body(reader, headers, to_eof=False)
        n = self.seen[(method, target)]
        self.seen[(method, target)] += 1
        self.counts["requests"] += 1
        if self.counts["requests"] >= self.max_requests:
            self.finished.set()
        fault = draw(self.seed, method, target, n, self.mix)
        if fault.delay:
            self.counts["delayed"] += 1
            await asyncio.sleep(fault.delay)
        if fault.kind:
            self.counts[fault.kind] += 1
            self._note(method, target, n, fault)
        if self.down:
            await self._hang_or_reset(writer)
            return False
        if fault.kind == "slowdown":
            writer.write(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(SLOWDOWN_BODY) + SLOWDOWN_BODY)
            await writer.drain()
            return True
        if fault.kind == "reset-before":
            _reset(writer)
            return False
        try:
            response_head, response_body = await self._forward(method, head, body)
        except OSError:
            self.counts["upstream-errors"] += 1
            _reset(writer)
            return False
        self.counts["forwarded"] += 1
        if fault.kind == "reset-after":
            _reset(writer)
            return False
        if fault.kind == "cut" and len(response_body) > 1:
            writer.write(response_head + response_body[:len(response_body) // 2])
            await writer.drain()
            _reset(writer)
            return False
        writer.write(response_head + response_body)
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    async def _forward(self, method: str, head: bytes, body: bytes) -> tuple[bytes, bytes]:
        """The upstream server's answer: its head (keep-alive for our client) and body."""
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(_rewrite_head(head, drop={"connection", "expect"},
                                          add=b"Connection: close\r\n") + body)
            await up_writer.drain()
            response = await up_reader.readuntil(HEAD_END)
            status = int(response.split(b" ", 2)[1])
            _, _, up_headers = _parse_response(response)
            no_body = method == "HEAD" or status in (204, 304) or status < 200
            data = b"" if no_body else await _read_body(up_reader, up_headers, to_eof=True)
        finally:
            up_writer.close()
        if "content-length" not in up_headers and "transfer-encoding" not in up_headers \
                and not no_body:
            response = _rewrite_head(response, drop=set(),
                                     add=b"Content-Length: %d\r\n" % len(data))
        return _rewrite_head(response, drop={"connection"}, add=b""), data

    async def _hang_or_reset(self, writer: asyncio.StreamWriter) -> None:
        if self.down_mode == "hang":
            await self.finished.wait()
        _reset(writer)

    # -- the store going away and coming back --------------------------------------------

    def go_down(self) -> None:
        self.down = True
        self.counts["down"] += 1
        if self.down_mode == "refuse" and self.server is not None:
            self.server.close()  # no new connections: refused
            for writer in list(self.connections):
                _reset(writer)

    async def come_back(self, port: int) -> None:
        self.down = False
        if self.down_mode == "refuse":
            self.server = await asyncio.start_server(self.serve, "127.0.0.1", port,
                                                     reuse_address=True)

    def _note(self, method: str, target: str, seen: int, fault: Fault) -> None:
        if self.log is not None:
            self.log.write(json.dumps({"t": time.time(), "method": method, "target": target,
                                       "seen": seen, "fault": fault.kind,
                                       "delay": round(fault.delay, 3)}) + "\n")

    def write_stats(self) -> None:
        if self.log is not None:
            self.log.flush()
        if self.stats_path:
            tmp = f"{self.stats_path}.tmp"
            with open(tmp, "w") as f:
                json.dump(dict(self.counts, seed=self.seed), f)
            os.replace(tmp, self.stats_path)


# -- HTTP/1.1, as much of it as S3 clients use --------------------------------------------------


def _parse_request(head: bytes) -> tuple[str, str, dict[str, str]]:
    first, _, rest = head.partition(b"\r\n")
    method, target, _ = first.decode("latin-1").split(" ", 2)
    return method, target, _headers(rest)


def _parse_response(head: bytes) -> tuple[int, str, dict[str, str]]:
    first, _, rest = head.partition(b"\r\n")
    _, status, reason = (first.decode("latin-1").split(" ", 2) + [""])[:3]
    return int(status), reason, _headers(rest)


def _headers(block: bytes) -> dict[str, str]:
    found = {}
    for line in block.decode("latin-1").split("\r\n"):
        if ":" in line:
            name, _, value = line.partition(":")
            found[name.strip().lower()] = value.strip()
    return found


def _rewrite_head(head: bytes, drop: set[str], add: bytes) -> bytes:
    lines = head[:-len(HEAD_END)].split(b"\r\n")
    kept = [lines[0]] + [line for line in lines[1:]
                         if line.split(b":", 1)[0].strip().lower().decode() not in drop]
    return b"\r\n".join(kept) + b"\r\n" + add + b"\r\n"


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str],
                     to_eof: bool) -> bytes:
    """The raw body (chunked bodies kept chunked); ``to_eof``: a body without a length
    runs to the end of the connection (a response's), else there is none (a request's)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    raw += line
                    if line == b"\r\n":
                        return bytes(raw)
            raw += await reader.readexactly(size + 2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read() if to_eof else b""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a broken connection ends."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


# -- the process ----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    mix = FaultMix(args.slowdown, args.reset, args.cut, args.delay, args.max_delay)
    proxy = Proxy(args.upstream, args.seed, mix, args.max_requests, args.down, args.log,
                  args.stats)
    proxy.server = await asyncio.start_server(proxy.serve, "127.0.0.1", args.port,
                                              reuse_address=True)
    port = proxy.server.sockets[0].getsockname()[1]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, proxy.go_down)
    loop.add_signal_handler(signal.SIGUSR2,
                            lambda: loop.create_task(proxy.come_back(port)))
    loop.add_signal_handler(signal.SIGTERM, proxy.finished.set)
    deadline = time.monotonic() + args.max_seconds
    while not proxy.finished.is_set() and time.monotonic() < deadline:
        proxy.write_stats()
        try:
            await asyncio.wait_for(proxy.finished.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    proxy.finished.set()
    if proxy.server is not None:
        proxy.server.close()
    for writer in list(proxy.connections):
        _reset(writer)
    proxy.write_stats()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the S3 server, http://host:port")
    parser.add_argument("--port", type=int, default=0, help="where to listen (0: a free port)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slowdown", type=float, default=FaultMix.slowdown)
    parser.add_argument("--reset", type=float, default=FaultMix.reset)
    parser.add_argument("--cut", type=float, default=FaultMix.cut)
    parser.add_argument("--delay", type=float, default=FaultMix.delay,
                        help="fraction of requests delayed, each by up to --max-delay")
    parser.add_argument("--max-delay", type=float, default=FaultMix.max_delay)
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="exit after this long, whatever happens")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--down", choices=("refuse", "hang"), default="refuse",
                        help="what SIGUSR1 does: refuse connections, or accept and hang")
    parser.add_argument("--log", default=None, help="JSON lines, one per fault")
    parser.add_argument("--stats", default=None, help="a JSON file of the counts")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
