"""Mutual recognition: another issuer's tokens verified through its JWKS from a file or a URL."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustsvc.algorithms import SoftwareSigner
from trustsvc.token import IssuerConfig, KeySet, RemoteJwks, TokenInvalid, TokenIssuer, TokenVerifier, trust
from trustsvc.token.errors import TokenConfigError

PROVINCE = "https://idp.province.example"


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"{}"
    hits = 0

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"body": b"{}", "hits": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _issuer(spec: str = "sm2") -> TokenIssuer:
    return TokenIssuer(SoftwareSigner.generate(spec), PROVINCE, audience="city")


def _jwks(*issuers: TokenIssuer) -> bytes:
    return json.dumps(KeySet.of(*((i.kid, i.signer.public_key) for i in issuers)).jwks()).encode()


def test_jwks_from_file(tmp_path: Path) -> None:
    a = _issuer()
    path = tmp_path / "jwks.json"
    path.write_bytes(_jwks(a))
    trusted = IssuerConfig.from_dict({"issuer": PROVINCE, "jwks": str(path), "algorithms": ["SM2"]}).trusted()
    verifier = TokenVerifier([trusted], audience="city")
    assert verifier.verify(a.issue("u")).claims["iss"] == PROVINCE


def test_jwks_from_url_refresh_on_unknown_kid(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    a, b = _issuer(), _issuer("ec-p256")
    handler.body = _jwks(a)
    clock = [0.0]
    source = RemoteJwks(url, ttl=300, min_refresh=10, clock=lambda: clock[0])
    from trustsvc.token import AlgPolicy, TrustedIssuer

    verifier = TokenVerifier([TrustedIssuer(PROVINCE, source, AlgPolicy.of(["SM2", "ES256"]))], audience="city")
    assert verifier.verify(a.issue("u"))
    assert handler.hits == 1
    assert verifier.verify(a.issue("u")) and handler.hits == 1  # cached

    handler.body = _jwks(a, b)  # the province rotates in a new key
    clock[0] = 5.0
    with pytest.raises(TokenInvalid) as info:  # refresh allowed only once per 10 s
        verifier.verify(b.issue("u"))
    assert info.value.reason == "UNKNOWN_KID" and handler.hits == 1
    clock[0] = 11.0
    assert verifier.verify(b.issue("u")) and handler.hits == 2
    for _ in range(5):  # unknown kids cannot hammer the issuer
        with pytest.raises(TokenInvalid) as info:
            verifier.verify(_issuer().issue("u"))
        assert info.value.reason == "UNKNOWN_KID"
    assert handler.hits == 2

    handler.body = b"not json"  # a broken refresh keeps the last good keys
    clock[0] = 400.0
    assert verifier.verify(a.issue("u")) and handler.hits == 3


def test_a_stale_set_serves_while_another_caller_refreshes(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    a = _issuer()
    handler.body = _jwks(a)
    clock = [0.0]
    source = RemoteJwks(url, ttl=300, min_refresh=10, clock=lambda: clock[0])
    assert source.get(a.kid) is not None and handler.hits == 1
    clock[0] = 400.0  # stale
    with source._fetch_lock:  # another caller is fetching (held here: a get that waited would never return)
        assert source.get(a.kid) is not None
    assert handler.hits == 1
    assert source.get(a.kid) is not None and handler.hits == 2  # now this caller refreshes


def test_with_no_keys_a_failed_fetch_is_not_retried_at_once(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.body = b"down"
    clock = [0.0]
    source = RemoteJwks(url, ttl=300, min_refresh=10, clock=lambda: clock[0])
    for expected_hits in (1, 1, 1):  # a flood of tokens of an unreachable issuer: one fetch
        with pytest.raises(TokenInvalid) as info:
            source.get("k")
        assert info.value.reason == "JWKS_UNAVAILABLE" and handler.hits == expected_hits
    a = _issuer()
    handler.body = _jwks(a)
    clock[0] = 10.0
    assert source.get(a.kid) is not None and handler.hits == 2


def test_jwks_size_bound(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.body = b'{"keys": [' + b'{"kty":"EC"},' * 10000 + b'{}]}'
    with pytest.raises(TokenInvalid) as info:
        RemoteJwks(url, max_bytes=4096).get("k")
    assert info.value.reason == "JWKS_UNAVAILABLE"


@pytest.mark.parametrize(("target", "followed"), [("/jwks.json", True), ("http://192.0.2.1/jwks.json", False),
                                                  ("file:///etc/passwd", False)])
def test_a_redirect_goes_only_where_the_source_could(server: tuple[str, type[_Handler]], target: str,
                                                     followed: bool) -> None:
    url, handler = server
    a = _issuer()
    handler.body = _jwks(a)

    class Redirect(handler):  # type: ignore[valid-type,misc]
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/old":
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                super().do_GET()

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            old = f"http://127.0.0.1:{httpd.server_address[1]}/old"
            source = RemoteJwks(old, timeout=2)
            if followed:
                assert source.get(a.kid) is not None
            else:
                with pytest.raises(TokenInvalid) as info:
                    source.get(a.kid)
                assert info.value.reason == "JWKS_UNAVAILABLE"
                with pytest.raises(OSError, match="refused: not https|is not allowed"):  # before any connection to it
                    trust._OPENER.open(old, timeout=2)
        finally:
            httpd.shutdown()


def test_source_schemes() -> None:
    with pytest.raises(TokenConfigError):
        RemoteJwks("http://idp.example/jwks.json")  # plain http only on loopback
    with pytest.raises(TokenConfigError):
        RemoteJwks("ftp://idp.example/jwks.json")
    RemoteJwks("https://idp.example/jwks.json")
