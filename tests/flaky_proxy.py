"""A flaky network in front of an S3 endpoint: an HTTP proxy on 127.0.0.1 that passes each request on to the
target and, for a seeded share of them, answers 503 SlowDown, 500 InternalError, resets the connection before
answering, or closes it without an answer. Run as its own process (the tests start it and end it by its PID):

    python -m tests.flaky_proxy --target http://127.0.0.1:5000 --port 5001 --rate 0.1 --seed 7 --log faults.txt

Each injected fault is one line in `--log` (kind, method, path), so a test can show that faults happened. Requests
to `/moto-api/` (the target's own readiness page) are passed on untouched. `--kinds` limits the faults injected;
`lost` (the request reaches the target, the answer is lost) is off unless named.
"""

from __future__ import annotations

import argparse
import http.client
import random
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error. Please try again.</Message></Error>")
DEFAULT_KINDS = ("503", "500", "reset", "drop")


class Faults:
    def __init__(self, rate: float, seed: int, kinds: tuple[str, ...], log: str | None) -> None:
        self.rate, self.kinds, self.log = rate, kinds, log
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def draw(self, method: str, path: str) -> str | None:
        with self.lock:
            if path.startswith("/moto-api") or self.random.random() >= self.rate:
                return None
            kind = self.random.choice(self.kinds)
            if self.log:
                with open(self.log, "a") as f:
                    f.write(f"{kind} {method} {path}\n")
            return kind


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target: tuple[str, int] = ("127.0.0.1", 0)
    faults: Faults

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reset(self) -> None:
        """Close with a TCP RST: the client sees 'connection reset by peer'."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _error(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body = self._body()
        kind = self.faults.draw(self.command, self.path)
        if kind == "503":
            return self._error(503, SLOW_DOWN)
        if kind == "500":
            return self._error(500, INTERNAL)
        if kind == "reset":
            return self._reset()
        if kind == "drop":
            self.close_connection = True
            return self.connection.shutdown(socket.SHUT_RDWR)
        upstream = http.client.HTTPConnection(*self.target, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        if kind == "lost":  # done upstream, the answer never arrives
            return self._reset()
        self.send_response(response.status, response.reason)
        for k, v in response.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length if length is not None else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS))
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    target = urlsplit(args.target)
    Handler.target = (target.hostname or "127.0.0.1", target.port or 80)
    Handler.faults = Faults(args.rate, args.seed, tuple(args.kinds.split(",")), args.log)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
