"""What the daemon returns over real mTLS gRPC, checked by implementations we did not write: the OpenSSL CLI
(CMS, SM2/ECDSA signatures, RFC 3161), PyJWT and jwcrypto (tokens, from GetJwks alone), BouncyCastle (seals,
SM2 PDF signatures) and pyHanko's validator (PDFs); and the other way, OpenSSL's signatures checked by the daemon.

The dev CA is SM2: OpenSSL 3.0 checks its certificates only with ``verify -vfyopt distid:...`` (tests/interop/
tools.py). PyJWT and jwcrypto do not know SM2 (docs/tokens.md): the daemon's own SM2 token is checked by OpenSSL
with the key taken from the JWKS, and ES256/EdDSA/RS256 tokens come from daemons whose token key is of that kind.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from tests.integration.test_daemon_fixtures import Running, start_daemon
from tests.interop.tools import (
    DISTID,
    SEAL_OK,
    SIG_OK,
    bc_verify_pdf_cms,
    flip_signature_value,
    openssl,
    openssl_cms_verify,
    openssl_ts_verify,
    run_openssl,
    seal_check,
    sm2_jwk_to_pem,
    sm2_jws_verify_args,
    sm2_verify_args,
)
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.client import Client, document_pb2, seal_pb2, timestamp_pb2, token_pb2
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pki.certificate import Certificate

pytestmark = pytest.mark.integration

DATA = "电子证照 e-licence bytes for the daemon interop checks\x00\x01".encode() * 20
ISSUER, AUD = "https://trustsvc.local", "portal"
# keys made (and certified by the home's SM2 dev CA) before the daemon starts: name -> (spec, CA profile)
KEYS = {"demo-tsa": ("ec-p256", "tsa"), "demo-es": ("ec-p256", "seal-holder"),
        "demo-rsa": ("rsa-2048", "seal-holder")}
JOSE = {"ES256": "ec-p256", "EdDSA": "ed25519", "RS256": "rsa-2048"}


def _prepare(home: Path, keys: dict[str, tuple[str, str]]) -> Path:
    """Keys in the home's keystore before the daemon opens it; returns a directory of outside signers:
    an SM2 and a P-256 private key (PEM) with certificates from the same dev CA the daemon trusts."""
    from trustsvc.keys.factory import open_keystore
    from trustsvc.server.embedded import ensure_key, open_sm2_ca

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    keystore = open_keystore("soft", home)
    ca = open_sm2_ca(home)
    for name, (spec, profile) in keys.items():
        ensure_key(keystore, ca, name, spec, profile)
    outside = home / "outside"
    outside.mkdir()
    for spec in ("sm2", "ec-p256"):
        issued = ca.issue("seal-holder", f"outside signer {spec}", key_type=spec, days=30)
        assert issued.private_key is not None
        (outside / f"{spec}.key.pem").write_bytes(private_key_to_pem(issued.private_key))
        (outside / f"{spec}.crt.pem").write_bytes(issued.certificate.to_pem())
    (outside / "ca.pem").write_bytes(ca.certificate.to_pem())
    return outside


@contextlib.contextmanager
def _daemon(home: Path, keys: dict[str, tuple[str, str]], **overrides: object) -> Iterator[Running]:
    """A daemon on ``home`` with ``keys`` made beforehand; stopped on leaving."""
    _prepare(home, keys)
    r = start_daemon(home, **overrides)
    try:
        yield r
    finally:
        r.daemon.stop(2)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # an ECDSA time-stamp authority: `openssl ts -verify` cannot check SM2 (no distid)
    with _daemon(tmp_path_factory.mktemp("daemon-interop") / "home", KEYS, tsa_key="demo-tsa") as r:
        yield r


@pytest.fixture(scope="module")
def ca_pem(running: Running, client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev CA root, as ExportCert gives it (the last of the chain)."""
    path = tmp_path_factory.mktemp("ca") / "root.pem"
    path.write_bytes(Certificate.load(client.export_cert("default").chain[-1]).to_pem())
    assert path.read_bytes() == (running.home / "outside" / "ca.pem").read_bytes()
    return path


# ------------------------------------------------------------------ SignatureService
@pytest.mark.parametrize("key", ["default", "demo-es"])
@pytest.mark.parametrize("detached", [False, True])
def test_sign_message_verified_by_openssl(client: Client, ca_pem: Path, tmp_path: Path, key: str,
                                          detached: bool) -> None:
    cms = client.sign_message(key, DATA, detached=detached).cms
    sm2 = key == "default"
    assert openssl_cms_verify(tmp_path, cms, DATA, ca_pem, sm2=sm2, detached=detached) == DATA
    if detached:  # OpenSSL does compare the content with the signed messageDigest
        with pytest.raises(AssertionError, match="openssl cms"):
            openssl_cms_verify(tmp_path, cms, DATA + b"!", ca_pem, sm2=sm2, detached=True)


@pytest.mark.parametrize("key,digest", [("default", "sm3"), ("demo-es", "sha256")])
def test_sign_data_verified_by_openssl(client: Client, ca_pem: Path, tmp_path: Path, key: str, digest: str) -> None:
    resp = client.sign_data(key, DATA)
    exported = client.export_cert(key)
    assert resp.certificate == exported.certificate
    (tmp_path / "cert.der").write_bytes(exported.certificate)
    openssl("x509", "-inform", "DER", "-in", str(tmp_path / "cert.der"), "-out", str(tmp_path / "cert.pem"))
    assert openssl("verify", "-vfyopt", DISTID, "-CAfile", str(ca_pem), str(tmp_path / "cert.pem")).strip() \
        .endswith(b": OK")
    (tmp_path / "pub.pem").write_bytes(openssl("x509", "-in", str(tmp_path / "cert.pem"), "-pubkey", "-noout"))
    (tmp_path / "data").write_bytes(DATA)
    (tmp_path / "sig").write_bytes(resp.signature)
    if digest == "sm3":
        args = sm2_verify_args(tmp_path / "pub.pem", tmp_path / "data", tmp_path / "sig")
    else:
        args = ["pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-rawin", "-digest", digest,
                "-in", str(tmp_path / "data"), "-sigfile", str(tmp_path / "sig")]
    assert b"Signature Verified Successfully" in openssl(*args)
    (tmp_path / "data").write_bytes(DATA + b"!")
    assert run_openssl(*args).returncode != 0


def test_openssl_sm2_signature_verified_by_daemon(running: Running, client: Client, tmp_path: Path) -> None:
    outside = running.home / "outside"
    (tmp_path / "data").write_bytes(DATA)
    sig = openssl("pkeyutl", "-sign", "-inkey", str(outside / "sm2.key.pem"), "-rawin", "-digest", "sm3",
                  "-pkeyopt", DISTID, "-in", str(tmp_path / "data"))
    cert = (outside / "sm2.crt.pem").read_bytes()
    ok = client.verify_signed_data(DATA, sig, certificate=cert)
    assert ok.valid, ok
    bad = client.verify_signed_data(DATA + b"!", sig, certificate=cert)
    assert not bad.valid and bad.reason


@pytest.mark.parametrize("detached", [False, True])
def test_openssl_cms_verified_by_daemon(running: Running, client: Client, tmp_path: Path, detached: bool) -> None:
    """OpenSSL 3.0 cannot sign SM2 CMS (it fails writing it): a P-256 signer certified by the daemon's CA."""
    outside = running.home / "outside"
    (tmp_path / "data").write_bytes(DATA)
    openssl("cms", "-sign", "-binary", "-md", "sha256", "-in", str(tmp_path / "data"),
            "-signer", str(outside / "ec-p256.crt.pem"), "-inkey", str(outside / "ec-p256.key.pem"),
            "-outform", "DER", "-out", str(tmp_path / "ossl.der"), *([] if detached else ["-nodetach"]))
    cms = (tmp_path / "ossl.der").read_bytes()
    res = client.verify_signed_message(cms, DATA if detached else b"")
    assert res.result.valid, res.result
    assert res.content == DATA or detached
    if detached:
        assert not client.verify_signed_message(cms, DATA + b"!").result.valid


# ------------------------------------------------------------------ TokenService
def _jwks(c: Client) -> dict[str, list[dict[str, str]]]:
    return json.loads(c.call(c.tokens.GetJwks, token_pb2.GetJwksRequest()).jwks_json)


def _issue(c: Client, key: str = "") -> str:
    return c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(
        subject="user-7", audience=[AUD], scopes=["licence.read"], ttl_seconds=300, key=key)).token


def test_sm2_token_verified_by_openssl_with_jwks_key(client: Client, tmp_path: Path) -> None:
    token = _issue(client)
    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == "SM2"
    jwk = next(k for k in _jwks(client)["keys"] if k["kid"] == header["kid"])
    (tmp_path / "pub.pem").write_bytes(sm2_jwk_to_pem(jwk))
    args = sm2_jws_verify_args(tmp_path, token, tmp_path / "pub.pem")
    assert b"Signature Verified Successfully" in openssl(*args)
    (tmp_path / "input").write_bytes((tmp_path / "input").read_bytes() + b"x")
    assert run_openssl(*args).returncode != 0


@pytest.fixture(scope="module", params=sorted(JOSE))
def jose(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Client]]:
    """(alg, client) of a daemon whose token key ``demo-token`` is of that algorithm (the JWKS lists that key
    only); ``demo-other`` is a key of the same kind outside the JWKS."""
    alg = request.param
    keys = {"demo-token": (JOSE[alg], "token-issuer"), "demo-other": (JOSE[alg], "token-issuer")}
    with _daemon(tmp_path_factory.mktemp(f"daemon-token-{alg}") / "home", keys, token_key="demo-token") as r, \
            r.client() as c:
        yield alg, c


def test_token_verified_by_pyjwt_and_jwcrypto_from_jwks(jose: tuple[str, Client]) -> None:
    alg, c = jose
    token = _issue(c)
    jwks = _jwks(c)
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in pyjwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
    claims = pyjwt.decode(token, key.key, algorithms=[alg], audience=AUD, issuer=ISSUER)
    assert claims["sub"] == "user-7" and claims["scope"] == "licence.read"
    verified = jc_jwt.JWT(jwt=token, key=jc_jwk.JWKSet.from_json(json.dumps(jwks)), algs=[alg],
                          check_claims={"iss": ISSUER, "aud": AUD, "exp": None})
    assert json.loads(verified.claims)["sub"] == "user-7"
    h, p, s = token.split(".")
    forged = f"{h}.{p[:-2]}{'A' if p[-2] != 'A' else 'B'}{p[-1]}.{s}"
    with pytest.raises(pyjwt.InvalidTokenError):
        pyjwt.decode(forged, key.key, algorithms=[alg], audience=AUD, issuer=ISSUER)


def test_no_token_under_a_published_kid_from_another_key(jose: tuple[str, Client]) -> None:
    """The daemon issues no token from a key outside its JWKS (NOT_A_TOKEN_KEY); a token that claims a
    published kid but is signed by another key of the same kind fails in PyJWT, jwcrypto and the daemon."""
    import time

    import grpc
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from jwcrypto.common import JWException

    from trustsvc.client import error_reason

    alg, c = jose
    with pytest.raises(grpc.RpcError) as err:
        _issue(c, key="demo-other")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error_reason(err.value) == "NOT_A_TOKEN_KEY"
    jwks = _jwks(c)
    published = jwks["keys"][0]
    stranger = {"ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
                "EdDSA": ed25519.Ed25519PrivateKey.generate,
                "RS256": lambda: rsa.generate_private_key(65537, 2048)}[alg]()
    now = int(time.time())
    forged = pyjwt.encode({"iss": ISSUER, "aud": AUD, "sub": "mallory", "iat": now, "exp": now + 300, "jti": "f1"},
                          stranger, algorithm=alg, headers={"kid": published["kid"]})
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(forged, pyjwt.PyJWK(published).key, algorithms=[alg], audience=AUD, issuer=ISSUER)
    with pytest.raises(JWException):
        jc_jwt.JWT(jwt=forged, key=jc_jwk.JWKSet.from_json(json.dumps(jwks)), algs=[alg],
                   check_claims={"iss": ISSUER, "aud": AUD, "exp": None})
    verdict = c.call(c.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=forged, audience=AUD)).result
    assert not verdict.valid and verdict.reason


# ------------------------------------------------------------------ TimeStampService
def test_timestamp_verified_by_openssl(client: Client, ca_pem: Path, tmp_path: Path) -> None:
    """``openssl ts -verify`` on the answer to an OpenSSL query. A token with certificates in it (the daemon puts
    them in whenever it is given data, or -cert) makes OpenSSL go on to the SM2 root, whose signature OpenSSL 3.0
    checks with an empty SM2 ID: those are checked as CMS by ``openssl cms -verify`` and their imprint read."""
    import hashlib

    from asn1crypto import tsp

    (tmp_path / "data").write_bytes(DATA)
    tsa_pem = tmp_path / "tsa.pem"
    tsa_pem.write_bytes(Certificate.load(client.export_cert("demo-tsa").certificate).to_pem())
    assert openssl("verify", "-vfyopt", DISTID, "-CAfile", str(ca_pem), "-purpose", "timestampsign",
                   str(tsa_pem)).strip().endswith(b": OK")
    openssl("ts", "-query", "-data", str(tmp_path / "data"), "-sha256", "-out", str(tmp_path / "q.tsq"))
    reply = client.call(client.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(
        timestamp_request=(tmp_path / "q.tsq").read_bytes())).timestamp_response
    openssl_ts_verify(tmp_path, reply, DATA, tsa_pem)  # the TSA certificate, its SM2 chain checked above, as anchor
    for hash_alg in ("", "sha256"):
        token = client.call(client.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(
            data=DATA, hash_algorithm=hash_alg)).timestamp_token
        (tmp_path / "token.der").write_bytes(token)
        openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "token.der"), "-noverify",
                "-certfile", str(tsa_pem), "-out", str(tmp_path / "tst.der"))
        imprint = tsp.TSTInfo.load((tmp_path / "tst.der").read_bytes())["message_imprint"]
        assert imprint["hashed_message"].native == hashlib.new(hash_alg or "sm3", DATA).digest()


# ------------------------------------------------------------------ SealService
def test_seals_and_seal_signatures_verified_by_bouncycastle(running: Running, client: Client,
                                                            tmp_path: Path) -> None:
    with running.client("admin") as admin:
        made = admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="互操作测试专用章", type=4,
                                                                          valid_days=30)).seal
    demo = client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest(state="active")).seals[0]
    signatures = [client.call(client.seals.SignWithSeal, seal_pb2.SignWithSealRequest(
        seal_id=seal.seal_id, data=DATA, property_info="/Doc_0/Signs/Sign_0/Signature.xml")).ses_signature
        for seal in (demo, made)]
    items = [("seal", demo.seal_der), ("seal", made.seal_der), ("signature", signatures[0]),
             ("signature", signatures[1]), ("signature", flip_signature_value(signatures[1])),
             ("seal", flip_signature_value(made.seal_der))]
    lines = seal_check(tmp_path, items)
    expected = [SEAL_OK, SEAL_OK, SIG_OK, SIG_OK, "FAIL signature.signer_signature", "FAIL seal.maker_signature"]
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(want), (lines, expected)


# ------------------------------------------------------------------ DocumentService
def _pyhanko_valid(pdf: bytes, ca_pem: Path) -> None:
    """pyHanko's validator (the SM2 root's own signature through trustsvc's pyHanko hook, as the pdf interop
    tests do; the document signature is pyHanko's own ECDSA/RSA/SM2 check)."""
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    status = validate_pdf_signature(sig, validation_context([Certificate.load(ca_pem.read_bytes()).der]))
    assert status.intact and status.valid and status.trusted, status.summary()


@pytest.mark.parametrize("key", ["demo-es", "demo-rsa"])
def test_sign_pdf_validated_by_pyhanko(client: Client, ca_pem: Path, key: str) -> None:
    opts = document_pb2.PdfSignOptions(key=key, reason="licence issued", location="Beijing")
    signed = client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=licence_pdf()),
                         timeout=60).pdf
    _pyhanko_valid(signed, ca_pem)
    out = io.BytesIO()
    pdf = licence_pdf(text="streamed e-licence")
    client.sign_pdf_stream(opts, [pdf[i:i + 4096] for i in range(0, len(pdf), 4096)], out, timeout=60)
    _pyhanko_valid(out.getvalue(), ca_pem)


def test_sm2_pdf_signature_verified_by_bouncycastle(client: Client, ca_pem: Path, tmp_path: Path) -> None:
    opts = document_pb2.PdfSignOptions(key="default", reason="licence issued")
    signed = client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=licence_pdf()),
                         timeout=60).pdf
    proc = bc_verify_pdf_cms(tmp_path, signed)
    assert proc.returncode == 0 and "VALID 1.2.156.10197.1.501" in proc.stdout, (proc.stdout, proc.stderr)
    _pyhanko_valid(signed, ca_pem)
