"""verify_pdf checks the signer against CRLs (given, or in the document security store) itself: pyHanko consults
CRLs only for certificates that declare a distribution point, which trustsvc's need not."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.unit.test_pdf_signing import local_tsa
from trustsvc.pdf.devkit import DevIdentity, dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.signing import sign_pdf
from trustsvc.pdf.verify import verify_pdf
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.crl import CertificateRevocationList, RevokedEntry, build_crl

NOW = dt.datetime.now(dt.UTC)


def _crl(ident: DevIdentity, revoked_at: dt.datetime | None, number: int = 1, *,
         this_update: dt.datetime | None = None, next_update: dt.datetime | None = None) -> CertificateRevocationList:
    serial = Certificate(ident.signer.certificate_chain[0]).serial_number
    return build_crl(ident.root_signer, ident.root, [RevokedEntry(serial, revoked_at)] if revoked_at else [],
                     crl_number=number, this_update=this_update, next_update=next_update)


def _revocation(pdf: bytes, roots: list[bytes], crls: list[bytes]) -> tuple[bool | None, str]:
    report = verify_pdf(pdf, trust_roots=roots, crls=crls)
    check = next(c for c in report.signatures[0].checks if c.name == "revocation")
    if check.ok is False:
        assert not report.valid
    return check.ok, check.detail


@pytest.mark.parametrize("kind", ["sm2", "ecdsa"])
def test_b_b_signer_revoked_fails_whenever_it_was_revoked(kind: str) -> None:
    """No proof of when it signed: revoked now is revoked (AdES REVOKED_NO_POE)."""
    ident = dev_identity(kind)
    signed = FastPdfSigner(ident.signer).sign(licence_pdf())
    roots = [ident.root.der]
    assert _revocation(signed, roots, [_crl(ident, None).der])[0] is True
    ok, detail = _revocation(signed, roots, [_crl(ident, dt.datetime.now(dt.UTC), 2).der])  # after it signed
    assert ok is False and "revoked at" in detail, detail
    assert _revocation(signed, roots, [])[0] is None  # no CRL: not checked, and not claimed


def test_b_t_judged_at_the_time_stamp() -> None:
    ident = dev_identity("sm2")
    stamper, tsa_root = local_tsa("sm2")
    signed = sign_pdf(licence_pdf(), ident.signer, level="B-T", timestamper=stamper)
    roots = [ident.root.der, tsa_root]
    time.sleep(1.1)  # the time stamp's genTime is whole seconds: revoked clearly after it
    later = _crl(ident, dt.datetime.now(dt.UTC))
    ok, detail = _revocation(signed, roots, [later.der])
    assert ok is True and "at the time stamp" in detail, detail
    earlier = _crl(ident, NOW - dt.timedelta(hours=1), 2)
    assert _revocation(signed, roots, [earlier.der])[0] is False


def test_b_lt_uses_the_crl_in_the_document() -> None:
    ident = dev_identity("ecdsa")
    stamper, tsa_root = local_tsa("ecdsa")
    signed = sign_pdf(licence_pdf(), ident.signer, level="B-LT", timestamper=stamper,
                      trust_roots=[ident.root.der, tsa_root], crls=[_crl(ident, None).der])
    ok, detail = _revocation(signed, [ident.root.der, tsa_root], [])
    assert ok is True, detail


def test_a_stale_or_forged_crl_leaves_the_status_unknown() -> None:
    ident = dev_identity("sm2")
    signed = FastPdfSigner(ident.signer).sign(licence_pdf())
    stale = _crl(ident, None, this_update=NOW - dt.timedelta(days=20), next_update=NOW - dt.timedelta(days=10))
    ok, detail = _revocation(signed, [ident.root.der], [stale.der])
    assert ok is None and "CRL_EXPIRED" in detail, detail
    other = dev_identity("sm2")
    forged = build_crl(other.root_signer, other.root, [], crl_number=1)  # another CA's: not about this signer
    assert _revocation(signed, [ident.root.der], [forged.der])[0] is None
