"""Chain validation: every check passes on a good chain, and each failure reason is reproduced."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from trustsvc.algorithms import SoftwareSigner
from trustsvc.errors import PathValidationError
from trustsvc.pki import (
    Certificate,
    CertificateBuilder,
    CheckStatus,
    RevocationReason,
    RevokedEntry,
    build_crl,
    validate,
    validate_or_raise,
)

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def make_ca(name: str, spec: str = "sm2", issuer: tuple[SoftwareSigner, Certificate] | None = None, *,
            path_length: int | None = None, ca: bool = True, usages: set[str] | None = None,
            start: dt.datetime = NOW - DAY, end: dt.datetime = NOW + 100 * DAY) -> tuple[SoftwareSigner, Certificate]:
    signer = SoftwareSigner.generate(spec)
    builder = (CertificateBuilder().subject(name).public_key(signer.public_key).validity(start, end)
               .basic_constraints(ca, path_length)
               .key_usage(usages if usages is not None else {"key_cert_sign", "crl_sign"}))
    if issuer is None:
        return signer, builder.sign(signer)
    return signer, builder.sign(issuer[0], issuer[1])


def make_leaf(issuer: tuple[SoftwareSigner, Certificate], spec: str = "sm2", *, name: str = "leaf",
              usages: frozenset[str] = frozenset({"digital_signature", "non_repudiation"}),
              eku: list[str] | None = None, start: dt.datetime = NOW - DAY, end: dt.datetime = NOW + 30 * DAY,
              serial: int = 1234, extra: tuple[str, object, bool] | None = None) -> Certificate:
    signer = SoftwareSigner.generate(spec)
    builder = (CertificateBuilder().subject(name).public_key(signer.public_key).serial_number(serial)
               .validity(start, end).basic_constraints(False).key_usage(set(usages)))
    if eku:
        builder = builder.extended_key_usage(eku)
    if extra:
        builder = builder.extension(*extra)
    return builder.sign(issuer[0], issuer[1])


@pytest.fixture(scope="module")
def root() -> tuple[SoftwareSigner, Certificate]:
    return make_ca("Root CA")


@pytest.fixture(scope="module")
def sub(root: tuple[SoftwareSigner, Certificate]) -> tuple[SoftwareSigner, Certificate]:
    return make_ca("Sub CA", issuer=root, path_length=0)


def reasons(result: object) -> set[str]:
    return {c.reason for c in result.failures}  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", ["sm2", "ec-p256", "rsa-2048"])
def test_good_chain_passes_every_check(spec: str) -> None:
    root = make_ca("Root " + spec, spec)
    sub = make_ca("Sub " + spec, spec, root, path_length=0)
    leaf = make_leaf(sub, spec, eku=["client_auth"])
    crl = build_crl(sub[0], sub[1], [], crl_number=1)
    result = validate(leaf, trust_anchors=[root[1]], intermediates=[sub[1]], key_usage=["digitalSignature"],
                      extended_key_usage=["clientAuth"], crls=[crl])
    assert result.valid, result.summary()
    assert [c.subject for c in result.path] == [leaf.subject, sub[1].subject, root[1].subject]
    names = {(c.name, c.depth) for c in result.checks if c.status is CheckStatus.PASS}
    assert {("signature", 0), ("signature", 1), ("validity", 2), ("basic_constraints", 1), ("path_length", 2),
            ("key_usage", 0), ("key_usage", 1), ("extended_key_usage", 0), ("revocation", 0),
            ("trust_anchor", 2)} <= names
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["valid"] is True and doc["reason"] is None and len(doc["path"]) == 3
    assert validate_or_raise(leaf, trust_anchors=[root[1]], intermediates=[sub[1]]).valid


def test_untrusted_root(root, sub) -> None:
    other = make_ca("Other Root")
    result = validate(make_leaf(sub), trust_anchors=[other[1]], intermediates=[sub[1]])
    assert not result.valid and result.reason == "UNTRUSTED_ROOT"
    with pytest.raises(PathValidationError) as err:
        validate_or_raise(make_leaf(sub), trust_anchors=[other[1]], intermediates=[sub[1]])
    assert err.value.reason == "UNTRUSTED_ROOT"


def test_missing_intermediate_is_untrusted(root, sub) -> None:
    assert validate(make_leaf(sub), trust_anchors=[root[1]]).reason == "UNTRUSTED_ROOT"


def test_bad_signature(root) -> None:
    leaf = make_leaf(root)
    der = bytearray(leaf.der)
    der[-3] ^= 0x01  # inside the signature value
    result = validate(Certificate(bytes(der)), trust_anchors=[root[1]])
    assert reasons(result) == {"BAD_SIGNATURE"}
    check = result.check("signature", 0)
    assert check is not None and check.status is CheckStatus.FAIL


def test_tampered_tbs_fails_signature(root) -> None:
    leaf = make_leaf(root, name="leaf-tamper")
    der = leaf.der.replace(b"leaf-tamper", b"leaf-TAMPER")
    assert validate(Certificate(der), trust_anchors=[root[1]]).reason == "BAD_SIGNATURE"


def test_sm2_empty_id_reports_id_mismatch(root) -> None:
    empty_id_signer = SoftwareSigner(root[0]._key, sm2_id=b"")
    leaf = make_leaf((empty_id_signer, root[1]))
    result = validate(leaf, trust_anchors=[root[1]])
    assert result.reason == "SM2_ID_MISMATCH"
    assert "SM2 ID may differ" in result.failures[0].message


def test_expired_and_not_yet_valid(root) -> None:
    leaf = make_leaf(root)
    assert validate(leaf, trust_anchors=[root[1]], at=NOW + 60 * DAY).reason == "EXPIRED"
    assert validate(leaf, trust_anchors=[root[1]], at=NOW - 2 * DAY).reason == "NOT_YET_VALID"
    old_root = make_ca("Old Root", start=NOW - 10 * DAY, end=NOW - 5 * DAY)
    later = make_leaf(old_root, start=NOW - 9 * DAY, end=NOW + 9 * DAY)
    result = validate(later, trust_anchors=[old_root[1]])
    assert reasons(result) == {"EXPIRED"} and result.failures[0].depth == 1


def test_issuer_not_a_ca(root) -> None:
    not_ca = make_ca("Not a CA", issuer=root, ca=False)
    result = validate(make_leaf(not_ca), trust_anchors=[root[1]], intermediates=[not_ca[1]])
    assert "NOT_A_CA" in reasons(result)


def test_path_length_exceeded(root, sub) -> None:
    below = make_ca("Below Sub", issuer=sub)
    result = validate(make_leaf(below), trust_anchors=[root[1]], intermediates=[sub[1], below[1]])
    assert reasons(result) == {"PATH_LENGTH_EXCEEDED"}
    assert result.failures[0].depth == 2


def test_issuer_without_key_cert_sign(root) -> None:
    weak = make_ca("No keyCertSign", issuer=root, usages={"digital_signature", "crl_sign"})
    result = validate(make_leaf(weak), trust_anchors=[root[1]], intermediates=[weak[1]])
    assert reasons(result) == {"KEY_USAGE"}


def test_leaf_key_usage_and_eku(root) -> None:
    leaf = make_leaf(root, usages=frozenset({"digital_signature"}), eku=["client_auth"])
    result = validate(leaf, trust_anchors=[root[1]], key_usage=["non_repudiation"])
    assert reasons(result) == {"KEY_USAGE"}
    result = validate(leaf, trust_anchors=[root[1]], extended_key_usage=["server_auth"])
    assert reasons(result) == {"EXTENDED_KEY_USAGE"}
    no_eku = make_leaf(root)
    result = validate(no_eku, trust_anchors=[root[1]], extended_key_usage=["time_stamping"])
    assert result.reason == "EXTENDED_KEY_USAGE"


def test_unknown_critical_extension(root) -> None:
    leaf = make_leaf(root, extra=("1.2.3.4.5.6", b"\x05\x00", True))
    assert validate(leaf, trust_anchors=[root[1]]).reason == "UNKNOWN_CRITICAL_EXTENSION"


def test_revoked(root) -> None:
    leaf = make_leaf(root, serial=777)
    crl = build_crl(root[0], root[1], [RevokedEntry(777, NOW - DAY / 2, RevocationReason.KEY_COMPROMISE)],
                    crl_number=2, this_update=NOW - DAY + dt.timedelta(minutes=1))
    result = validate(leaf, trust_anchors=[root[1]], crls=[crl])
    assert result.reason == "REVOKED" and "key_compromise" in result.failures[0].message
    # before the revocation date the certificate was still good
    assert validate(leaf, trust_anchors=[root[1]], crls=[crl], at=NOW - DAY * 0.75).valid
    with pytest.raises(PathValidationError) as err:
        validate_or_raise(leaf, trust_anchors=[root[1]], crls=[crl])
    assert err.value.reason == "REVOKED"


def test_a_current_crl_judges_a_past_time(root) -> None:
    """Validating at a past time (a signing time) with today's CRL: revocations dated after that time do not
    count, ones dated before it do; the CRL being newer than the time judged is no problem."""
    leaf = make_leaf(root, serial=779)
    crl = build_crl(root[0], root[1], [RevokedEntry(779, NOW - DAY / 4, RevocationReason.KEY_COMPROMISE)],
                    crl_number=6)
    assert validate(leaf, trust_anchors=[root[1]], crls=[crl], at=NOW - DAY / 2).valid
    assert validate(leaf, trust_anchors=[root[1]], crls=[crl], at=NOW - DAY / 8).reason == "REVOKED"
    assert validate(leaf, trust_anchors=[root[1]], crls=[crl]).reason == "REVOKED"


def test_crl_checks(root) -> None:
    leaf = make_leaf(root, serial=778)
    impostor_signer = SoftwareSigner.generate("sm2")
    impostor = CertificateBuilder().subject("Root CA").public_key(impostor_signer.public_key).sign(impostor_signer)
    forged = build_crl(impostor_signer, impostor, [], crl_number=9)
    assert validate(leaf, trust_anchors=[root[1]], crls=[forged]).reason == "CRL_BAD_SIGNATURE"
    stale = build_crl(root[0], root[1], [], crl_number=3, this_update=NOW - 20 * DAY, next_update=NOW - 10 * DAY)
    assert validate(leaf, trust_anchors=[root[1]], crls=[stale]).reason == "CRL_EXPIRED"
    future = build_crl(root[0], root[1], [], crl_number=4, this_update=NOW + 2 * DAY)
    assert validate(leaf, trust_anchors=[root[1]], crls=[future]).reason == "CRL_NOT_YET_VALID"
    # a good CRL among bad ones is used
    good = build_crl(root[0], root[1], [], crl_number=5)
    assert validate(leaf, trust_anchors=[root[1]], crls=[forged, good]).valid


def test_crl_issuer_without_crl_sign() -> None:
    root = make_ca("No cRLSign Root", usages={"key_cert_sign"})
    leaf = make_leaf(root)
    crl = build_crl(root[0], root[1], [], crl_number=1)
    assert validate(leaf, trust_anchors=[root[1]], crls=[crl]).reason == "CRL_ISSUER_KEY_USAGE"


def test_revocation_required(root) -> None:
    leaf = make_leaf(root)
    result = validate(leaf, trust_anchors=[root[1]])
    assert result.valid and result.check("revocation", 0).status is CheckStatus.SKIPPED  # type: ignore[union-attr]
    assert validate(leaf, trust_anchors=[root[1]], require_revocation=True).reason == "REVOCATION_UNKNOWN"


def test_leaf_that_is_an_anchor(root) -> None:
    assert validate(root[1], trust_anchors=[root[1]]).valid


def test_path_prefers_issuer_whose_signature_verifies(root) -> None:
    # two intermediates with the same name and no key identifiers clash only by name
    real = make_ca("Twin CA", issuer=root)
    twin = make_ca("Twin CA", issuer=root)
    leaf = make_leaf(real)
    result = validate(leaf, trust_anchors=[root[1]], intermediates=[twin[1], real[1]])
    assert result.valid and result.path[1] == real[1]
