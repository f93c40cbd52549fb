"""PKCS#10 requests and CRLs: build, parse, verify over received bytes."""

from __future__ import annotations

import datetime as dt

import pytest

from trustsvc.algorithms import SoftwareSigner
from trustsvc.errors import CertificateError, DecodeError, InvalidSignature
from trustsvc.pki import (
    CertificateBuilder,
    CertificateRequest,
    CertificateRevocationList,
    RevocationReason,
    RevokedEntry,
    build_crl,
    build_csr,
)

UTC = dt.UTC


@pytest.mark.parametrize("spec", ["sm2", "ec-p256", "rsa-2048"])
def test_csr_round_trip(spec: str) -> None:
    signer = SoftwareSigner.generate(spec)
    csr = build_csr(signer, {"common_name": "申请人 applicant", "organization_name": "Org"},
                    dns=["a.example"], ips=["10.1.2.3"])
    again = CertificateRequest.load(csr.to_pem())
    again.verify()
    assert again.der == csr.der and again.public_key == signer.public_key
    assert again.common_name == "申请人 applicant"
    assert again.signature_algorithm_oid == signer.algorithm.oid
    assert again.requested_extensions[0]["extn_value"] == ["a.example", "10.1.2.3"]


def test_csr_tampered_fails() -> None:
    csr = build_csr(SoftwareSigner.generate("sm2"), "original")
    tampered = CertificateRequest(csr.der.replace(b"original", b"ORIGINAL"))
    with pytest.raises(InvalidSignature):
        tampered.verify()


def test_csr_with_other_sm2_id_says_so() -> None:
    signer = SoftwareSigner.generate("sm2", sm2_id=b"")
    with pytest.raises(InvalidSignature) as err:
        build_csr(signer, "empty id").verify()
    assert err.value.reason == "SM2_ID_MISMATCH"


def test_csr_bad_input() -> None:
    with pytest.raises(DecodeError):
        CertificateRequest(b"\x30\x03\x02\x01\x00")
    with pytest.raises(DecodeError):
        CertificateRequest.load(b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n")


@pytest.fixture(scope="module")
def issuer():
    signer = SoftwareSigner.generate("sm2")
    cert = (CertificateBuilder().subject("CRL Issuer").public_key(signer.public_key).basic_constraints(True)
            .key_usage({"key_cert_sign", "crl_sign"}).sign(signer))
    return signer, cert


def test_crl_round_trip(issuer) -> None:
    signer, cert = issuer
    now = dt.datetime.now(UTC).replace(microsecond=0)
    entries = [RevokedEntry(5, now, RevocationReason.KEY_COMPROMISE), RevokedEntry(2**100, now),
               RevokedEntry(9, now, RevocationReason.REMOVE_FROM_CRL)]
    crl = build_crl(signer, cert, entries, crl_number=42, this_update=now, next_update=now + dt.timedelta(days=1))
    parsed = CertificateRevocationList.load(crl.to_pem())
    parsed.verify_signed_by(cert.public_key)
    assert parsed.crl_number == 42 and parsed.issuer_name == cert.subject_name
    assert parsed.this_update == now and parsed.next_update == now + dt.timedelta(days=1)
    assert parsed.revocation(5) == entries[0]
    assert parsed.is_revoked(5) and parsed.is_revoked(2**100) and not parsed.is_revoked(6)
    assert not parsed.is_revoked(9)  # removeFromCRL
    assert not parsed.is_revoked(5, at=now - dt.timedelta(seconds=1))
    assert parsed.is_current(now) and not parsed.is_current(now + dt.timedelta(days=2))
    assert parsed.entries[0].to_json()["reason"] in ("key_compromise", None, "remove_from_crl")


def test_empty_crl_and_signature_over_received_bytes(issuer) -> None:
    signer, cert = issuer
    crl = build_crl(signer, cert, [], crl_number=1)
    CertificateRevocationList(crl.der).verify_signed_by(cert.public_key)
    other = SoftwareSigner.generate("sm2")
    with pytest.raises(InvalidSignature):
        crl.verify_signed_by(other.public_key)
    tampered = bytearray(crl.der)
    tampered[-2] ^= 0xFF
    with pytest.raises(InvalidSignature):
        CertificateRevocationList(bytes(tampered)).verify_signed_by(cert.public_key)


def test_crl_builder_refuses_wrong_key(issuer) -> None:
    _, cert = issuer
    with pytest.raises(CertificateError) as err:
        build_crl(SoftwareSigner.generate("sm2"), cert, [], crl_number=1)
    assert err.value.reason == "KEY_MISMATCH"


@pytest.mark.parametrize("text,expected", [("keyCompromise", RevocationReason.KEY_COMPROMISE),
                                           ("superseded", RevocationReason.SUPERSEDED),
                                           ("1", RevocationReason.KEY_COMPROMISE),
                                           ("8", RevocationReason.REMOVE_FROM_CRL),
                                           ("9", RevocationReason.PRIVILEGE_WITHDRAWN),
                                           ("CESSATION_OF_OPERATION", RevocationReason.CESSATION_OF_OPERATION)])
def test_reason_codes(text: str, expected: RevocationReason) -> None:
    assert RevocationReason.parse(text) is expected


def test_bad_reason_code() -> None:
    with pytest.raises(CertificateError):
        RevocationReason.parse("7")
