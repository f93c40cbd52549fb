"""RFC 3161 interop: our authority checked by OpenSSL (ECDSA) and BouncyCastle (SM2); OpenSSL's checked by ours."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.interop import bouncycastle
from tests.unit.test_cms_pki import make_pki
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.tsa import LocalTsa, parse_response, verify_timestamp_token

DATA = b"signature value bytes to be time-stamped" * 10


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True)


@pytest.fixture(scope="module")
def ec_tsa():  # type: ignore[no-untyped-def]
    pki = make_pki("ec-p256", tsa=True)
    return pki, LocalTsa(pki.signer, policy_oid="1.2.3.4.1")


def _files(tmp_path: Path, pki) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    paths = {"data": tmp_path / "data.bin", "root": tmp_path / "root.pem", "tsa": tmp_path / "tsa.pem",
             "key": tmp_path / "tsakey.pem"}
    paths["data"].write_bytes(DATA)
    paths["root"].write_bytes(pki.root.to_pem())
    paths["tsa"].write_bytes(pki.leaf.to_pem())
    paths["key"].write_bytes(private_key_to_pem(pki.signer._key))
    return paths


@pytest.mark.parametrize("digest_flag", ["-sha256", "-sha512"])
def test_openssl_query_answered_and_verified_by_openssl(tmp_path: Path, ec_tsa, digest_flag: str) -> None:  # type: ignore[no-untyped-def]
    openssl = require_tool("openssl")
    pki, tsa = ec_tsa
    f = _files(tmp_path, pki)
    query, reply = tmp_path / "req.tsq", tmp_path / "resp.tsr"
    proc = _run(openssl, "ts", "-query", "-data", str(f["data"]), digest_flag, "-cert", "-out", str(query))
    assert proc.returncode == 0, proc.stderr
    reply.write_bytes(tsa.respond(query.read_bytes()))
    for how in (["-data", str(f["data"])], ["-queryfile", str(query)]):
        proc = _run(openssl, "ts", "-verify", *how, "-in", str(reply), "-CAfile", str(f["root"]),
                    "-untrusted", str(f["tsa"]))
        assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr
    status, token, _ = parse_response(reply.read_bytes())
    assert status == "granted" and token is not None
    assert verify_timestamp_token(token, DATA, trust_anchors=[pki.root]).ok


def test_openssl_detects_other_data(tmp_path: Path, ec_tsa) -> None:  # type: ignore[no-untyped-def]
    openssl = require_tool("openssl")
    pki, tsa = ec_tsa
    f = _files(tmp_path, pki)
    reply = tmp_path / "resp.tsr"
    query = tmp_path / "req.tsq"
    _run(openssl, "ts", "-query", "-data", str(f["data"]), "-sha256", "-cert", "-out", str(query))
    reply.write_bytes(tsa.respond(query.read_bytes()))
    f["data"].write_bytes(DATA + b"x")
    proc = _run(openssl, "ts", "-verify", "-data", str(f["data"]), "-in", str(reply), "-CAfile", str(f["root"]))
    assert proc.returncode != 0


def test_sm2_token_verified_by_bouncycastle(tmp_path: Path) -> None:
    require_tool("java")
    pki = make_pki("sm2", tsa=True)
    tsa = LocalTsa(pki.signer)
    token = tsa.timestamp(DATA, hash_alg="sm3")
    (tmp_path / "token.der").write_bytes(token)
    proc = bouncycastle.run("CmsTool", "ts-verify", str(tmp_path / "token.der"))
    assert proc.returncode == 0 and proc.stdout.startswith("OK"), proc.stdout + proc.stderr
    _, oid, imprint, _gen = proc.stdout.split()
    assert oid == "1.2.156.10197.1.401" and bytes.fromhex(imprint) == hashlib.new("sm3", DATA).digest()


def test_openssl_tsa_reply_verified_by_ours(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    pki = make_pki("ec-p256", tsa=True)
    f = _files(tmp_path, pki)
    (tmp_path / "serial").write_text("01\n")
    conf = tmp_path / "tsa.cnf"
    conf.write_text(f"""
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {tmp_path}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/root.pem
signer_key = $dir/tsakey.pem
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
    query, reply = tmp_path / "req.tsq", tmp_path / "resp.tsr"
    proc = _run(openssl, "ts", "-query", "-data", str(f["data"]), "-sha256", "-cert", "-out", str(query))
    assert proc.returncode == 0, proc.stderr
    proc = _run(openssl, "ts", "-reply", "-config", str(conf), "-queryfile", str(query), "-out", str(reply))
    assert proc.returncode == 0, proc.stderr
    status, token, _ = parse_response(reply.read_bytes())
    assert status == "granted" and token is not None
    result = verify_timestamp_token(token, DATA, trust_anchors=[pki.root])
    assert result.ok, result.to_dict()
    assert result.policy == "1.2.3.4.1" and result.serial_number in (1, 2)
    assert not verify_timestamp_token(token, DATA + b"x").ok


def test_pyhanko_pades_bt_with_local_tsa() -> None:
    """pyHanko signs a PDF with our authority as its time stamper and validates the token as trusted."""
    import io

    from asn1crypto import keys, x509
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import PdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    from trustsvc.algorithms.encoding import private_key_to_pkcs8
    from trustsvc.tsa.pyhanko_adapter import LocalTsaTimeStamper

    signer_pki, tsa_pki = make_pki("ec-p256"), make_pki("ec-p256", tsa=True)
    writer = PdfFileWriter()
    writer.insert_page(generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Page"),
        generic.NameObject("/MediaBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 100, 100)])}))
    buf = io.BytesIO()
    writer.write(buf)
    buf.seek(0)
    cms_signer = signers.SimpleSigner(
        signing_cert=x509.Certificate.load(signer_pki.leaf.der),
        signing_key=keys.PrivateKeyInfo.load(private_key_to_pkcs8(signer_pki.signer._key)),
        cert_registry=SimpleCertificateStore.from_certs([x509.Certificate.load(signer_pki.root.der)]))
    out = signers.sign_pdf(IncrementalPdfFileWriter(buf), signers.PdfSignatureMetadata(field_name="Sig1"),
                           signer=cms_signer, timestamper=LocalTsaTimeStamper(LocalTsa(tsa_pki.signer)))
    sig = PdfFileReader(out).embedded_signatures[0]
    roots = [x509.Certificate.load(signer_pki.root.der), x509.Certificate.load(tsa_pki.root.der)]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=roots))
    assert status.bottom_line, status.summary()
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
    token = sig.signer_info["unsigned_attrs"][0]["values"][0].dump()
    assert verify_timestamp_token(token, trust_anchors=[tsa_pki.root]).ok
