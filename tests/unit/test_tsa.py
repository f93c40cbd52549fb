"""RFC 3161: local authority, requests, HTTP client/server, verification, pyHanko adapter."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import socket

import pytest
from asn1crypto import cms, tsp

from tests.unit.test_cms_pki import make_pki
from trustsvc.errors import Conflict, InvalidInput
from trustsvc.tsa import (
    CounterSerial,
    HttpTsaClient,
    LocalTsa,
    TimestampError,
    TsaUnavailable,
    authority,
    check_response,
    make_request,
    parse_response,
    serve_http,
    timestamper_for,
    verify_timestamp_token,
)

UTC = dt.UTC


@pytest.fixture(scope="module", params=["sm2", "ec-p256"])
def tsa_pki(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return make_pki(request.param, tsa=True)


@pytest.fixture(scope="module")
def tsa(tsa_pki) -> LocalTsa:  # type: ignore[no-untyped-def]
    return LocalTsa(tsa_pki.signer, policy_oid="1.2.3.4.5", serial_source=CounterSerial(100))


@pytest.mark.parametrize("hash_alg", ["sm3", "sha256"])
def test_request_response_roundtrip(tsa, tsa_pki, hash_alg: str) -> None:  # type: ignore[no-untyped-def]
    req = make_request(b"document", hash_alg=hash_alg)
    token = check_response(req, tsa.respond(req.der), trust_anchors=[tsa_pki.root])
    result = verify_timestamp_token(token, b"document", trust_anchors=[tsa_pki.root])
    assert result.ok, result.to_dict()
    assert result.nonce == req.nonce and result.policy == "1.2.3.4.5"
    assert result.hash_algorithm == hash_alg and (result.serial_number or 0) >= 100
    assert result.gen_time is not None and abs((result.gen_time - dt.datetime.now(UTC)).total_seconds()) < 300
    assert {c.name for c in result.all_checks} >= {"imprint", "signature", "eku", "gen-time", "chain"}
    info = cms.ContentInfo.load(token)
    assert info["content"]["encap_content_info"]["content_type"].native == "tst_info"
    tst = info["content"]["encap_content_info"]["content"].parsed
    assert tst["accuracy"]["seconds"].native == 1


def test_imprint_mismatch(tsa) -> None:  # type: ignore[no-untyped-def]
    token = tsa.timestamp(b"a", hash_alg="sm3")
    result = verify_timestamp_token(token, b"b")
    assert not result.ok and result.reason == "IMPRINT_MISMATCH"
    assert verify_timestamp_token(token, digest=hashlib.new("sm3", b"a").digest()).ok


def test_cert_req_false_has_no_certificates(tsa, tsa_pki) -> None:  # type: ignore[no-untyped-def]
    req = make_request(b"x", cert_req=False)
    status, token, _ = parse_response(tsa.respond(req.der))
    assert status == "granted" and token is not None
    assert cms.ContentInfo.load(token)["content"]["certificates"].native is None
    assert verify_timestamp_token(token, b"x", extra_certificates=[tsa_pki.leaf]).ok


@pytest.mark.parametrize("mutate, fail_info", [
    (lambda r: r.__setitem__("version", 2), "bad_request"),
    (lambda r: r["message_imprint"].__setitem__("hash_algorithm", {"algorithm": "md5"}), "bad_alg"),
    (lambda r: r["message_imprint"].__setitem__("hashed_message", b"\x00" * 5), "bad_data_format"),
    (lambda r: r.__setitem__("req_policy", "1.9.9.9"), "unaccepted_policy"),
])
def test_rejections(tsa, mutate, fail_info: str) -> None:  # type: ignore[no-untyped-def]
    req = tsp.TimeStampReq.load(make_request(b"x").der)
    mutate(req)
    resp = tsa.respond(req.dump(force=True))
    status, token, text = parse_response(resp)
    assert status == "rejection" and token is None and fail_info in text


def test_garbage_request_rejected(tsa) -> None:  # type: ignore[no-untyped-def]
    status, token, text = parse_response(tsa.respond(b"\x30\x00"))
    assert status == "rejection" and "bad_data_format" in text


def test_nonce_mismatch_detected(tsa) -> None:  # type: ignore[no-untyped-def]
    a, b = make_request(b"x", hash_alg="sha256"), make_request(b"x", hash_alg="sha256")
    with pytest.raises(TimestampError) as exc:
        check_response(a, tsa.respond(b.der))
    assert exc.value.reason == "NONCE_MISMATCH"


def test_tsa_refuses_cert_without_eku() -> None:
    pki = make_pki("sm2")
    with pytest.raises(InvalidInput) as exc:
        LocalTsa(pki.signer)
    assert exc.value.reason == "TSA_CERT_EKU"


def test_gen_time_outside_cert_validity(monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki("ec-p256", tsa=True)
    tsa = LocalTsa(pki.signer, clock=lambda: dt.datetime(2001, 1, 1, tzinfo=UTC))
    monkeypatch.setattr(authority, "check_in_force", lambda *args: None)  # a token our authority refuses to make
    result = verify_timestamp_token(tsa.timestamp(b"x", hash_alg="sha256"), b"x")
    assert result.check("gen-time").reason == "GEN_TIME_OUTSIDE_VALIDITY"


@pytest.mark.parametrize(("when", "reason"), [(dt.datetime(2001, 1, 1, tzinfo=UTC), "KEY_CERTIFICATE_NOT_YET_VALID"),
                                              (dt.datetime(2999, 1, 1, tzinfo=UTC), "KEY_CERTIFICATE_EXPIRED")])
def test_an_authority_outside_its_certificate_validity_stamps_nothing(when: dt.datetime, reason: str) -> None:
    pki = make_pki("sm2", tsa=True)
    tsa = LocalTsa(pki.signer, clock=lambda: when)  # a long-running authority whose certificate has run out
    with pytest.raises(Conflict) as exc:
        tsa.timestamp(b"x")
    assert exc.value.reason == reason
    status, token, text = parse_response(tsa.respond(make_request(b"x").der))  # over HTTP: an RFC 3161 refusal
    assert (status, token) == ("rejection", None) and "system_failure" in text and "not at" in text


def test_http_roundtrip_and_timestamper(tsa, tsa_pki) -> None:  # type: ignore[no-untyped-def]
    with serve_http(tsa) as server:
        client = HttpTsaClient(server.url, timeout=5, trust_anchors=[tsa_pki.root])
        token = client.timestamp(b"over http", hash_alg="sm3")
        assert verify_timestamp_token(token, b"over http").ok
        stamp = timestamper_for(client, "sha256")
        assert verify_timestamp_token(stamp(b"sig-bytes"), b"sig-bytes").hash_algorithm == "sha256"
    local = timestamper_for(tsa)
    result = verify_timestamp_token(local(b"signature value"), b"signature value")
    assert result.ok and result.hash_algorithm == "sm3"


def _raw_http(url: str, request: bytes, *, timeout: float = 30) -> bytes:
    """What the server sends back to ``request`` before it closes the connection."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize(("length", "status"), [("abc", b"400"), ("-5", b"400"), ("1e3", b"400"),
                                                ("9" * 30, b"400"), ("0", b"413"), ("65537", b"413"), (None, b"411")])
def test_http_bad_content_length_gets_an_http_error(tsa, length: str | None, status: bytes) -> None:  # type: ignore[no-untyped-def]
    header = b"" if length is None else f"Content-Length: {length}\r\n".encode()
    with serve_http(tsa) as server:
        reply = _raw_http(server.url, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\n"
                          + header + b"\r\n")
        assert reply.startswith(b"HTTP/1.0 " + status), reply[:80]
        token = HttpTsaClient(server.url, timeout=5).timestamp(b"still serving")  # the server lives on
        assert verify_timestamp_token(token, b"still serving").ok


def test_http_a_stalled_client_is_disconnected(tsa) -> None:  # type: ignore[no-untyped-def]
    with serve_http(tsa, timeout_s=0.2) as server:
        reply = _raw_http(server.url, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\n"
                          b"Content-Length: 100\r\n\r\n" + b"\x30")  # then nothing more
        assert reply == b""  # dropped without an answer; no thread waits on it


def test_http_unreachable() -> None:
    with pytest.raises(TsaUnavailable):
        HttpTsaClient("http://127.0.0.1:9/", timeout=2).timestamp(b"x")


def test_pyhanko_adapter(tsa) -> None:  # type: ignore[no-untyped-def]
    from trustsvc.tsa.pyhanko_adapter import LocalTsaTimeStamper

    stamper = LocalTsaTimeStamper(tsa)
    digest = hashlib.sha256(b"pdf bytes").digest()
    token = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    assert verify_timestamp_token(token.dump(), digest=digest).ok
