"""CMS SignedData: sign and verify for SM2, ECDSA and RSA; template; GM/T 0010 input variants."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from asn1crypto import algos, cms, core

from tests.unit.test_cms_pki import make_pki
from trustsvc.algorithms import sm2
from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.errors import InvalidInput
from trustsvc.pki.cms import CmsTemplate, add_unsigned_attribute, sign_cms, verify_cms

DATA = b"e-licence \xe7\x94\xb5\xe5\xad\x90\xe8\xaf\x81\xe7\x85\xa7 payload"
UTC = dt.UTC


@pytest.fixture(scope="module", params=["sm2", "ec-p256", "rsa-2048"])
def pki(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return make_pki(request.param)


@pytest.mark.parametrize("detached", [True, False])
@pytest.mark.parametrize("signed_attributes", [True, False])
def test_sign_verify(pki, detached: bool, signed_attributes: bool) -> None:  # type: ignore[no-untyped-def]
    der = sign_cms(pki.signer, DATA, detached=detached, signed_attributes=signed_attributes)
    result = verify_cms(der, DATA if detached else None, trust_anchors=[pki.root])
    assert result.ok, result.to_dict()
    assert result.check("chain").ok and result.check("signature").ok
    if not detached:
        assert result.content == DATA
    bad = verify_cms(der, DATA + b"x") if detached else None
    if bad is not None:
        assert not bad.ok
        assert bad.reason in ("MESSAGE_DIGEST_MISMATCH", "INVALID_SIGNATURE")


def test_sm2_encoding_is_standard() -> None:
    pki = make_pki("sm2")
    info = cms.ContentInfo.load(sign_cms(pki.signer, DATA))
    assert info["content_type"].dotted == "1.2.840.113549.1.7.2"
    sd = info["content"]
    assert sd["encap_content_info"]["content_type"].dotted == "1.2.840.113549.1.7.1"
    si = sd["signer_infos"][0]
    assert si["digest_algorithm"].dump() == bytes.fromhex("300a06082a811ccf55018311")  # SM3, no params
    assert si["signature_algorithm"].dump() == bytes.fromhex("300a06082a811ccf55018375")  # 1.2.156.10197.1.501
    assert bytes(si["signature"])[0] == 0x30  # DER SEQUENCE{r, s}
    names = [a["type"].native for a in si["signed_attrs"]]
    assert set(names) == {"content_type", "message_digest", "signing_time", "signing_certificate_v2"}
    raw = si["signed_attrs"].dump()[2:] if si["signed_attrs"].dump()[1] < 0x80 else None
    members = [a.dump() for a in si["signed_attrs"]]
    assert members == sorted(members)  # DER SET OF order
    ess = si["signed_attrs"][names.index("signing_certificate_v2")]["values"][0]
    cert_id = ess["certs"][0]
    assert cert_id["hash_algorithm"]["algorithm"].native == "sm3"
    assert bytes(cert_id["cert_hash"]) == hashlib.new("sm3", pki.leaf.der).digest()
    del raw


def test_digest_input_and_template_agree(pki) -> None:  # type: ignore[no-untyped-def]
    name = pki.signer.algorithm.digest
    digest = hashlib.new(name, DATA).digest()
    when = dt.datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    template = CmsTemplate(pki.signer)
    a = cms.ContentInfo.load(sign_cms(pki.signer, digest=digest, signing_time=when))
    b = cms.ContentInfo.load(template.sign(DATA, signing_time=when))
    for x in (a, b):
        x["content"]["signer_infos"][0]["signature"] = b""
    assert a.dump(force=True) == b.dump(force=True)
    for der in (template.sign(digest=digest), *template.sign_batch([digest, digest])):
        result = verify_cms(der, DATA, trust_anchors=[pki.root])
        assert result.ok, result.to_dict()
        assert verify_cms(der, digest=digest).ok


def test_template_with_an_extra_attribute_holding_the_placeholder_bytes() -> None:
    """An extra attribute that sorts first and holds the template's own placeholder bytes (0xA5 x 32, the fixed
    signing time) is left alone: digest and time go into their attributes."""
    pki = make_pki("sm2")
    digest = hashlib.new("sm3", DATA).digest()
    marks = cms.CMSAttribute({"type": "1.2.3", "values": [core.OctetString(b"\xa5" * 32)]})
    time_mark = cms.CMSAttribute({"type": "1.2.4", "values": [core.OctetString(b"000101000000Z")]})
    der = CmsTemplate(pki.signer, extra_signed_attrs=[marks, time_mark]).sign(digest=digest)
    attrs = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["signed_attrs"]
    assert attrs[0]["type"].dotted in ("1.2.3", "1.2.4")  # an extra attribute does sort first
    assert verify_cms(der, DATA, trust_anchors=[pki.root]).ok
    assert [bytes(a["values"][0].native) for a in attrs if a["type"].dotted == "1.2.3"] == [b"\xa5" * 32]


def test_template_rejects_bad_digest() -> None:
    template = CmsTemplate(make_pki("sm2").signer)
    with pytest.raises(InvalidInput) as exc:
        template.sign(digest=b"\x00" * 31)
    assert exc.value.reason == "BAD_DIGEST_LENGTH"


def test_sign_needs_certificate() -> None:
    with pytest.raises(InvalidInput) as exc:
        sign_cms(SoftwareSigner.generate("sm2"), DATA)
    assert exc.value.reason == "NO_SIGNER_CERTIFICATE"


def test_wrong_anchor_and_no_cert() -> None:
    pki, other = make_pki("sm2"), make_pki("sm2")
    der = sign_cms(pki.signer, DATA)
    assert verify_cms(der, DATA, trust_anchors=[other.root]).check("chain").reason == "UNTRUSTED_ROOT"
    bare = sign_cms(pki.signer, DATA, include_certificates=False)
    result = verify_cms(bare, DATA)
    assert not result.ok and result.reason == "SIGNER_CERT_NOT_FOUND"
    assert verify_cms(bare, DATA, extra_certificates=[pki.leaf]).ok


def _rewrite(der: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    info = cms.ContentInfo.load(der)
    edit(info)
    return info.dump(force=True)


def test_gmt0010_variants_accepted() -> None:
    """GM/T 0010 content type OIDs, SM3 with NULL parameters and raw r||s signatures verify."""
    pki = make_pki("sm2")
    der = sign_cms(pki.signer, DATA, detached=False, signed_attributes=False)

    def edit(info: cms.ContentInfo) -> None:
        info["content_type"] = "1.2.156.10197.6.1.4.2.2"
        sd = info["content"]
        si = sd["signer_infos"][0]
        si["digest_algorithm"] = algos.DigestAlgorithm({"algorithm": "sm3", "parameters": None})
        si["signature"] = sm2.signature_to_rs(bytes(si["signature"]))

    gm = _rewrite(der, edit)
    info = cms.ContentInfo.load(gm)
    assert info["content_type"].dotted == "1.2.156.10197.6.1.4.2.2"
    assert len(bytes(info["content"]["signer_infos"][0]["signature"])) == 64
    result = verify_cms(gm, trust_anchors=[pki.root])
    assert result.ok, result.to_dict()


def test_empty_sm2_id_is_named() -> None:
    pki = make_pki("sm2")
    odd = pki.signer.with_certificates(pki.signer.certificate_chain)
    odd.sm2_id = b""
    result = verify_cms(sign_cms(odd, DATA), DATA)
    assert not result.ok
    assert result.check("signature").reason == "SM2_ID_MISMATCH"
    assert "ID" in result.check("signature").detail


def test_signing_time_outside_validity() -> None:
    pki = make_pki("ec-p256")
    der = sign_cms(pki.signer, DATA, signing_time=dt.datetime(2001, 1, 1, tzinfo=UTC))
    result = verify_cms(der, DATA)
    assert result.check("signing-time").reason == "SIGNING_TIME_OUTSIDE_VALIDITY"


def test_garbage_is_a_format_failure() -> None:
    for junk in (b"", b"\x30\x03\x02\x01\x01", b"not der at all"):
        result = verify_cms(junk)
        assert not result.ok and result.check("format").ok is False


def test_add_unsigned_attribute_keeps_signature(pki) -> None:  # type: ignore[no-untyped-def]
    der = sign_cms(pki.signer, DATA)
    token = sign_cms(pki.signer, b"token-ish", detached=False)
    stamped = add_unsigned_attribute(der, "signature_time_stamp_token", token)
    result = verify_cms(stamped, DATA)
    assert result.ok
    assert result.signers[0].unsigned_attrs is not None


def test_chain_uses_path_validation_and_crls() -> None:
    from trustsvc.pki import RevocationReason, RevokedEntry, build_crl

    pki = make_pki("sm2")
    der = sign_cms(pki.signer, DATA)
    result = verify_cms(der, DATA, trust_anchors=[pki.root])
    assert result.ok and result.signers[0].path_validation is not None
    crl = build_crl(pki.root_signer, pki.root, [RevokedEntry(pki.leaf.serial_number,
                    dt.datetime.now(UTC) - dt.timedelta(minutes=1), RevocationReason.KEY_COMPROMISE)], crl_number=1)
    revoked = verify_cms(der, DATA, trust_anchors=[pki.root], crls=[crl.der], at=dt.datetime.now(UTC))
    assert not revoked.ok and revoked.check("chain").ok is False
