"""Fuzz the PKI parsers: random bytes and single-byte mutations of real certificates, CRLs and CSRs.

Whatever the input, only trustsvc errors may escape; parsed mutants are also validated and verified.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustsvc.algorithms import SoftwareSigner
from trustsvc.errors import TrustsvcError
from trustsvc.pki import (
    Certificate,
    CertificateBuilder,
    CertificateRequest,
    CertificateRevocationList,
    RevocationReason,
    RevokedEntry,
    build_crl,
    build_csr,
    validate,
)

_ROOT = SoftwareSigner.generate("sm2")
_ROOT_CERT = (CertificateBuilder().subject({"common_name": "Fuzz Root", "organization_name": "trustsvc"})
              .public_key(_ROOT.public_key).basic_constraints(True, 0).key_usage({"key_cert_sign", "crl_sign"})
              .sign(_ROOT))
_LEAF_KEY = SoftwareSigner.generate("sm2")
_LEAF = (CertificateBuilder().subject("Fuzz Leaf").public_key(_LEAF_KEY.public_key).basic_constraints(False)
         .key_usage({"digital_signature"}).extended_key_usage(["time_stamping"])
         .subject_alt_names(dns=["fuzz.example"]).sign(_ROOT, _ROOT_CERT))
_CRL = build_crl(_ROOT, _ROOT_CERT, [RevokedEntry(7, dt.datetime.now(dt.UTC), RevocationReason.SUPERSEDED)],
                 crl_number=3)
_CSR = build_csr(_LEAF_KEY, "Fuzz Leaf", dns=["fuzz.example"], ips=["10.0.0.1"])
_SAMPLES = {"cert": _LEAF.der, "crl": _CRL.der, "csr": _CSR.der}
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exercise(kind: str, data: bytes) -> None:
    """Parse ``data`` as ``kind`` and use the result; only TrustsvcError may be raised."""
    try:
        if kind == "cert":
            cert = Certificate(data)
            _ = (cert.subject, cert.issuer, cert.key_usage, cert.extended_key_usage, cert.is_ca, cert.path_length,
                 cert.not_before, cert.not_after, cert.common_name, cert.is_self_signed)
            result = validate(cert, trust_anchors=[_ROOT_CERT], crls=[_CRL], key_usage=["digital_signature"],
                              extended_key_usage=["time_stamping"])
            result.to_json()
        elif kind == "crl":
            crl = CertificateRevocationList(data)
            _ = crl.issuer, crl.this_update, crl.next_update, crl.crl_number, crl.entries, crl.is_revoked(7)
            crl.verify_signed_by(_ROOT_CERT.public_key)
            validate(_LEAF, trust_anchors=[_ROOT_CERT], crls=[crl])
        else:
            csr = CertificateRequest(data)
            _ = csr.subject, csr.common_name, csr.requested_extensions
            csr.verify()
    except TrustsvcError:
        pass


@_SETTINGS
@given(kind=st.sampled_from(sorted(_SAMPLES)), data=st.binary(max_size=600))
def test_random_bytes(kind: str, data: bytes) -> None:
    exercise(kind, data)


@_SETTINGS
@given(kind=st.sampled_from(sorted(_SAMPLES)), position=st.integers(min_value=0), value=st.integers(0, 255))
def test_single_byte_mutation(kind: str, position: int, value: int) -> None:
    sample = bytearray(_SAMPLES[kind])
    sample[position % len(sample)] = value
    exercise(kind, bytes(sample))


@_SETTINGS
@given(kind=st.sampled_from(sorted(_SAMPLES)), cut=st.integers(min_value=0))
def test_truncation(kind: str, cut: int) -> None:
    sample = _SAMPLES[kind]
    exercise(kind, sample[: cut % len(sample)])


@_SETTINGS
@given(data=st.binary(max_size=300))
def test_pem_loaders(data: bytes) -> None:
    text = b"-----BEGIN X509 CRL-----\n" + data + b"\n-----END X509 CRL-----\n"
    for loader in (Certificate.load, CertificateRevocationList.load, CertificateRequest.load):
        try:
            loader(text)
        except TrustsvcError:
            pass


def test_unmutated_samples_are_good() -> None:
    assert validate(_LEAF, trust_anchors=[_ROOT_CERT], crls=[_CRL]).valid
    _CSR.verify()
