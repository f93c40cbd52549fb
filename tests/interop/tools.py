"""Checks by implementations we did not write (OpenSSL CLI, BouncyCastle, pyHanko), shared by the library-level
interop tests (tests/interop) and the daemon-level ones (tests/integration/test_daemon_interop.py).

OpenSSL 3.0 computes SM2's Z with an empty user ID unless told ``distid``; only ``pkeyutl`` (``-pkeyopt``) and
``verify`` (``-vfyopt``) take one, so SM2 signatures are checked there, and ``cms``/``ts`` check the rest.
"""

from __future__ import annotations

import base64
import io
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import require_tool
from tests.interop import bouncycastle

DISTID = "distid:1234567812345678"
SEAL_OK = "OK seal.maker_signature"
SIG_OK = "OK signature.signer_signature seal.maker_signature"
# SubjectPublicKeyInfo prefix of an SM2 point: id-ecPublicKey, sm2p256v1, BIT STRING of 65 bytes
_SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


def openssl(*args: str, input_bytes: bytes | None = None) -> bytes:
    """stdout of ``openssl args``; fails the test with OpenSSL's message when it exits non-zero."""
    exe = require_tool("openssl")
    proc = subprocess.run([exe, *args], input=input_bytes, capture_output=True, timeout=60)
    if proc.returncode:
        raise AssertionError(f"openssl {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def run_openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``openssl args`` whatever its exit status (for checks that must fail)."""
    return subprocess.run([require_tool("openssl"), *args], capture_output=True, check=False, timeout=60)


def openssl_ts_verify(tmp_path: Path, reply: bytes, data: bytes, tsa_pem: Path) -> None:
    """``openssl ts -verify`` of a TimeStampResp to the query ``tmp_path/q.tsq`` over ``data`` (in ``tmp_path/data``),
    by query file and by data, with the TSA certificate as the trust anchor (-partial_chain); other data must fail."""
    (tmp_path / "r.tsr").write_bytes(reply)
    trust = ["-CAfile", str(tsa_pem), "-untrusted", str(tsa_pem), "-partial_chain"]
    for how in (["-queryfile", str(tmp_path / "q.tsq")], ["-data", str(tmp_path / "data")]):
        out = openssl("ts", "-verify", *how, "-in", str(tmp_path / "r.tsr"), *trust)
        assert b"Verification: OK" in out, out
    (tmp_path / "other").write_bytes(data + b"!")
    assert run_openssl("ts", "-verify", "-data", str(tmp_path / "other"), "-in", str(tmp_path / "r.tsr"),
                       *trust).returncode != 0


def sm2_verify_args(public_pem: Path, message: Path, signature: Path, distid: str = DISTID) -> list[str]:
    """``openssl pkeyutl`` arguments that check an SM2 (SM3, Z with ``distid``) DER signature over ``message``."""
    return ["pkeyutl", "-verify", "-pubin", "-inkey", str(public_pem), "-rawin", "-digest", "sm3",
            "-pkeyopt", distid, "-in", str(message), "-sigfile", str(signature)]


def sm2_jws_verify_args(tmp_path: Path, token: str, public_pem: Path) -> list[str]:
    """Write an SM2 JWS's signing input and its r||s signature as DER; the pkeyutl arguments that check them."""
    from trustsvc.algorithms.sm2 import rs_to_der

    h, p, s = token.split(".")
    rs = base64.urlsafe_b64decode(s + "==")
    assert len(rs) == 64
    (tmp_path / "input").write_bytes(f"{h}.{p}".encode("ascii"))
    (tmp_path / "sig.der").write_bytes(rs_to_der(rs))
    return sm2_verify_args(public_pem, tmp_path / "input", tmp_path / "sig.der")


def sm2_jwk_to_pem(jwk: dict[str, str]) -> bytes:
    """PEM SubjectPublicKeyInfo of a published SM2 JWK (crv "SM2"), built from x and y alone."""
    assert jwk["kty"] == "EC" and jwk["crv"] == "SM2", jwk

    def coord(name: str) -> bytes:
        return base64.urlsafe_b64decode(jwk[name] + "=" * (-len(jwk[name]) % 4))

    der = _SM2_SPKI_PREFIX + b"\x04" + coord("x") + coord("y")
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n").encode("ascii")


def openssl_cms_verify(tmp_path: Path, cms_der: bytes, content: bytes, ca_pem: Path, *, sm2: bool,
                       detached: bool) -> bytes:
    """Check a CMS SignedData with the OpenSSL CLI; returns the content OpenSSL took out of it.

    ``cms -verify`` checks the signed content (the messageDigest attribute) and, for ECDSA/RSA, the signature;
    the signer's chain to ``ca_pem`` (an SM2 CA) is checked by ``verify -vfyopt distid``; for SM2 the signature
    over the signed attributes is checked by ``pkeyutl`` with the distid.
    """
    (tmp_path / "cms.der").write_bytes(cms_der)
    (tmp_path / "content.bin").write_bytes(content)
    args = ["cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "cms.der"), "-noverify",
            "-signer", str(tmp_path / "signer.pem"), "-out", str(tmp_path / "out.bin")]
    if detached:
        args += ["-content", str(tmp_path / "content.bin")]
    if sm2:
        args.append("-no_attr_verify")  # OpenSSL's cms cannot be given the SM2 ID: pkeyutl checks it below
    openssl(*args)
    out = openssl("verify", "-vfyopt", DISTID, "-CAfile", str(ca_pem), str(tmp_path / "signer.pem"))
    assert out.strip().endswith(b": OK"), out
    if sm2:
        from asn1crypto import cms

        signer_info = cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]
        attrs = signer_info["signed_attrs"]
        assert len(attrs) > 0, "SM2 CMS without signed attributes"
        (tmp_path / "attrs.der").write_bytes(b"\x31" + attrs.dump()[1:])  # signed over as SET OF, not [0]
        (tmp_path / "attrs.sig").write_bytes(signer_info["signature"].native)
        (tmp_path / "signer.pub.pem").write_bytes(
            openssl("x509", "-in", str(tmp_path / "signer.pem"), "-pubkey", "-noout"))
        out = openssl(*sm2_verify_args(tmp_path / "signer.pub.pem", tmp_path / "attrs.der", tmp_path / "attrs.sig"))
        assert b"Signature Verified Successfully" in out, out
    return (tmp_path / "out.bin").read_bytes()


def seal_check(tmp_path: Path, items: Sequence[tuple[str, bytes]]) -> list[str]:
    """BouncyCastle's verdict (tests/interop/java/SealCheck.java) on each (kind, DER), one JVM for all."""
    args = []
    for i, (kind, der) in enumerate(items):
        path = tmp_path / f"{i}.der"
        path.write_bytes(der)
        args += [kind, str(path)]
    proc = bouncycastle.run("SealCheck", *args)
    assert proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(items), proc.stdout
    return lines


def flip_signature_value(der: bytes) -> bytes:
    """Flip one bit in the middle of the trailing BIT STRING (the SM2 signature value) of a seal or signature."""
    i = der.rfind(b"\x03", 0, len(der) - 60)
    while i > 0:
        n = der[i + 1]
        if n < 0x80 and der[i + 2] == 0 and i + 2 + n == len(der):
            out = bytearray(der)
            out[i + 2 + n // 2] ^= 0x01
            return bytes(out)
        i = der.rfind(b"\x03", 0, i)
    raise AssertionError("no trailing BIT STRING")


def bc_verify_pdf_cms(tmp_path: Path, pdf: bytes, seal_out: Path | None = None) -> subprocess.CompletedProcess[str]:
    """BouncyCastle's check (PdfCmsTool) of a PDF's first signature: its CMS over the bytes its ByteRange covers;
    with ``seal_out``, BC also writes the registered seal the signature binds there ("SEAL n" or "NO SEAL")."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    from trustsvc.pdf.verify import signed_bytes

    require_tool("java")
    cms_der, covered = signed_bytes(PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0])
    (tmp_path / "c.der").write_bytes(cms_der)
    (tmp_path / "d.bin").write_bytes(covered)
    return bouncycastle.run("PdfCmsTool", "verify", str(tmp_path / "c.der"), str(tmp_path / "d.bin"),
                            *([str(seal_out)] if seal_out is not None else []))
