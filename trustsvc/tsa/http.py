"""A small HTTP front for a LocalTsa (RFC 3161 §3.4), for tests, the demo and the CLI.

``serve_http(tsa, host='127.0.0.1', port=0) -> TsaHttpServer`` starts a threaded server in a
daemon thread; ``.url`` is where to POST application/timestamp-query; ``.close()`` stops it.
A request is at most 64 KiB with a Content-Length (else 400, 411 or 413); a client that sends nothing
for ``timeout_s`` seconds is disconnected, so a stalled client does not hold a thread for ever.
"""

from __future__ import annotations

import http.server
import threading

from trustsvc.tsa.authority import LocalTsa

MAX_REQUEST = 64 * 1024
TIMEOUT_S = 30.0


class _Handler(http.server.BaseHTTPRequestHandler):
    tsa: LocalTsa

    def do_POST(self) -> None:  # noqa: N802
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/timestamp-query":
            self._reply(415, b"expected application/timestamp-query", "text/plain")
            return
        declared = self.headers.get("Content-Length")
        if declared is None:
            self._reply(411, b"Content-Length required", "text/plain")
            return
        if not (declared.isascii() and declared.isdigit() and len(declared) <= 9):
            self._reply(400, b"bad Content-Length", "text/plain")
            return
        length = int(declared)
        if not 0 < length <= MAX_REQUEST:
            self._reply(413, b"a time-stamp request is 1 byte to 64 KiB", "text/plain")
            return
        body = self.rfile.read(length)
        self._reply(200, self.server.tsa.respond(body), "application/timestamp-reply")  # type: ignore[attr-defined]

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        if code != 200:
            self.close_connection = True  # an unread body must not be taken for the next request
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (quiet)
        return


class TsaHttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tsa: LocalTsa, host: str, port: int, *, timeout_s: float = TIMEOUT_S) -> None:
        # the handler's timeout applies to every read on the connection's socket
        super().__init__((host, port), type("_TimedHandler", (_Handler,), {"timeout": timeout_s}))
        self.tsa = tsa
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/"

    def start(self) -> TsaHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="tsa-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> TsaHttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_http(tsa: LocalTsa, host: str = "127.0.0.1", port: int = 0, *, timeout_s: float = TIMEOUT_S) -> TsaHttpServer:
    """Serve ``tsa`` over HTTP in a background thread."""
    return TsaHttpServer(tsa, host, port, timeout_s=timeout_s).start()
