"""Every format signed with a key that lives in a PKCS#11 token, checked by code we did not write (issue #3).

SoftHSM2 (ECDSA P-256): a CA (root and issued certificate), CMS SignedData, an ES256 identity token and an
RFC 3161 time stamp, checked with the OpenSSL CLI, ``cryptography`` and PyJWT.
SM2 test token (hsm/testtoken, TEST ONLY emulator, default profile = host-computed e): an electronic seal and
a seal signature (maker, holder and time-stamp keys in the token), an SM2 CA and CMS, and an SM2 identity
token, checked with trustsvc's verifiers and BouncyCastle / the OpenSSL CLI.

The CA's signing key is an HSM key: certificates are built the way ``DevelopmentCA.issue`` builds them
(``CertificateBuilder`` with the CA's profiles, signed through a ``Signer``), since ``DevelopmentCA`` itself
only opens software keys from ``ca-key.pem``. Each issued certificate is stored beside its key in the token
(``set_certificate_chain``) and the signers come back from the store carrying it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography import x509 as cx509

from tests.conftest import require_tool
from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm, openssl_sm2_verify
from tests.integration.test_hsm_sm2 import open_store
from tests.integration.test_hsm_sm2 import testtoken as testtoken  # the session fixture (fixtures are found by name)
from tests.interop import bouncycastle
from tests.interop.test_pki_interop import DISTID
from tests.interop.test_seal_bc import SEAL_OK, SIG_OK, flip_signature_value
from tests.unit.test_seal_support import PNG
from trustsvc.algorithms import pem
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.sm2 import rs_to_der
from trustsvc.errors import TrustsvcError
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, Pkcs11Signer, pin_source
from trustsvc.pki.ca import DevelopmentCA, profile
from trustsvc.pki.certificate import Certificate, CertificateBuilder
from trustsvc.pki.cms import sign_cms, verify_cms
from trustsvc.seal.make import Picture, SealSpec, SealType, make_seal
from trustsvc.seal.report import Status, Verdict
from trustsvc.seal.sign import SealSigner
from trustsvc.seal.verify import verify as verify_seal_or_signature
from trustsvc.token import KeySet, TokenIssuer, TokenVerifier, TrustedIssuer
from trustsvc.tsa import LocalTsa, parse_response, verify_timestamp_token

pytestmark = [pytest.mark.integration, pytest.mark.interop]

UTC = dt.UTC
DATA = b"%PDF-1.7 pretend e-licence bytes signed in an HSM \x00\x01\x02" * 40
ISS, AUD = "https://idp.example", "app"


# helpers ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class HsmCa:
    """A root CA whose private key is a token key; issues like ``DevelopmentCA.issue`` with its profiles."""

    signer: Pkcs11Signer
    certificate: Certificate

    @classmethod
    def create(cls, store: Pkcs11KeyStore, name: str, spec: str, common_name: str) -> HsmCa:
        store.create(name, spec)
        signer = store.signer(name)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        root = (CertificateBuilder()
                .subject({"country_name": "CN", "organization_name": "trustsvc", "common_name": common_name})
                .public_key(signer.public_key).serial_number(1)
                .validity(now - dt.timedelta(minutes=5), now + dt.timedelta(days=365))
                .basic_constraints(True, 1).key_usage({"key_cert_sign", "crl_sign", "digital_signature"})
                .sign(signer))
        return cls(signer, root)

    def issue(self, public_key: PublicKey, common_name: str, profile_name: str) -> Certificate:
        prof = profile(profile_name)
        builder = (CertificateBuilder()
                   .subject({"country_name": "CN", "organization_name": "trustsvc", "common_name": common_name})
                   .public_key(public_key).basic_constraints(False).key_usage(set(prof.key_usage)))
        if prof.extended_key_usage:
            builder = builder.extension("extended_key_usage", list(prof.extended_key_usage), prof.eku_critical)
        return builder.sign(self.signer, self.certificate)


def token_key(store: Pkcs11KeyStore, ca: HsmCa, name: str, spec: str, profile_name: str) -> Pkcs11Signer:
    """A new token key with a certificate from ``ca`` stored beside it; the store's signer carries [leaf, root]."""
    info = store.create(name, spec)
    leaf = ca.issue(info.public_key, name, profile_name)
    store.set_certificate_chain(name, info.version, (leaf.der, ca.certificate.der))
    signer = store.signer(name)
    assert signer.certificate_chain == (leaf.der, ca.certificate.der)
    return signer


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)


def openssl_verify_certificate(tmp_path: Path, root: Certificate, leaf: Certificate | bytes,
                               *extra: str) -> subprocess.CompletedProcess[str]:
    """``openssl verify [extra] -CAfile root.pem leaf.pem`` (``leaf`` as a Certificate or DER)."""
    (tmp_path / "root.pem").write_bytes(root.to_pem())
    (tmp_path / "leaf.pem").write_bytes(leaf.to_pem() if isinstance(leaf, Certificate) else pem.encode(
        "CERTIFICATE", leaf))
    return run(require_tool("openssl"), "verify", *extra, "-CAfile", "root.pem", "leaf.pem", cwd=tmp_path)


# SoftHSM2, ECDSA P-256 ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11KeyStore]:
    """A fresh SoftHSM2 token (unique label: the module re-reads SOFTHSM2_CONF); SOFTHSM2_CONF restored after."""
    require_tool("softhsm2-util")
    label = "fmt-" + uuid.uuid4().hex[:8]
    conf = make_softhsm(tmp_path_factory.mktemp("softhsm-formats"), label)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))  # what hsm_helpers.use_conf does, undone at the end of the module
        store = Pkcs11KeyStore(SOFTHSM_MODULE, token_label=label, pin=pin_source(pin=PIN))
        try:
            yield store
        finally:
            store.close()


@pytest.fixture(scope="module")
def ec_ca(softhsm: Pkcs11KeyStore) -> HsmCa:
    return HsmCa.create(softhsm, "ec-root", "ec-p256", "trustsvc HSM root CA (P-256)")


def test_ca_certificate_signed_in_softhsm_verifies_with_openssl(softhsm: Pkcs11KeyStore, ec_ca: HsmCa,
                                                                tmp_path: Path) -> None:
    leaf_key = softhsm.create("ec-tls", "ec-p256")
    leaf = ec_ca.issue(leaf_key.public_key, "hsm-issued.example", "client")
    assert ec_ca.signer.algorithm is SignatureAlgorithm.ECDSA_P256_SHA256
    assert leaf.signature_algorithm_oid == "1.2.840.10045.4.3.2"  # ecdsa-with-SHA256
    # -check_ss_sig: the root's self-signature (also made in the token) is checked too
    out = openssl_verify_certificate(tmp_path, ec_ca.certificate, leaf, "-check_ss_sig", "-purpose", "sslclient")
    assert out.returncode == 0 and "leaf.pem: OK" in out.stdout, out.stdout + out.stderr
    # cryptography (OpenSSL's primitives through another binding) agrees on both signatures
    root_c = cx509.load_der_x509_certificate(ec_ca.certificate.der)
    root_c.verify_directly_issued_by(root_c)
    cx509.load_der_x509_certificate(leaf.der).verify_directly_issued_by(root_c)
    # and OpenSSL does check: one bit flipped in the signature value fails
    tampered = leaf.der[:-1] + bytes([leaf.der[-1] ^ 0x01])
    bad = openssl_verify_certificate(tmp_path, ec_ca.certificate, tampered)
    assert bad.returncode != 0 and "signature failure" in bad.stdout + bad.stderr, bad.stdout + bad.stderr


@pytest.mark.parametrize("detached", [True, False], ids=["detached", "attached"])
def test_cms_signed_in_softhsm_verifies_with_openssl(softhsm: Pkcs11KeyStore, ec_ca: HsmCa, tmp_path: Path,
                                                     detached: bool) -> None:
    openssl = require_tool("openssl")
    name = "ec-cms-" + ("d" if detached else "a")
    signer = token_key(softhsm, ec_ca, name, "ec-p256", "seal-holder")
    der = sign_cms(signer, DATA, detached=detached)
    (tmp_path / "sig.der").write_bytes(der)
    (tmp_path / "data.bin").write_bytes(DATA)
    (tmp_path / "root.pem").write_bytes(ec_ca.certificate.to_pem())
    args = [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.der"),
            "-CAfile", str(tmp_path / "root.pem"), "-purpose", "any", "-out", str(tmp_path / "out.bin")]
    if detached:
        args += ["-content", str(tmp_path / "data.bin")]
    proc = run(*args)
    assert proc.returncode == 0 and "Verification successful" in proc.stderr, proc.stdout + proc.stderr
    assert (tmp_path / "out.bin").read_bytes() == DATA
    if detached:  # OpenSSL does check the content
        (tmp_path / "data.bin").write_bytes(DATA + b"!")
        assert run(*args).returncode != 0


def test_es256_token_signed_in_softhsm_verifies_with_pyjwt(softhsm: Pkcs11KeyStore) -> None:
    softhsm.create("ec-token", "ec-p256")
    signer = softhsm.signer("ec-token")
    issuer = TokenIssuer(signer, ISS, audience=AUD)
    assert issuer.alg == "ES256"
    token = issuer.issue("user-7", acr="2")
    public = signer.public_key.crypto_key
    decoded = pyjwt.decode(token, public, algorithms=["ES256"], audience=AUD, issuer=ISS)
    assert decoded["sub"] == "user-7" and decoded["acr"] == "2"
    assert pyjwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT", "kid": issuer.kid}
    # PyJWT does check the signature: another token key's public key is refused
    softhsm.create("ec-token-other", "ec-p256")
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, softhsm.signer("ec-token-other").public_key.crypto_key, algorithms=["ES256"],
                     audience=AUD, issuer=ISS)


def test_timestamp_signed_in_softhsm_verifies_with_openssl_ts(softhsm: Pkcs11KeyStore, ec_ca: HsmCa,
                                                              tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    tsa_signer = token_key(softhsm, ec_ca, "ec-tsa", "ec-p256", "tsa")  # critical EKU timeStamping
    tsa = LocalTsa(tsa_signer, policy_oid="1.2.3.4.1")
    data, query, reply = tmp_path / "data.bin", tmp_path / "req.tsq", tmp_path / "resp.tsr"
    root, tsa_pem = tmp_path / "root.pem", tmp_path / "tsa.pem"
    data.write_bytes(DATA)
    root.write_bytes(ec_ca.certificate.to_pem())
    tsa_pem.write_bytes(tsa.certificate.to_pem())
    proc = run(openssl, "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query))
    assert proc.returncode == 0, proc.stderr
    reply.write_bytes(tsa.respond(query.read_bytes()))
    for how in (["-data", str(data)], ["-queryfile", str(query)]):
        proc = run(openssl, "ts", "-verify", *how, "-in", str(reply), "-CAfile", str(root), "-untrusted", str(tsa_pem))
        assert proc.returncode == 0 and "Verification: OK" in proc.stdout, proc.stdout + proc.stderr
    status, token, _ = parse_response(reply.read_bytes())
    assert status == "granted" and token is not None
    assert verify_timestamp_token(token, DATA, trust_anchors=[ec_ca.certificate]).ok
    data.write_bytes(DATA + b"x")  # OpenSSL does check the imprint
    assert run(openssl, "ts", "-verify", "-data", str(data), "-in", str(reply), "-CAfile", str(root)).returncode != 0


# SM2 test token (TEST ONLY emulator), default profile ---------------------------------------------------
@pytest.fixture(scope="module")
def sm2_store(testtoken: str) -> Iterator[Pkcs11KeyStore]:
    store = open_store(testtoken, None)  # default profile: host-computed e = SM3(Z || M)
    try:
        store.sm2_self_test()
        assert store.sm2_profile is not None and store.sm2_profile.name == "testtoken"
        assert store.sm2_mode is not None and store.sm2_mode.input.value == "E_PREHASHED"
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def sm2_ca(sm2_store: Pkcs11KeyStore) -> HsmCa:
    # the emulator keeps keys in process memory for the whole run: names unique to this module
    return HsmCa.create(sm2_store, "fmt-sm2-root", "sm2", "trustsvc HSM root CA (SM2)")


class _Registry:
    def status(self, es_id: str) -> str | None:
        return "active"


def test_seal_made_and_signed_in_sm2_token_passes_every_check_and_bouncycastle(
        sm2_store: Pkcs11KeyStore, sm2_ca: HsmCa, tmp_path: Path) -> None:
    maker = token_key(sm2_store, sm2_ca, "fmt-seal-maker", "sm2", "seal-maker")
    holder = token_key(sm2_store, sm2_ca, "fmt-seal-holder", "sm2", "seal-holder")
    tsa = LocalTsa(token_key(sm2_store, sm2_ca, "fmt-seal-tsa", "sm2", "tsa"))
    assert maker.certificate is not None and holder.certificate is not None
    now = dt.datetime.now(UTC).replace(microsecond=0)
    spec = SealSpec(es_id="3301060000000099", seal_type=SealType.OFFICIAL, name="某某市人民政府办公室",
                    holder_certs=[holder.certificate], valid_start=now - dt.timedelta(days=1),
                    valid_end=now + dt.timedelta(days=30), picture=Picture("PNG", PNG, 42, 42))
    seal = make_seal(spec, maker, maker.certificate)
    seal_signer = SealSigner(seal, holder, timestamper=lambda value: tsa.timestamp(value, hash_alg="sm3"))
    document = b"%PDF-1.7 licence to be sealed"
    # two propertyInfo lengths: the token signer has no prepared-prefix fast path, prefix || suffix is signed
    signatures = [seal_signer.sign_document(document, "/Doc_0/Signs/Sign_0/Signature.xml"),
                  seal_signer.sign_document(document, "p" * 150)]

    def check_timestamp(token: bytes, value: bytes) -> None:
        result = verify_timestamp_token(token, value, trust_anchors=[sm2_ca.certificate])
        if not result.ok:
            raise TrustsvcError(f"time stamp does not verify: {result.reason}", reason=result.reason)

    seal_report = verify_seal_or_signature(seal, trust=[sm2_ca.certificate], registry=_Registry())
    assert seal_report.verdict is Verdict.VALID, seal_report.to_text()
    assert all(c.status is Status.PASS for c in seal_report.checks), seal_report.to_text()
    for sig in signatures:
        report = verify_seal_or_signature(sig, document=document, trust=[sm2_ca.certificate], registry=_Registry(),
                                          timestamp_verifier=check_timestamp)
        assert report.verdict is Verdict.VALID, report.to_text()
        assert all(c.status is Status.PASS for c in report.checks), report.to_text()
        assert {"signature.signer_signature", "seal.maker_signature", "signature.timestamp"} <= {
            c.name for c in report.checks}
    # BouncyCastle's ASN.1 classes and SM3withSM2 (tests/interop/java/SealCheck.java), in one JVM
    cases = [("seal", seal, SEAL_OK), ("signature", signatures[0], SIG_OK), ("signature", signatures[1], SIG_OK),
             ("seal", flip_signature_value(seal), "FAIL seal.maker_signature")]
    args: list[str] = []
    for i, (kind, der, _expected) in enumerate(cases):
        (tmp_path / f"{i}.der").write_bytes(der)
        args += [kind, str(tmp_path / f"{i}.der")]
    require_tool("java")
    proc = bouncycastle.run("SealCheck", *args)
    lines = proc.stdout.splitlines()
    assert proc.stderr == "" and len(lines) == len(cases), proc.stdout + proc.stderr
    for (kind, _der, expected), line in zip(cases, lines, strict=True):
        assert line.startswith(expected), f"{kind}: BC said {line!r}, expected {expected!r}"


def test_sm2_certificate_signed_in_token_verifies_with_openssl_and_bouncycastle(
        sm2_store: Pkcs11KeyStore, sm2_ca: HsmCa, tmp_path: Path) -> None:
    leaf_key = sm2_store.create("fmt-sm2-leaf", "sm2")
    leaf = sm2_ca.issue(leaf_key.public_key, "SM2 HSM leaf", "seal-holder")
    assert leaf.signature_algorithm_oid == "1.2.156.10197.1.501"  # SM2-with-SM3
    out = openssl_verify_certificate(tmp_path, sm2_ca.certificate, leaf, "-vfyopt", DISTID)
    assert out.returncode == 0 and "leaf.pem: OK" in out.stdout, out.stdout + out.stderr
    # no -check_ss_sig here: OpenSSL 3.0 checks self-signatures with the empty SM2 ID (-vfyopt is not applied;
    # its own `req -x509 -sigopt distid:...` root fails the same way), so BouncyCastle checks the root's
    require_tool("java")
    for subject in ("leaf.pem", "root.pem"):
        proc = bouncycastle.run("Sm2Tool", "verify-cert", str(tmp_path / subject), str(tmp_path / "root.pem"))
        assert proc.stdout.startswith("OK"), proc.stdout + proc.stderr


@pytest.mark.parametrize("detached", [True, False], ids=["detached", "attached"])
def test_sm2_cms_signed_in_token_verifies_with_bouncycastle(sm2_store: Pkcs11KeyStore, sm2_ca: HsmCa,
                                                            tmp_path: Path, detached: bool) -> None:
    require_tool("java")
    signer = token_key(sm2_store, sm2_ca, "fmt-sm2-cms-" + ("d" if detached else "a"), "sm2", "seal-holder")
    der = sign_cms(signer, DATA, detached=detached)
    result = verify_cms(der, DATA if detached else None, trust_anchors=[sm2_ca.certificate])
    assert result.ok, result.to_dict()
    assert result.signers[0].digest_algorithm == "sm3"
    (tmp_path / "sig.p7s").write_bytes(der)
    (tmp_path / "data.bin").write_bytes(DATA)
    args = [str(tmp_path / "sig.p7s")] + ([str(tmp_path / "data.bin")] if detached else [])
    proc = bouncycastle.run("CmsTool", "verify", *args)
    assert proc.returncode == 0 and proc.stdout.startswith("OK 1.2.156.10197.1.501"), proc.stdout + proc.stderr
    if detached:  # BC does check the content
        (tmp_path / "data.bin").write_bytes(DATA + b"!")
        proc = bouncycastle.run("CmsTool", "verify", *args)
        assert proc.returncode == 1 and "FAIL" in proc.stdout, proc.stdout + proc.stderr


def test_sm2_token_signed_in_token_verifies_with_ours_and_openssl(sm2_store: Pkcs11KeyStore,
                                                                   tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    info = sm2_store.create("fmt-sm2-token", "sm2")
    issuer = TokenIssuer(sm2_store.signer("fmt-sm2-token"), ISS, audience=AUD)
    assert issuer.alg == "SM2"
    token = issuer.issue("user-7", acr="2")
    verifier = TokenVerifier([TrustedIssuer(ISS, KeySet.of((issuer.kid, info.public_key)))], audience=AUD)
    assert verifier.verify(token).claims["sub"] == "user-7"
    h, p, s = token.split(".")
    rs = base64.urlsafe_b64decode(s + "==")
    assert len(rs) == 64  # JWS SM2: r || s
    signing_input = f"{h}.{p}".encode("ascii")
    out = openssl_sm2_verify(openssl, tmp_path, info.public_key.to_pem(), signing_input, rs_to_der(rs))
    assert out.returncode == 0 and "Signature Verified Successfully" in out.stdout, out.stdout + out.stderr
    # OpenSSL does check: another signing input is refused
    assert openssl_sm2_verify(openssl, tmp_path, info.public_key.to_pem(), signing_input + b"x",
                              rs_to_der(rs)).returncode != 0


def test_cli_ca_with_its_root_key_in_softhsm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`trustsvc ca init --store hsm --key NAME`: no ca-key.pem; issue and CRL sign in the token;
    OpenSSL verifies the chain and the CRL; without the HSM the CA refuses to open, saying why."""
    from cli.main import main

    openssl = require_tool("openssl")
    label = "ca-" + uuid.uuid4().hex[:8]
    conf = make_softhsm(tmp_path / "hsm", label)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        mp.setenv("TRUSTSVC_CA_PIN", PIN)
        store = Pkcs11KeyStore(SOFTHSM_MODULE, token_label=label, pin=pin_source(pin=PIN))
        store.create("root-ca", "ec-p256")
        store.close()
        home = ["--home", str(tmp_path / "home")]
        hsm = ["--store", "hsm", "--hsm-module", SOFTHSM_MODULE, "--hsm-token", label, "--pin-env", "TRUSTSVC_CA_PIN"]
        assert main([*home, "ca", *hsm, "init", "--key", "root-ca", "--name", "HSM Root"]) == 0
        ca_dir = tmp_path / "home" / "ca"
        assert not (ca_dir / "ca-key.pem").exists()
        assert json.loads((ca_dir / "ca.json").read_text())["key"] == {"store": "hsm", "ref": "root-ca@1"}
        leaf, crl = tmp_path / "leaf.pem", tmp_path / "ca.crl"
        assert main([*home, "ca", *hsm, "issue", "--profile", "client", "--cn", "hsm-issued",
                     "--out-cert", str(leaf), "--out-key", str(tmp_path / "leaf.key")]) == 0
        assert main([*home, "ca", *hsm, "crl", "--out", str(crl)]) == 0
        out = subprocess.run([openssl, "verify", "-check_ss_sig", "-crl_check", "-CAfile", str(ca_dir / "ca-cert.pem"),
                              "-CRLfile", str(crl), str(leaf)], capture_output=True, text=True)
        assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr
        capsys.readouterr()
        mp.delenv("TRUSTSVC_PKCS11_TOKEN", raising=False)
        assert main([*home, "ca", "issue", "--profile", "client", "--cn", "x"]) == 2  # no HSM options given
        err = json.loads(capsys.readouterr().err)
        assert err["error"] == "HSM_CONFIG" and "the CA key is root-ca@1 in the hsm store" in err["message"]
    with pytest.raises(TrustsvcError) as refused:  # the library says where the key is
        DevelopmentCA.open(ca_dir)
    assert refused.value.reason == "CA_KEY_EXTERNAL"
