"""Making seals, sealing documents, and verifying what we made (round trips and refusals)."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import cms, tsp

from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import Conflict, InvalidInput, KeyMismatch
from trustsvc.pki.certificate import Certificate, CertificateBuilder
from trustsvc.seal import asn1
from trustsvc.seal.make import Picture, SealSpec, SealType, make_seal
from trustsvc.seal.parse import parse_seal, parse_signature
from trustsvc.seal.registry import HistoryEntry
from trustsvc.seal.report import Status, Verdict
from trustsvc.seal.sign import SealSigner
from trustsvc.seal.verify import verify

from .test_seal_support import PNG, make_setup

DOC = b"<Signature>document</Signature>"


def test_seal_round_trip_strict_der() -> None:
    s = make_setup()
    seal = parse_seal(s.seal)
    assert (seal.structure, seal.version, seal.es_id, seal.seal_type) == ("v4", 4, "3301060000000001", 1)
    assert seal.cert_list == (s.holder_cert.der,)
    assert seal.picture_data == PNG and seal.picture_width_mm == 42
    assert seal.ext_datas[0].oid == "1.2.156.1.2.3"
    assert asn1.SESealV4.load(s.seal, strict=True).dump(force=True) == s.seal  # strict DER
    report = verify(s.seal, trust=[s.maker_cert])
    assert report.verdict is Verdict.VALID, report.to_text()


def test_signature_round_trip_and_hash_mode() -> None:
    s = make_setup()
    signer = SealSigner(s.seal, s.holder, s.holder_cert)
    sig = signer.sign_document(DOC, "/Doc_0/Signs/Sign_0/Signature.xml")
    parsed = parse_signature(sig)
    assert parsed.data_hash == sm3(DOC) and parsed.seal.der == s.seal
    assert asn1.SESSignatureV4.load(sig, strict=True).dump(force=True) == sig
    report = verify(sig, document=DOC, trust=[s.maker_cert])
    assert report.verdict is Verdict.VALID, report.to_text()
    by_hash = signer.sign_hash(sm3(DOC), "p")
    assert verify(by_hash, document_hash=sm3(DOC), trust=[s.maker_cert]).verdict is Verdict.VALID
    assert verify(by_hash, document=b"other").check("signature.data_hash").reason == "DATA_HASH_MISMATCH"


def test_digest_cert_list() -> None:
    s = make_setup(cert_list_type=2)
    assert parse_seal(s.seal).cert_digests == (("sm3", sm3(s.holder_cert.der)),)
    sig = SealSigner(s.seal, s.holder, s.holder_cert).sign_document(DOC, "p")
    assert verify(sig, document=DOC, trust=[s.maker_cert]).verdict is Verdict.VALID


def test_refusals() -> None:
    s = make_setup()
    stranger = SoftwareSigner.generate("sm2")
    stranger_cert = CertificateBuilder().subject("x").public_key(stranger.public_key).sign(s.maker, s.maker_cert)
    with pytest.raises(Conflict) as exc:
        SealSigner(s.seal, stranger, stranger_cert)
    assert exc.value.reason == "SIGNER_NOT_IN_CERT_LIST"
    with pytest.raises(KeyMismatch):
        SealSigner(s.seal, stranger, s.holder_cert)
    with pytest.raises(Conflict) as exc:
        SealSigner(s.seal, s.holder, s.holder_cert, status=lambda _id: "revoked").sign_document(DOC, "p")
    assert exc.value.reason == "SEAL_NOT_ACTIVE"
    expired = make_setup(start_days=-30, valid_days=10)
    with pytest.raises(Conflict) as exc:
        SealSigner(expired.seal, expired.holder, expired.holder_cert).sign_document(DOC, "p")
    assert exc.value.reason == "SEAL_NOT_VALID_NOW"
    with pytest.raises(InvalidInput):
        SealSigner(s.seal, s.holder, s.holder_cert).sign_hash(b"short", "p")


def test_make_refuses_bad_input() -> None:
    s = make_setup()
    now = s.now
    spec = SealSpec("X1", SealType.parse("finance"), "n", [s.holder_cert.der], now, now + dt.timedelta(days=1),
                    Picture("PNG", PNG, 40, 40))
    with pytest.raises(KeyMismatch):
        make_seal(spec, s.holder, s.maker_cert)
    with pytest.raises(InvalidInput):
        make_seal(SealSpec("X1", SealType.OFFICIAL, "n", [s.holder_cert.der], now, now, Picture("PNG", PNG, 40, 40)),
                  s.maker, s.maker_cert)
    with pytest.raises(InvalidInput):
        SealType.parse("nonsense")
    assert SealType.parse("legal-representative") is SealType.LEGAL_REPRESENTATIVE


def _fake_token(signature: bytes) -> bytes:
    """An unsigned RFC 3161 token shape whose messageImprint binds ``signature`` (the binding check only)."""
    tst = tsp.TSTInfo({"version": 1, "policy": "1.2.3", "serial_number": 1, "gen_time": dt.datetime.now(dt.UTC),
                       "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                           "hashed_message": __import__("hashlib").sha256(signature).digest()}})
    sd = cms.SignedData({"version": "v3", "digest_algorithms": [], "signer_infos": [],
                         "encap_content_info": {"content_type": "tst_info", "content": tst}})
    return cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump()


def test_timestamp_bound_to_signature_value() -> None:
    s = make_setup()
    sig = SealSigner(s.seal, s.holder, s.holder_cert, timestamper=_fake_token).sign_document(DOC, "p")
    parsed = parse_signature(sig)
    assert parsed.time_stamp is not None
    report = verify(sig, document=DOC, trust=[s.maker_cert])
    assert report.check("signature.timestamp").reason == "TIMESTAMP_SIGNATURE_NOT_CHECKED"
    calls = []
    report = verify(sig, document=DOC, trust=[s.maker_cert], timestamp_verifier=lambda t, v: calls.append(v))
    assert report.status("signature.timestamp") is Status.PASS and calls == [parsed.signature]
    wrong = SealSigner(s.seal, s.holder, s.holder_cert,
                       timestamper=lambda v: _fake_token(b"other")).sign_document(DOC, "p")
    assert verify(wrong, document=DOC).check("signature.timestamp").reason == "TIMESTAMP_NOT_BOUND"


def test_a_real_time_stamp_is_verified_with_the_trust_anchors() -> None:
    """time_stamp_verifier: trustsvc's TSA token over the signature value passes with the TSA's root trusted,
    is a warning (TIMESTAMP_UNTRUSTED) without it, and fails when its signature is broken."""
    from tests.unit.test_cms_pki import make_pki
    from trustsvc.seal.verify import time_stamp_verifier
    from trustsvc.tsa import LocalTsa

    s = make_setup()
    pki = make_pki("sm2", tsa=True)
    sig = SealSigner(s.seal, s.holder, s.holder_cert, timestamper=LocalTsa(pki.signer).timestamp).sign_document(
        DOC, "p")

    def check(trust: list[Certificate], data: bytes = sig) -> tuple[Status, str]:
        c = verify(data, document=DOC, trust=trust, timestamp_verifier=time_stamp_verifier(trust)).check(
            "signature.timestamp")
        return c.status, c.reason

    assert check([s.maker_cert, pki.root]) == (Status.PASS, "OK")
    assert check([s.maker_cert]) == (Status.WARNING, "TIMESTAMP_UNTRUSTED")
    token = parse_signature(sig).time_stamp
    assert token is not None
    broken = sig.replace(token[-40:], bytes(b ^ 1 for b in token[-40:]))  # inside the TSA's signature value
    status, reason = check([s.maker_cert, pki.root], broken)
    assert status is Status.FAIL and reason not in ("OK", "TIMESTAMP_UNTRUSTED"), reason
    # the TSA's certificate revoked: a failure, not the untrusted-TSA warning
    from trustsvc.pki.crl import RevokedEntry, build_crl

    crl = build_crl(pki.root_signer, pki.root, [RevokedEntry(pki.leaf.serial_number,
                                                             dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))],
                    crl_number=1)
    trust = [s.maker_cert, pki.root]
    c = verify(sig, document=DOC, trust=trust, timestamp_verifier=time_stamp_verifier(trust, crls=[crl])).check(
        "signature.timestamp")
    assert (c.status, c.reason) == (Status.FAIL, "REVOKED"), c


class _History:
    """A registry whose seal was made a year ago and revoked at ``revoked``."""

    def __init__(self, revoked: dt.datetime) -> None:
        self.revoked = revoked

    def status(self, es_id: str) -> str | None:
        return "revoked"

    def history(self, es_id: str) -> list[HistoryEntry]:
        made = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
        return [HistoryEntry(es_id, made, "a", "make", None, "active", "made"),
                HistoryEntry(es_id, self.revoked, "a", "revoke", "active", "revoked", "lost")]


def test_a_seal_revoked_after_a_verified_time_stamp_only_warns() -> None:
    s = make_setup()
    sig = SealSigner(s.seal, s.holder, s.holder_cert, timestamper=_fake_token).sign_document(DOC, "p")
    later = _History(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    report = verify(sig, document=DOC, trust=[s.maker_cert], registry=later, timestamp_verifier=lambda t, v: None)
    assert report.verdict is Verdict.VALID_WITH_WARNINGS, report.to_text()
    assert report.check("seal.status").reason == "SEAL_REVOKED_SINCE"
    # the time stamp's signature not checked, or revoked before the stamped time: the revocation fails it
    assert verify(sig, document=DOC, trust=[s.maker_cert], registry=later).check("seal.status").reason \
        == "SEAL_REVOKED"
    earlier = _History(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert verify(sig, document=DOC, trust=[s.maker_cert], registry=earlier,
                  timestamp_verifier=lambda t, v: None).verdict is Verdict.INVALID


def test_a_signer_certificate_revoked_before_the_signing_time_fails() -> None:
    """With the maker's CRL: revoked before timeInfo fails signature.signer_chain (REVOKED); revoked after it
    does not (the certificate was good when it signed); a CRL newer than the signature is what judges it."""
    from trustsvc.pki.crl import RevokedEntry, build_crl

    s = make_setup()
    sig = SealSigner(s.seal, s.holder, s.holder_cert).sign_document(DOC, "p")
    signed_at = parse_signature(sig).time_info
    assert signed_at is not None
    serial = s.holder_cert.serial_number
    for revoked_at, number, expected in ((signed_at - dt.timedelta(hours=1), 1, "REVOKED"),
                                         (signed_at + dt.timedelta(seconds=1), 2, "OK")):
        crl = build_crl(s.maker, s.maker_cert, [RevokedEntry(serial, revoked_at)], crl_number=number)
        report = verify(sig, document=DOC, trust=[s.maker_cert], crls=[crl])
        assert report.check("signature.signer_chain").reason == expected, report.to_text()
    assert verify(sig, document=DOC, trust=[s.maker_cert]).check("signature.signer_chain").reason == "OK"


def test_untrusted_maker_fails_chain() -> None:
    s = make_setup()
    other = make_setup()
    report = verify(s.seal, trust=[other.maker_cert])
    assert report.check("seal.maker_chain").status is Status.FAIL
