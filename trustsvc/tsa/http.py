"""A small HTTP front for a LocalTsa (RFC 3161 §3.4), for tests, the demo and the CLI.

``serve_http(tsa, host='127.0.0.1', port=0) -> TsaHttpServer`` starts a threaded server in a
daemon thread; ``.url`` is where to POST application/timestamp-query; ``.close()`` stops it.
"""

from __future__ import annotations

import http.server
import threading

from trustsvc.tsa.authority import LocalTsa

MAX_REQUEST = 64 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    tsa: LocalTsa

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/timestamp-query":
            self._reply(415, b"expected application/timestamp-query", "text/plain")
            return
        if not 0 < length <= MAX_REQUEST:
            self._reply(413, b"bad request size", "text/plain")
            return
        body = self.rfile.read(length)
        self._reply(200, self.server.tsa.respond(body), "application/timestamp-reply")  # type: ignore[attr-defined]

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (quiet)
        return


class TsaHttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tsa: LocalTsa, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
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


def serve_http(tsa: LocalTsa, host: str = "127.0.0.1", port: int = 0) -> TsaHttpServer:
    """Serve ``tsa`` over HTTP in a background thread."""
    return TsaHttpServer(tsa, host, port).start()
