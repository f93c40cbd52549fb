"""The daemon over real gRPC with mTLS on loopback: each wired RPC, refusals, errors, deadlines, concurrency."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.algorithms.signer import SoftwareSigner, Verifier
from trustsvc.client import Client, error_reason, signature_pb2
from trustsvc.pki.certificate import Certificate
from trustsvc.server.tls import issue_client_cert

pytestmark = pytest.mark.integration


def _code_reason(exc_info: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str | None]:
    return exc_info.value.code(), error_reason(exc_info.value)


# ------------------------------------------------------------------ SignatureService
def test_health_and_sign_verify_data(client: Client) -> None:
    assert client.check_health() == "SERVING"
    assert client.check_health("trustsvc.v1.SignatureService") == "SERVING"
    resp = client.sign_data("default", b"hello gov")
    assert resp.algorithm == "sm2-sm3" and resp.key_ref.startswith("soft:default@")
    cert = Certificate.load(resp.certificate)
    Verifier(cert.public_key).verify(b"hello gov", resp.signature)
    assert resp.audit.seq > 0
    ok = client.verify_signed_data(b"hello gov", resp.signature, certificate=resp.certificate)
    assert ok.valid
    bad = client.verify_signed_data(b"hello gow", resp.signature, certificate=resp.certificate)
    assert not bad.valid and bad.reason
    by_key = client.verify_signed_data(b"hello gov", resp.signature, key="default")
    assert by_key.valid


def test_sign_message_attached_and_detached(client: Client) -> None:
    attached = client.sign_message("default", b"licence 42")
    res = client.verify_signed_message(attached.cms)
    assert res.result.valid, res.result
    assert res.content == b"licence 42" and res.signer_certificate
    detached = client.sign_message("default", b"licence 43", detached=True)
    assert client.verify_signed_message(detached.cms, b"licence 43").result.valid
    assert not client.verify_signed_message(detached.cms, b"licence 44").result.valid


def test_a_key_whose_certificate_the_ca_revoked_signs_nothing(client: Client, admin: Client,
                                                              running: Running) -> None:
    """The daemon refuses to sign with a key its own CA revoked (FAILED_PRECONDITION KEY_CERTIFICATE_REVOKED);
    a CMS such a key made elsewhere after the revocation fails VerifySignedMessage (REVOKED)."""
    import time

    from trustsvc.pki.ca import DevelopmentCA
    from trustsvc.pki.cms import sign_cms

    admin.create_key("demo-cms-revoked", "sm2")
    assert client.sign_data("demo-cms-revoked", b"before")
    cert = Certificate.load(client.export_cert("demo-cms-revoked").certificate)
    ca = DevelopmentCA.open(running.home / "ca")
    ca.revoke(cert.serial_number)
    running.daemon.rt.forget_signers()  # else within SIGNER_TTL_S
    with pytest.raises(grpc.RpcError) as exc_info:
        client.sign_data("demo-cms-revoked", b"after")
    assert _code_reason(exc_info) == (grpc.StatusCode.FAILED_PRECONDITION, "KEY_CERTIFICATE_REVOKED")
    holder = SoftwareSigner.generate("sm2")
    issued = ca.issue("client", "cms-revoked-elsewhere", public_key=holder.public_key)
    ca.revoke(issued.serial)
    time.sleep(1.1)  # signingTime is whole seconds: signed clearly after the revocation
    cms = sign_cms(holder.with_certificates([issued.certificate.der, ca.certificate.der]), b"cms", detached=True)
    res = client.verify_signed_message(cms, b"cms").result
    assert not res.valid and res.reason == "REVOKED", res


def test_sign_message_gmt0029_flags(client: Client) -> None:
    """hash_given, signer_certificate_only, include_crl, no_signed_attributes: each shapes the CMS as asked, and
    every result verifies (VerifySignedMessage, content or digest)."""
    from asn1crypto import cms

    from trustsvc.algorithms.sm3 import sm3

    def shape(resp: Any) -> tuple[int, int, bool]:
        sd = cms.ContentInfo.load(resp.cms)["content"]
        si = sd["signer_infos"][0]
        return len(sd["certificates"]), len(sd["crls"]) if sd["crls"].native else 0, bool(si["signed_attrs"].native)

    plain = client.sign_message("default", b"flags", detached=True)
    chain, crls, attrs = shape(plain)
    assert chain >= 2 and crls == 0 and attrs
    by_hash = client.sign_message("default", sm3(b"flags"), hash_given=True)
    assert shape(by_hash) == (chain, 0, True)
    one = client.sign_message("default", b"flags", detached=True, signer_certificate_only=True)
    assert shape(one)[0] == 1
    with_crl = client.sign_message("default", b"flags", detached=True, include_crl=True)
    assert shape(with_crl)[1] == 1
    bare = client.sign_message("default", b"flags", no_signed_attributes=True)
    assert shape(bare)[2] is False
    for resp in (plain, by_hash, one, with_crl):
        assert client.verify_signed_message(resp.cms, b"flags").result.valid
    assert client.verify_signed_message(bare.cms).result.valid  # attached
    with pytest.raises(grpc.RpcError) as exc_info:
        client.sign_message("default", b"short", hash_given=True)
    assert _code_reason(exc_info) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_DIGEST_LENGTH")
    with pytest.raises(grpc.RpcError) as exc_info:
        client.sign_message("default", sm3(b"flags"), hash_given=True, no_signed_attributes=True)
    assert _code_reason(exc_info) == (grpc.StatusCode.INVALID_ARGUMENT, "DIGEST_NEEDS_SIGNED_ATTRIBUTES")


def test_streams(client: Client) -> None:
    chunks = [bytes([i]) * 100_000 for i in range(20)]
    resp = client.sign_data_stream("default", iter(chunks))
    Verifier(Certificate.load(resp.certificate).public_key).verify(b"".join(chunks), resp.signature)
    cms = client.sign_message_stream("default", iter(chunks))
    assert client.verify_signed_message(cms.cms, b"".join(chunks)).result.valid


def test_certificates(client: Client) -> None:
    exported = client.export_cert("default")
    assert len(exported.chain) == 2
    parsed = client.parse_cert(exported.certificate)
    assert parsed.common_name == "trustsvc key default" and parsed.serial_number
    assert "digital_signature" in parsed.key_usage
    assert client.validate_cert(exported.certificate).valid
    assert client.validate_cert(exported.certificate, purpose="signing").valid
    root = client.validate_cert(exported.chain[1])  # the root itself: validates as its own anchor
    assert root.valid, root.message


def _failed(result: object) -> list[tuple[str, str]]:
    return [(c.name, c.reason) for c in result.checks if not c.passed]  # type: ignore[attr-defined]


def test_validate_cert_says_which_check_failed(client: Client, running: Running, tmp_path: Path) -> None:
    """Expired, revoked (daemon CA's CRL and a CRL in the request), untrusted, wrong purpose: each named."""
    from trustsvc.pki.ca import DevelopmentCA

    ca = DevelopmentCA.open(running.home / "ca")
    issued = ca.issue("client", "validate-me").certificate.der
    assert client.validate_cert(issued, purpose="client_auth").valid
    wrong = client.validate_cert(issued, purpose="time_stamping")
    assert not wrong.valid and wrong.reason == "EXTENDED_KEY_USAGE"
    late = client.validate_cert(issued, at=dt.datetime.now(dt.UTC) + dt.timedelta(days=800))
    assert not late.valid and late.reason == "EXPIRED" and ("validity[0]", "EXPIRED") in _failed(late)
    to_revoke = ca.issue("client", "revoke-me")
    ca.revoke(to_revoke.serial)
    revoked = client.validate_cert(to_revoke.certificate.der)
    assert not revoked.valid and revoked.reason == "REVOKED" and ("revocation[0]", "REVOKED") in _failed(revoked)

    other = DevelopmentCA.init(tmp_path / "other-ca", name="another CA")
    foreign = other.issue("client", "foreign").certificate.der
    untrusted = client.validate_cert(foreign)
    assert not untrusted.valid and untrusted.reason == "UNTRUSTED_ROOT"
    anchored = client.validate_cert(foreign, trust_anchors=[other.certificate.der])
    assert anchored.valid
    unknown = client.validate_cert(foreign, trust_anchors=[other.certificate.der], require_revocation=True)
    assert not unknown.valid and unknown.reason == "REVOCATION_UNKNOWN"
    foreign_revoked = other.issue("client", "foreign-revoked")
    crl = other.revoke(foreign_revoked.serial)
    by_crl = client.validate_cert(foreign_revoked.certificate.der, trust_anchors=[other.certificate.der],
                                  crls=[crl.to_pem()])
    assert not by_crl.valid and by_crl.reason == "REVOKED"
    assert client.validate_cert(foreign, trust_anchors=[other.certificate.der], crls=[crl.der],
                                require_revocation=True).valid


def test_verify_signed_data_checks_the_certificate_at_each_verify_level(client: Client, running: Running,
                                                                        tmp_path: Path) -> None:
    """GM/T 0029 verifyLevel: 0 validity, 1 + path to the daemon's anchors, 2 + revocation; each check named."""
    from trustsvc.pki.ca import DevelopmentCA

    signed = client.sign_data("default", b"levels")
    good = signed.certificate
    for level in (0, 1, 2):
        res = client.verify_signed_data(b"levels", signed.signature, certificate=good, verify_level=level)
        assert res.valid, (level, res)
    assert {c.name for c in client.verify_signed_data(b"levels", signed.signature, certificate=good,
                                                      verify_level=2).checks} >= {"signature", "revocation[0]"}
    # a certificate the daemon's CA revoked: the signature verifies, level 2 fails it, level 1 does not look
    ca = DevelopmentCA.open(running.home / "ca")
    holder = SoftwareSigner.generate("sm2")
    revoked = ca.issue("client", "levels-revoked", public_key=holder.public_key)
    sig = holder.sign(b"levels")
    ca.revoke(revoked.serial)
    cert = revoked.certificate.der
    assert client.verify_signed_data(b"levels", sig, certificate=cert, verify_level=1).valid
    at2 = client.verify_signed_data(b"levels", sig, certificate=cert, verify_level=2)
    assert not at2.valid and at2.reason == "REVOKED", at2
    # untrusted at level 1; outside its validity already at level 0
    other = DevelopmentCA.init(tmp_path / "other-ca", name="another CA")
    foreign = other.issue("client", "levels-foreign", public_key=holder.public_key)
    fsig = sig
    assert client.verify_signed_data(b"levels", fsig, certificate=foreign.certificate.der, verify_level=0).valid
    at1 = client.verify_signed_data(b"levels", fsig, certificate=foreign.certificate.der, verify_level=1)
    assert not at1.valid and at1.reason == "UNTRUSTED_ROOT", at1
    with pytest.raises(grpc.RpcError) as exc_info:
        client.verify_signed_data(b"levels", fsig, certificate=foreign.certificate.der, verify_level=3)
    assert _code_reason(exc_info) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_VERIFY_LEVEL")


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("certificate", b"\x30\x03\x02\x01\x01", None),
    ("crls", [b"not a crl"], "BAD_CRL"),
    ("purpose", "world_domination", "UNKNOWN_PURPOSE"),
])
def test_validate_cert_refuses_bad_input(client: Client, field: str, value: object, reason: str | None) -> None:
    good = client.export_cert("default").certificate
    req = signature_pb2.ValidateCertRequest(certificate=good)
    if isinstance(value, list):
        getattr(req, field).extend(value)
    else:
        setattr(req, field, value)
    with pytest.raises(grpc.RpcError) as exc_info:
        client.call(client.signature.ValidateCert, req)
    code, got = _code_reason(exc_info)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert got and (reason is None or got == reason)


def test_batch_sign_with_per_item_errors(client: Client) -> None:
    resp = client.batch_sign_data("default", [("a", b"one"), ("b", b""), ("c", b"three")])
    assert [r.id for r in resp.results] == ["a", "b", "c"]
    assert resp.results[1].WhichOneof("outcome") == "error"
    assert resp.results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    key = Certificate.load(client.export_cert("default").certificate).public_key
    Verifier(key).verify(b"one", resp.results[0].signature)
    Verifier(key).verify(b"three", resp.results[2].signature)


def test_idempotency(client: Client, running: Running) -> None:
    first = client.sign_data("default", b"pay 100", idempotency_key="k-1")
    again = client.sign_data("default", b"pay 100", idempotency_key="k-1")
    assert again.signature == first.signature and again.audit.seq == first.audit.seq
    with pytest.raises(grpc.RpcError) as err:
        client.sign_data("default", b"pay 999", idempotency_key="k-1")
    assert _code_reason(err) == (grpc.StatusCode.FAILED_PRECONDITION, "IDEMPOTENCY_KEY_REUSED")
    # another client may use the same key for its own request
    with running.client("admin") as other:
        assert other.sign_data("default", b"pay 999", idempotency_key="k-1").signature


def test_an_idempotency_key_is_forgotten_after_retention(client: Client, running: Running) -> None:
    assert running.daemon.housekeeper._thread is not None and running.daemon.housekeeper._thread.is_alive()
    first = client.sign_data("default", b"pay 100", idempotency_key="k-retained")
    with running.db.transaction() as tx:  # a day passes
        tx.execute("UPDATE idempotency SET created = ? WHERE idem_key = ?",
                   ("2000-01-01T00:00:00.000000+00:00", "k-retained"))
    assert running.daemon.housekeeper.run_once()["idempotency_keys"] == 1
    again = client.sign_data("default", b"pay 100", idempotency_key="k-retained")
    assert again.audit.seq > first.audit.seq  # signed anew, and remembered again
    assert client.sign_data("default", b"pay 100", idempotency_key="k-retained").audit.seq == again.audit.seq


def _audit_head(running: Running) -> int:
    with running.db.read() as tx:
        return int(tx.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()[0])


def _idempotent_calls() -> dict[str, tuple[str, str, Any, Any]]:
    """RPC -> (identity, stub attribute, method, request builder taking (key, variant))."""
    from trustsvc.client import document_pb2, seal_pb2, timestamp_pb2, token_pb2
    from trustsvc.pdf.devkit import licence_pdf

    pdf = licence_pdf()

    def opts(key: str) -> Any:
        return document_pb2.PdfSignOptions(key="default", reason="idempotent", idempotency_key=key)

    sp, ss = signature_pb2, "signature"
    return {
        "SignMessage": ("demo-client", ss, "SignMessage",
                        lambda k, v: sp.SignMessageRequest(key="default", data=b"m" + v, idempotency_key=k)),
        "BatchSignData": ("demo-client", ss, "BatchSignData", lambda k, v: sp.BatchSignDataRequest(
            key="default", items=[sp.BatchSignDataRequest.Item(id="a", data=b"b" + v)], idempotency_key=k)),
        "IssueToken": ("demo-client", "tokens", "IssueToken", lambda k, v: token_pb2.IssueTokenRequest(
            subject="110101199001011234", audience=["portal", v.decode()], idempotency_key=k)),
        "SignWithSeal": ("demo-client", "seals", "SignWithSeal", lambda k, v: seal_pb2.SignWithSealRequest(
            seal_id="", data=b"s" + v, idempotency_key=k)),
        "MakeSeal": ("admin", "seals", "MakeSeal", lambda k, v: seal_pb2.MakeSealRequest(
            name="幂等测试章" + v.decode(), type=4, valid_days=30, idempotency_key=k)),
        "CreateTimeStamp": ("demo-client", "timestamps", "CreateTimeStamp",
                            lambda k, v: timestamp_pb2.CreateTimeStampRequest(data=b"t" + v, idempotency_key=k)),
        "SignPdf": ("demo-client", "documents", "SignPdf",
                    lambda k, v: document_pb2.SignPdfRequest(options=opts(k), pdf=pdf + b"%" + v + b"\n")),
        "BatchSignPdf": ("demo-client", "documents", "BatchSignPdf", lambda k, v: document_pb2.BatchSignPdfRequest(
            options=opts(k), items=[document_pb2.BatchSignPdfRequest.Item(id="p", pdf=pdf + b"%" + v + b"\n")])),
    }


@pytest.mark.parametrize("rpc", sorted(_idempotent_calls()))
def test_a_retry_with_the_idempotency_key_never_acts_twice(rpc: str, running: Running) -> None:
    """The same request under the same key: the stored reply, byte for byte, and no new audit record;
    another request under that key: FAILED_PRECONDITION IDEMPOTENCY_KEY_REUSED."""
    identity, stub_name, method, build = _idempotent_calls()[rpc]
    with running.client(identity) as c:
        call = getattr(getattr(c, stub_name), method)
        key = f"idem-{rpc}"
        first_req = build(key, b"1")
        if rpc == "SignWithSeal":
            from trustsvc.client import seal_pb2

            first_req.seal_id = c.call(c.seals.ListSeals, seal_pb2.ListSealsRequest()).seals[0].seal_id
        first = c.call(call, first_req)
        head = _audit_head(running)
        again = c.call(call, first_req)
        assert again.SerializeToString(deterministic=True) == first.SerializeToString(deterministic=True)
        assert _audit_head(running) == head, "the retry wrote an audit record: it acted again"
        other_req = build(key, b"2")
        if rpc == "SignWithSeal":
            other_req.seal_id = first_req.seal_id
        with pytest.raises(grpc.RpcError) as err:
            c.call(call, other_req)
        assert _code_reason(err) == (grpc.StatusCode.FAILED_PRECONDITION, "IDEMPOTENCY_KEY_REUSED")


# ------------------------------------------------------------------ TokenService
def test_token_lifecycle(client: Client) -> None:
    import json

    from trustsvc.client import token_pb2

    issued = client.call(client.tokens.IssueToken, token_pb2.IssueTokenRequest(
        subject="110101199001011234", audience=["portal"], scopes=["licence.read"], ttl_seconds=300,
        idempotency_key="tok-1"))
    assert issued.token.count(".") == 2 and issued.token_id and issued.audit.seq
    again = client.call(client.tokens.IssueToken, token_pb2.IssueTokenRequest(
        subject="110101199001011234", audience=["portal"], scopes=["licence.read"], ttl_seconds=300,
        idempotency_key="tok-1"))
    assert again.token == issued.token
    ok = client.call(client.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=issued.token, audience="portal"))
    assert ok.result.valid and ok.claims["sub"] == "110101199001011234"
    wrong = client.call(client.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=issued.token, audience="x"))
    assert not wrong.result.valid and wrong.result.reason == "WRONG_AUDIENCE"
    unnamed = client.call(client.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=issued.token))
    assert not unnamed.result.valid and unnamed.result.reason == "AUDIENCE_NOT_GIVEN"  # RFC 7519 4.1.3
    intro = client.call(client.tokens.IntrospectToken, token_pb2.IntrospectTokenRequest(token=issued.token))
    assert intro.active and intro.claims["scope"] == "licence.read"
    jwks = json.loads(client.call(client.tokens.GetJwks, token_pb2.GetJwksRequest()).jwks_json)
    assert jwks["keys"]
    client.call(client.tokens.RevokeToken, token_pb2.RevokeTokenRequest(token=issued.token, reason="test"))
    after = client.call(client.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=issued.token,
                                                                                 audience="portal"))
    assert after.result.reason == "REVOKED"
    assert not client.call(client.tokens.IntrospectToken,
                           token_pb2.IntrospectTokenRequest(token=issued.token)).active


def test_only_token_keys_issue_and_every_one_is_published(client: Client, tmp_path: Path) -> None:
    """token_extra_keys: an ES256 and an EdDSA key issue tokens that PyJWT verifies from GetJwks alone; a key
    outside the token keys is refused (its kid would be in no published key set)."""
    import jwt

    from trustsvc.client import token_pb2
    from trustsvc.keys.factory import open_keystore

    store = open_keystore("soft", tmp_path)
    store.create("demo-es", "ec-p256")
    store.create("demo-ed", "ed25519")
    r = start_daemon(tmp_path, token_extra_keys="demo-es, demo-ed")
    try:
        with r.client() as c:
            jwks = json.loads(c.call(c.tokens.GetJwks, token_pb2.GetJwksRequest()).jwks_json)
            published = {k["kid"]: k for k in jwks["keys"]}
            for key, alg in (("demo-es", "ES256"), ("demo-ed", "EdDSA"), ("", "SM2")):
                issued = c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(
                    subject="91110000600037341L", audience=["portal"], key=key))
                header = jwt.get_unverified_header(issued.token)
                assert header["alg"] == alg and header["kid"] in published
                assert c.call(c.tokens.VerifyToken, token_pb2.VerifyTokenRequest(
                    token=issued.token, audience="portal")).result.valid
                if alg != "SM2":  # PyJWT knows no SM2
                    public = jwt.PyJWK(published[header["kid"]]).key
                    assert jwt.decode(issued.token, public, algorithms=[alg], audience="portal")["sub"]
            with pytest.raises(grpc.RpcError) as err:
                c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(subject="u", audience=["a"], key="default"))
            assert _code_reason(err) == (grpc.StatusCode.INVALID_ARGUMENT, "NOT_A_TOKEN_KEY")
    finally:
        r.daemon.stop(2)


# ------------------------------------------------------------------ TimeStampService
def test_timestamps(client: Client) -> None:
    import hashlib

    from trustsvc.client import timestamp_pb2
    from trustsvc.tsa import make_request

    created = client.call(client.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(data=b"doc"))
    assert created.timestamp_token and created.serial_number and created.audit.seq
    ok = client.call(client.timestamps.VerifyTimeStamp, timestamp_pb2.VerifyTimeStampRequest(
        timestamp_token=created.timestamp_token, data=b"doc"))
    assert ok.result.valid, ok.result
    bad = client.call(client.timestamps.VerifyTimeStamp, timestamp_pb2.VerifyTimeStampRequest(
        timestamp_token=created.timestamp_token, data=b"dog"))
    assert not bad.result.valid
    req = make_request(digest=hashlib.sha256(b"doc").digest(), hash_alg="sha256")
    from_req = client.call(client.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(
        timestamp_request=req.der))
    assert from_req.timestamp_response and from_req.timestamp_token


def test_verify_timestamp_sees_the_daemon_cas_revocations(client: Client, running: Running) -> None:
    """A token from a TSA whose certificate the daemon's CA revoked fails VerifyTimeStamp (REVOKED)."""
    from trustsvc.client import timestamp_pb2
    from trustsvc.pki.ca import DevelopmentCA
    from trustsvc.tsa import LocalTsa

    ca = DevelopmentCA.open(running.home / "ca")
    key = SoftwareSigner.generate("sm2")
    issued = ca.issue("tsa", "revoked tsa", public_key=key.public_key)
    token = LocalTsa(key.with_certificates([issued.certificate.der, ca.certificate.der])).timestamp(b"doc")

    def verify() -> Any:
        return client.call(client.timestamps.VerifyTimeStamp, timestamp_pb2.VerifyTimeStampRequest(
            timestamp_token=token, data=b"doc")).result

    assert verify().valid
    ca.revoke(issued.serial)
    after = verify()
    assert not after.valid and after.reason == "REVOKED", after


# ------------------------------------------------------------------ SealService
def test_list_seals_pages(client: Client, admin: Client) -> None:
    from trustsvc.client import seal_pb2

    admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="分页测试章", type=4, valid_days=30))
    every = [s.seal_id for s in client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest()).seals]
    assert len(every) >= 2
    paged, token = [], ""
    while True:
        page = client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest(page_size=1, page_token=token))
        paged += [s.seal_id for s in page.seals]
        token = page.next_page_token
        if not token:
            break
    assert paged == every
    first = client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest(page_size=1))
    for bad in ("abc", "-1", "1", "eyJhZnRlciI6MX0", "x" * 2000):
        with pytest.raises(grpc.RpcError) as err:
            client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest(page_token=bad))
        assert _code_reason(err) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_PAGE_TOKEN")
    with pytest.raises(grpc.RpcError) as err:  # a token belongs to the filter it was handed out for
        client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest(page_token=first.next_page_token,
                                                                     state="suspended"))
    assert _code_reason(err) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_PAGE_TOKEN")
    with pytest.raises(grpc.RpcError) as err:
        client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest(state="lost"))
    assert _code_reason(err) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_SEAL_STATE")


def test_a_change_between_pages_neither_skips_nor_repeats(admin: Client) -> None:
    from trustsvc.client import seal_pb2

    a, b = (admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name=f"翻页章{i}", type=4, valid_days=30)).seal
            for i in (1, 2))
    seen, token = [], ""
    while a.seal_id not in seen:
        page = admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest(page_size=1, state="active",
                                                                           page_token=token))
        seen += [s.seal_id for s in page.seals]
        token = page.next_page_token
    admin.call(admin.seals.RevokeSeal, seal_pb2.RevokeSealRequest(seal_id=a.seal_id, reason="between pages"))
    page = admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest(page_size=1, state="active", page_token=token))
    assert [s.seal_id for s in page.seals] == [b.seal_id]  # an offset would have skipped it


def test_seal_lifecycle_and_signing(client: Client, admin: Client) -> None:
    from trustsvc.client import seal_pb2

    listed = client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest()).seals
    assert listed, "the embedded default makes a demo seal"
    made = admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="测试合同专用章", type=4, valid_days=30))
    seal_id = made.seal.seal_id
    assert made.seal.state == "active" and made.seal.seal_der
    got = client.call(client.seals.GetSeal, seal_pb2.GetSealRequest(seal_id=seal_id))
    assert got.seal.name == "测试合同专用章"
    signed = client.call(client.seals.SignWithSeal, seal_pb2.SignWithSealRequest(
        seal_id=seal_id, data=b"contract text", property_info="contract-7"))
    ok = client.call(client.seals.VerifySealSignature, seal_pb2.VerifySealSignatureRequest(
        ses_signature=signed.ses_signature, data=b"contract text"))
    assert ok.result.valid, ok.result
    assert ok.seal_id == seal_id
    stamped = client.call(client.seals.SignWithSeal, seal_pb2.SignWithSealRequest(
        seal_id=seal_id, data=b"contract text", with_timestamp=True))
    from trustsvc.seal.parse import parse_signature

    assert parse_signature(stamped.ses_signature).time_stamp is not None  # was ignored: no timeStamp at all
    ok = client.call(client.seals.VerifySealSignature, seal_pb2.VerifySealSignatureRequest(
        ses_signature=stamped.ses_signature, data=b"contract text"))
    ts_check = next(c for c in ok.result.checks if c.name == "signature.timestamp")
    assert ok.result.valid and (ts_check.passed, ts_check.reason) == (True, "OK"), ts_check  # checked, trusted
    bad = client.call(client.seals.VerifySealSignature, seal_pb2.VerifySealSignatureRequest(
        ses_signature=signed.ses_signature, data=b"contract text!"))
    assert not bad.result.valid and bad.result.reason
    with pytest.raises(grpc.RpcError) as err:  # lifecycle is for admins under the default policy
        client.call(client.seals.SuspendSeal, seal_pb2.SuspendSealRequest(seal_id=seal_id))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin.call(admin.seals.SuspendSeal, seal_pb2.SuspendSealRequest(seal_id=seal_id, reason="audit"))
    with pytest.raises(grpc.RpcError) as err:
        client.call(client.seals.SignWithSeal, seal_pb2.SignWithSealRequest(seal_id=seal_id, data=b"x"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err.value) == "SEAL_NOT_ACTIVE"
    admin.call(admin.seals.ResumeSeal, seal_pb2.ResumeSealRequest(seal_id=seal_id))
    assert client.call(client.seals.SignWithSeal, seal_pb2.SignWithSealRequest(seal_id=seal_id, data=b"x"))
    admin.call(admin.seals.RevokeSeal, seal_pb2.RevokeSealRequest(seal_id=seal_id, reason="done"))
    after = client.call(client.seals.VerifySealSignature, seal_pb2.VerifySealSignatureRequest(
        ses_signature=signed.ses_signature, data=b"contract text"))
    assert not after.result.valid


# ------------------------------------------------------------------ DocumentService
def test_pdf_pades_levels(client: Client) -> None:
    """PdfSignOptions.level: B-LT and B-LTA carry the daemon CA's CRL and certificates in the DSS (B-LTA a
    document time stamp too) and verify at their level; a bad level and a batch above B-B are refused."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    from trustsvc.client import document_pb2
    from trustsvc.pdf.devkit import licence_pdf

    def sign(level: str) -> bytes:
        opts = document_pb2.PdfSignOptions(key="default", level=level)
        return bytes(client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts,
                                                                                        pdf=licence_pdf())).pdf)

    for level in ("B-B", "B-T", "B-LT", "B-LTA"):
        signed = sign(level)
        report = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=signed))
        assert report.result.valid, (level, report.report_json)
        assert json.loads(report.report_json)["signatures"][0]["pades_level"] == level
        root = PdfFileReader(io.BytesIO(signed)).root
        assert ("/DSS" in root) is (level in ("B-LT", "B-LTA")), level
        if "/DSS" in root:
            assert len(root["/DSS"]["/CRLs"]) >= 1 and len(root["/DSS"]["/Certs"]) >= 2, level
    with pytest.raises(grpc.RpcError) as exc_info:
        sign("B-Z")
    assert _code_reason(exc_info) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_PADES_LEVEL")
    with pytest.raises(grpc.RpcError) as exc_info:
        client.call(client.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(
            options=document_pb2.PdfSignOptions(key="default", level="B-LT"),
            items=[document_pb2.BatchSignPdfRequest.Item(id="a", pdf=licence_pdf())]))
    assert _code_reason(exc_info) == (grpc.StatusCode.INVALID_ARGUMENT, "BATCH_OPTION_UNSUPPORTED")


def test_verify_pdf_sees_the_daemon_cas_revocations(client: Client, admin: Client, running: Running) -> None:
    """VerifyPdf checks the signer against the daemon CA's current CRL: a B-B signature whose certificate was
    revoked since fails its revocation check."""
    from trustsvc.client import document_pb2
    from trustsvc.pdf.devkit import licence_pdf
    from trustsvc.pki.ca import DevelopmentCA

    admin.create_key("demo-pdf-revoked", "sm2")
    opts = document_pb2.PdfSignOptions(key="demo-pdf-revoked")
    signed = client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=licence_pdf())).pdf

    def verify() -> Any:
        return client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=signed))

    assert verify().result.valid
    cert = Certificate.load(client.export_cert("demo-pdf-revoked").certificate)
    DevelopmentCA.open(running.home / "ca").revoke(cert.serial_number)
    after = verify()
    assert not after.result.valid and after.result.reason == "REVOCATION", after.report_json


def test_pdf_sign_verify_stream_batch(client: Client, running: Running) -> None:
    from trustsvc.client import document_pb2
    from trustsvc.pdf.devkit import licence_pdf

    pdf = licence_pdf()
    opts = document_pb2.PdfSignOptions(key="default", reason="licence issued", location="Beijing")
    signed = client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=pdf))
    assert signed.pdf.startswith(b"%PDF") and len(signed.pdf) > len(pdf) and signed.audit.seq
    report = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=signed.pdf))
    assert report.result.valid, report.report_json
    tampered = bytearray(signed.pdf)
    tampered[len(pdf) // 2] ^= 1
    assert not client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=bytes(tampered))).result.valid

    def gen():
        yield document_pb2.SignPdfStreamRequest(options=opts)
        for i in range(0, len(pdf), 4096):
            yield document_pb2.SignPdfStreamRequest(chunk=pdf[i:i + 4096])
    parts = list(client.documents.SignPdfStream(gen(), timeout=60))
    streamed = b"".join(p.chunk for p in parts[:-1])
    assert parts[-1].summary.document_sha256 and not parts[-1].summary.pdf
    assert client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=streamed)).result.valid

    batch = client.call(client.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(
        options=document_pb2.PdfSignOptions(key="default"),
        items=[document_pb2.BatchSignPdfRequest.Item(id="a", pdf=pdf),
               document_pb2.BatchSignPdfRequest.Item(id="b", pdf=b"not a pdf"),
               document_pb2.BatchSignPdfRequest.Item(id="c", pdf=licence_pdf(text="second"))]))
    outcomes = {r.id: r.WhichOneof("outcome") for r in batch.results}
    assert outcomes == {"a": "pdf", "b": "error", "c": "pdf"}
    (rec,) = running.daemon.rt.audit.records(after=batch.audit.seq - 1, limit=1)  # one record for the batch
    items = json.loads(rec.detail)["items"]
    assert [(i, h, outcome != "ok") for i, h, outcome in items] == [
        ("a", hashlib.sha256(pdf).hexdigest(), False), ("b", hashlib.sha256(b"not a pdf").hexdigest(), True),
        ("c", items[2][1], False)]
    assert rec.result == "partial" and rec.operation == "DocumentService/BatchSignPdf"
    for r in batch.results:
        if r.WhichOneof("outcome") == "pdf":
            assert client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=r.pdf)).result.valid


# ------------------------------------------------------------------ KeyService
def test_admin_key_lifecycle(admin: Client, client: Client) -> None:
    created = admin.create_key("demo-rot", "sm2")
    assert created.version == 1 and created.state == "active" and created.certificate_chain
    rotated = admin.rotate_key("demo-rot")
    assert rotated.version == 2
    states = {k.version: k.state for k in admin.list_keys("demo-rot")}
    assert states == {1: "passive", 2: "active"}
    assert client.sign_data("demo-rot", b"x").key_ref.endswith("@2")
    admin.disable_key("demo-rot")
    with pytest.raises(grpc.RpcError) as err:
        client.sign_data("demo-rot", b"x")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        admin.create_key("demo-rot")
    assert err.value.code() in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION)


def test_key_admin_with_idempotency_key_never_acts_twice(admin: Client) -> None:
    created = admin.create_key("demo-idem", "sm2", idempotency_key="create-demo-idem")
    again = admin.create_key("demo-idem", "sm2", idempotency_key="create-demo-idem")  # a retry: no ALREADY_EXISTS
    assert (again.version, again.public_key) == (created.version, created.public_key) == (1, created.public_key)
    first = admin.rotate_key("demo-idem", idempotency_key="rotate-1")
    retried = admin.rotate_key("demo-idem", idempotency_key="rotate-1")
    assert first.version == retried.version == 2
    assert sorted(k.version for k in admin.list_keys("demo-idem")) == [1, 2]
    assert admin.rotate_key("demo-idem", idempotency_key="rotate-2").version == 3
    with pytest.raises(grpc.RpcError) as err:  # the same key for another request is refused
        admin.rotate_key("demo-rot-other", idempotency_key="rotate-1")
    assert err.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
                                grpc.StatusCode.ALREADY_EXISTS)


# ------------------------------------------------------------------ refusals
def test_no_certificate_refused(running: Running) -> None:
    ca = (running.home / "tls" / "ca.pem").read_bytes()
    c = Client(running.target, ca=ca, server_name="localhost", timeout=5, retries=0)
    with pytest.raises(grpc.RpcError) as err:
        c.sign_data("default", b"x")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    c.close()


def test_unknown_certificate_refused(running: Running, tmp_path: Path) -> None:
    from trustsvc.pki.ca import DevelopmentCA

    rogue = DevelopmentCA.init(tmp_path / "rogue", key_type="ec-p256")
    issued = rogue.issue("client", "admin", key_type="ec-p256")
    assert issued.private_key is not None
    c = Client(running.target, ca=(running.home / "tls" / "ca.pem").read_bytes(), cert=issued.certificate.to_pem(),
               key=private_key_to_pem(issued.private_key), server_name="localhost", timeout=5, retries=0)
    with pytest.raises(grpc.RpcError) as err:
        c.sign_data("default", b"x")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    c.close()


def test_outside_policy_refused(running: Running, client: Client) -> None:
    issue_client_cert(running.home, "stranger")
    with running.client("stranger") as stranger:
        with pytest.raises(grpc.RpcError) as err:
            stranger.sign_data("default", b"x")
        assert _code_reason(err) == (grpc.StatusCode.PERMISSION_DENIED, "UNKNOWN_CLIENT")
    with pytest.raises(grpc.RpcError) as err:
        client.list_keys()
    assert _code_reason(err) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED")
    with pytest.raises(grpc.RpcError) as err:
        client.sign_data("audit", b"x")
    assert _code_reason(err) == (grpc.StatusCode.PERMISSION_DENIED, "KEY_NOT_ALLOWED")


# ------------------------------------------------------------------ malformed, deadlines
def test_malformed_requests(client: Client) -> None:
    cases = [
        (client.signature.SignData, signature_pb2.SignDataRequest(data=b"x"), "MISSING_FIELD"),
        (client.signature.ParseCert, signature_pb2.ParseCertRequest(certificate=b"\x30\x03junk"), None),
        (client.signature.VerifySignedMessage, signature_pb2.VerifySignedMessageRequest(cms=b"nope"), None),
        (client.signature.SignData, signature_pb2.SignDataRequest(key="default@x", data=b"x"), "BAD_KEY_REF"),
        (client.signature.VerifySignedData, signature_pb2.VerifySignedDataRequest(signature=b"s", public_key=b"pk"),
         None),
    ]
    for method, request, reason in cases:
        with pytest.raises(grpc.RpcError) as err:
            method(request, timeout=10)
        code, got = _code_reason(err)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (request, code, err.value.details())
        assert got, "ErrorInfo reason missing"
        if reason:
            assert got == reason


def test_stream_without_init(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.signature.SignDataStream(iter([signature_pb2.SignDataStreamRequest(chunk=b"x")]), timeout=10)
    assert _code_reason(err) == (grpc.StatusCode.INVALID_ARGUMENT, "STREAM_INIT_MISSING")


def test_unknown_key_not_found(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.sign_data("demo-missing", b"x")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and error_reason(err.value)


def test_deadline_honoured(client: Client) -> None:
    items = [(str(i), b"x" * 64) for i in range(3000)]
    with pytest.raises(grpc.RpcError) as err:
        client.batch_sign_data("default", items, timeout=0.005)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert client.check_health() == "SERVING"


def test_32_concurrent_clients(running: Running) -> None:
    key = None
    with running.client() as c:
        key = Certificate.load(c.export_cert("default").certificate).public_key

    def work(n: int) -> int:
        ok = 0
        with running.client() as c:
            for i in range(4):
                msg = f"client {n} message {i}".encode()
                sig = c.sign_data("default", msg).signature
                Verifier(key).verify(msg, sig)
                ok += 1
        return ok

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        assert sum(pool.map(work, range(32))) == 128


def test_service_without_library_stops_the_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No placeholder services: a service whose module cannot be imported keeps the daemon from starting."""
    from trustsvc.server import app

    patched = [(p, s, "trustsvc.server.services.not_landed:X" if s == "TokenService" else i, lib)
               for p, s, i, lib in app.SERVICES]
    monkeypatch.setattr(app, "SERVICES", patched)
    with pytest.raises(ImportError) as err:
        start_daemon(tmp_path / "home")
    assert "TokenService" in str(err.value) and "trustsvc.server.services.not_landed" in str(err.value)


def test_large_message_stream(client: Client) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    cms = client.sign_message_stream("default", (chunk for _ in range(50)), timeout=120)  # 50 MiB, digest only
    assert client.verify_signed_message(cms.cms, chunk * 50, timeout=120).result.valid
