"""VerifySignedDataStream and VerifySignedMessageStream (GM/T 0029 Verify*Init/Update/Final) over mTLS:
signatures and detached CMS made by the daemon and by OpenSSL, verified from chunks; bad streams refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from tests.interop.tools import DISTID, openssl
from trustsvc.algorithms.encoding import load_public_key
from trustsvc.client import Client, error_reason, signature_pb2

pytestmark = pytest.mark.integration

DATA = bytes(range(256)) * 12_288  # 3 MiB
CHUNK = 65_536


def chunks(data: bytes = DATA) -> list[bytes]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]


def tampered(data: bytes = DATA) -> list[bytes]:
    parts = chunks(data)
    parts[len(parts) // 2] = b"!" + parts[len(parts) // 2][1:]
    return parts


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.bin"
    path.write_bytes(DATA)
    return path


def _refused(exc_info: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str | None]:
    return exc_info.value.code(), error_reason(exc_info.value)


# ------------------------------------------------------------------ data signatures
def test_daemon_signature_verified_from_chunks(client: Client) -> None:
    signed = client.sign_data_stream("default", chunks())
    for signer in ({"key": "default"}, {"certificate": signed.certificate}):
        ok = client.verify_signed_data_stream(chunks(), signed.signature, **signer)
        assert ok.valid, ok
        bad = client.verify_signed_data_stream(tampered(), signed.signature, **signer)
        assert not bad.valid and bad.reason == "INVALID_SIGNATURE" and bad.checks[0].name == "signature"
    assert client.verify_signed_data(DATA, signed.signature, key="default").valid  # the same as unary


@pytest.mark.parametrize("spec", ["sm2", "ec-p256", "rsa-2048", "ed25519"])
def test_openssl_signature_verified_from_chunks(client: Client, data_file: Path, tmp_path: Path, spec: str) -> None:
    genpkey = {"sm2": ["-algorithm", "SM2"], "ec-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
               "rsa-2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
               "ed25519": ["-algorithm", "ED25519"]}[spec]
    key = tmp_path / "key.pem"
    key.write_bytes(openssl("genpkey", *genpkey))
    public_pem = openssl("pkey", "-in", str(key), "-pubout")
    sign = {"sm2": ["pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", DISTID],
            "ec-p256": ["dgst", "-sha256", "-sign"], "rsa-2048": ["dgst", "-sha256", "-sign"],
            "ed25519": ["pkeyutl", "-sign", "-rawin"]}[spec]
    if sign[0] == "pkeyutl":
        signature = openssl(*sign, "-inkey", str(key), "-in", str(data_file))
    else:
        signature = openssl(*sign, str(key), str(data_file))
    ok = client.verify_signed_data_stream(chunks(), signature, public_key=public_pem)
    assert ok.valid, ok
    assert not client.verify_signed_data_stream(tampered(), signature, public_key=public_pem).valid


def test_ed25519_stream_above_the_limit_is_refused(tmp_path: Path) -> None:
    """Ed25519 has no digest to stream into: the daemon gathers the message, up to max_stream_bytes."""
    from trustsvc.algorithms.keypair import PrivateKey

    r = start_daemon(tmp_path / "home", max_stream_bytes=1 << 20)
    try:
        key = PrivateKey.generate("ed25519")
        signature = key.sign(key.public_key.default_algorithm(), DATA)
        with r.client() as c, pytest.raises(grpc.RpcError) as err:
            c.verify_signed_data_stream(chunks(), signature, public_key=key.public_key.to_pem())
        assert _refused(err) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "STREAM_TOO_LARGE")
        with r.client() as c:  # an SM2 stream of the same size needs no such limit
            signed = c.sign_data_stream("default", chunks())
            assert c.verify_signed_data_stream(chunks(), signed.signature, key="default").valid
    finally:
        r.daemon.stop(2)


def test_bad_data_streams_are_refused(client: Client) -> None:
    sp = signature_pb2
    signature = client.sign_data("default", b"x").signature
    cases = {
        "STREAM_INIT_MISSING": [sp.VerifySignedDataStreamRequest(chunk=b"x")],
        "STREAM_DATA_IN_INIT": [sp.VerifySignedDataStreamRequest(init=sp.VerifySignedDataRequest(
            data=b"x", signature=signature, key="default"))],
        "STREAM_OUT_OF_ORDER": [sp.VerifySignedDataStreamRequest(init=sp.VerifySignedDataRequest(
            signature=signature, key="default"))] * 2,
        "MISSING_FIELD": [sp.VerifySignedDataStreamRequest(init=sp.VerifySignedDataRequest(key="default"))],
    }
    for reason, messages in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            client.signature.VerifySignedDataStream(iter(messages), timeout=10)
        assert _refused(err) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert client.signature.VerifySignedDataStream(iter(cases["STREAM_OUT_OF_ORDER"][:1]), timeout=10) \
        .result.reason == "INVALID_SIGNATURE"  # an empty message is a message


# ------------------------------------------------------------------ detached CMS
def test_daemon_detached_cms_verified_from_chunks(client: Client) -> None:
    cms = client.sign_message_stream("default", chunks()).cms
    ok = client.verify_signed_message_stream(cms, chunks())
    assert ok.result.valid, ok.result
    assert ok.signer_certificate
    bad = client.verify_signed_message_stream(cms, tampered())
    assert not bad.result.valid and bad.result.reason == "MESSAGE_DIGEST_MISMATCH"


def test_openssl_detached_cms_verified_from_chunks(client: Client, running: Running, data_file: Path,
                                                   tmp_path: Path) -> None:
    """An ECDSA key made by OpenSSL, certified by the daemon's own CA; OpenSSL signs the detached CMS."""
    from trustsvc.pki.ca import DevelopmentCA

    key = tmp_path / "key.pem"
    key.write_bytes(openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"))
    public = load_public_key(openssl("pkey", "-in", str(key), "-pubout"))
    issued = DevelopmentCA.open(running.home / "ca").issue("seal-holder", "openssl signer", public_key=public)
    cert = tmp_path / "cert.pem"
    cert.write_bytes(issued.certificate.to_pem())
    cms = openssl("cms", "-sign", "-binary", "-md", "sha256", "-in", str(data_file), "-signer", str(cert),
                  "-inkey", str(key), "-outform", "DER")
    ok = client.verify_signed_message_stream(cms, chunks())
    assert ok.result.valid, ok.result
    assert not client.verify_signed_message_stream(cms, tampered()).result.valid


def test_bad_message_streams_are_refused(client: Client) -> None:
    attached = client.sign_message("default", b"carried inside").cms
    for first, reason in [(b"\x30\x03\x02\x01\x01", None), (attached, "CMS_NOT_DETACHED")]:
        with pytest.raises(grpc.RpcError) as err:
            client.verify_signed_message_stream(first, [b"x"])
        code, got = _refused(err)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and got and (reason is None or got == reason)
    sp = signature_pb2
    with pytest.raises(grpc.RpcError) as err:
        client.signature.VerifySignedMessageStream(iter([sp.VerifySignedMessageStreamRequest(chunk=b"x")]),
                                                   timeout=10)
    assert _refused(err) == (grpc.StatusCode.INVALID_ARGUMENT, "STREAM_INIT_MISSING")
