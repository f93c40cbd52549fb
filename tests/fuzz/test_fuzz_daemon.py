"""Fuzz the daemon's request handling: every RPC of every service, over mTLS as the admin identity.

Requests are built from the generated descriptors (random and slightly mutated bytes made by the daemon
itself: DER, PEM, CMS, PDF, tokens, SES_Signature, time stamps; known key and seal names; any integers,
doubles, nested messages, oneofs; for client streams no parts, a valid first part then garbage, or
garbage). Whatever comes in, the status is never INTERNAL or UNKNOWN, every refusal carries an ErrorInfo
reason, a verification is a result or INVALID_ARGUMENT; afterwards the daemon still serves, its audit log
verifies (no partial write) and the keys the tests rely on still sign.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf import timestamp_pb2 as gtimestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.test_fuzz_cms import extensions_tag_as
from tests.fuzz.test_fuzz_pdf import flate_bomb_pdf
from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc import codegen
from trustsvc.algorithms.sm3 import sm3
from trustsvc.audit import verify_log
from trustsvc.client import (
    Client,
    document_pb2,
    error_reason,
    key_pb2,
    seal_pb2,
    signature_pb2,
    timestamp_pb2,
    token_pb2,
)
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.seal.picture import render_png
from trustsvc.tsa.client import make_request

# CI keeps 40 examples per RPC; explore locally with more (TRUSTSVC_FUZZ_EXAMPLES=2000 HYPOTHESIS_PROFILE=explore)
SETTINGS = settings(max_examples=int(os.environ.get("TRUSTSVC_FUZZ_EXAMPLES", "40")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CALL_TIMEOUT = 10.0
REASON = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
KEPT_KEYS = ("default", "token", "audit")
# RPCs that answer with a VerificationResult: a result (valid or not), else a precise refusal of the input
VERIFICATIONS = {"VerifySignedData", "VerifySignedDataStream", "VerifySignedMessage", "VerifySignedMessageStream",
                 "ValidateCert", "VerifyToken", "VerifySealSignature", "VerifyPdf", "VerifyTimeStamp"}


def _methods() -> list[tuple[str, MethodDescriptor, Any]]:
    """(module, method, grpc module) for every RPC the protos declare."""
    out = []
    for name in codegen.MODULES:
        pb, pb_grpc = codegen.load(name)
        for service in pb.DESCRIPTOR.services_by_name.values():
            out.extend((name, m, pb_grpc) for m in service.methods)
    return out


METHODS = _methods()


@dataclasses.dataclass(repr=False)
class Corpus:
    """Valid inputs the daemon made, by kind (field names pick their kind), and the names it knows."""

    blobs: dict[str, list[bytes]]
    texts: dict[str, list[str]]
    first_parts: dict[str, list[Any]]  # client-stream RPC -> valid first parts
    templates: dict[str, list[Any]]  # unary RPC -> valid requests
    protected_keys: frozenset[str]
    demo_seal: str
    fuzz_seal: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    r = start_daemon(tmp_path_factory.mktemp("fuzz-daemon"))
    yield r
    r.daemon.stop(2)


@pytest.fixture(scope="module")
def admin(running: Running) -> Iterator[Client]:
    with running.client("admin", timeout=CALL_TIMEOUT) as c:
        yield c


@pytest.fixture(scope="module")
def corpus(admin: Client) -> Corpus:
    data = b"hello"
    sig = admin.sign_data("default", data)
    attached = admin.sign_message("default", data).cms
    detached = admin.sign_message("default", data, detached=True).cms
    exported = admin.export_cert("default")
    tsa_chain = list(admin.export_cert("tsa").chain)
    keys = admin.list_keys()
    issued = admin.call(admin.tokens.IssueToken, token_pb2.IssueTokenRequest(subject="fuzz", audience=["app"]))
    seals = admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest()).seals
    demo = seals[0]
    fuzz_seal = admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="fuzz seal")).seal
    first_page = admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest(page_size=1, state="active"))
    next_page = first_page.next_page_token
    ses = admin.call(admin.seals.SignWithSeal, seal_pb2.SignWithSealRequest(seal_id=demo.seal_id, data=data))
    stamp = admin.call(admin.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(data=data))
    pdf = licence_pdf()
    options = document_pb2.PdfSignOptions(key="default")
    signed_pdf = admin.call(admin.documents.SignPdf, document_pb2.SignPdfRequest(options=options, pdf=pdf)).pdf
    cert = exported.certificate
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(cert) + b"-----END CERTIFICATE-----\n"
    blobs = {
        "cert": [cert, pem, *exported.chain, *tsa_chain],
        "spki": [k.public_key for k in keys[:4]],
        "sig": [sig.signature],
        "cms": [attached, detached],
        "pdf": [pdf, signed_pdf],
        "ses": [ses.ses_signature],
        "seal": [demo.seal_der],
        "tst": [stamp.timestamp_token, stamp.timestamp_response],
        "tsq": [make_request(data).der, make_request(data, hash_alg="sha256").der],
        "data": [data, sm3(data), hashlib.sha256(data).digest(), b""],
        "sm2_id": [b"1234567812345678", b"alice"],
        "picture": [render_png("x", diameter_mm=8, dpi=72), b"<svg xmlns='http://www.w3.org/2000/svg'/>"],
    }
    names = [k.name for k in keys]
    texts = {
        "key": [*names, "default@1", "default@999", "nope", "demo-x", "default@", "@1", "default@x"],
        "seal_id": [demo.seal_id, fuzz_seal.seal_id, "TS0", "nope"],
        "token": [issued.token, issued.token + "x", issued.token.rsplit(".", 1)[0] + ".", "a.b.c"],
        "token_id": [issued.token_id, "nope"],
        "spec": ["sm2", "ec-p256", "ed25519", "ec-p384", "nope"],
        "purpose": ["", "signing", "non_repudiation", "time_stamping", "server_auth", "client_auth", "x"],
        "hash_algorithm": ["sm3", "sha256", "sha384", "sha512", "sha1", "md5", "shake_128", "blake2b", "x"],
        "algorithm": ["sm2-sm3", "ecdsa-p256-sha256", "ed25519", "rsa-pss-sha256", "x"],
        "picture_type": ["PNG", "SVG", "GIF", "png", "OFD", "x"],
        "state": ["active", "suspended", "revoked", "x"],
        "page_token": [next_page, "0", "1", "99999999999999999999", "-1", "x", "\u00b2", "\u0661",
                       next_page[:-1], next_page + "=", base64.urlsafe_b64encode(b'{"after":"","state":"x"}').decode()],
        "audience": ["app", "trustsvc"],
        "field_name": ["Signature1", "sig", ""],
        "anchor_text": ["licence", "x"],
        "long": ["x" * 100, "\u5370" * 70, "a" * 5000],
    }
    first_parts = {
        "SignDataStream": [signature_pb2.SignDataStreamRequest(init=signature_pb2.SignStreamInit(key="default"))],
        "SignMessageStream": [signature_pb2.SignMessageStreamRequest(
            init=signature_pb2.SignStreamInit(key="default"))],
        "VerifySignedDataStream": [signature_pb2.VerifySignedDataStreamRequest(
            init=signature_pb2.VerifySignedDataRequest(signature=sig.signature, key="default"))],
        "VerifySignedMessageStream": [signature_pb2.VerifySignedMessageStreamRequest(cms=detached)],
        "SignPdfStream": [document_pb2.SignPdfStreamRequest(options=options), document_pb2.SignPdfStreamRequest(
            options=document_pb2.PdfSignOptions(key="default", seal_id=demo.seal_id, rect=[100, 100, 200, 200]))],
    }
    return Corpus(blobs, texts, first_parts, _templates(blobs, texts, demo.seal_id, fuzz_seal.seal_id),
                  frozenset(names), demo.seal_id, fuzz_seal.seal_id)


def _templates(blobs: dict[str, list[bytes]], texts: dict[str, list[str]], demo: str,
               fuzz: str) -> dict[str, list[Any]]:
    """Valid requests for the unary RPCs, which the fuzzer then changes field by field (to get past the first check)."""
    s, k, t, se, d, ts = signature_pb2, key_pb2, token_pb2, seal_pb2, document_pb2, timestamp_pb2
    data, cert, tsq = b"hello", blobs["cert"][0], blobs["tsq"][0]
    pdf, signed_pdf = blobs["pdf"]
    visible = d.PdfSignOptions(key="default", seal_id=demo, page=0, rect=[100, 100, 200, 200])
    licence = d.LicenceMetadata(licence_type="营业执照", licence_number="L-1", holder_name="持证单位", holder_id="X",
                                issuing_authority="市场监督管理局", issue_date="2024-05-01", valid_until="2044-04-30")
    return {
        "SignData": [s.SignDataRequest(key="default", data=data)],
        "VerifySignedData": [s.VerifySignedDataRequest(data=data, signature=blobs["sig"][0], key="default"),
                             s.VerifySignedDataRequest(data=data, signature=blobs["sig"][0], certificate=cert)],
        "SignMessage": [s.SignMessageRequest(key="default", data=data, detached=True)],
        "VerifySignedMessage": [s.VerifySignedMessageRequest(cms=blobs["cms"][0]),
                                s.VerifySignedMessageRequest(cms=blobs["cms"][1], data=data)],
        "ExportCert": [s.ExportCertRequest(key="default")],
        "ParseCert": [s.ParseCertRequest(certificate=cert)],
        "ValidateCert": [s.ValidateCertRequest(certificate=cert, intermediates=blobs["cert"][2:3], purpose="signing",
                                               trust_anchors=blobs["cert"][-1:])],
        "BatchSignData": [s.BatchSignDataRequest(key="default",
                                                 items=[s.BatchSignDataRequest.Item(id="1", data=data)])],
        "CreateKey": [k.CreateKeyRequest(name="fuzz-key", spec="ec-p256")],
        "IssueToken": [t.IssueTokenRequest(subject="fuzz", audience=["app"], scopes=["read"], ttl_seconds=60)],
        "VerifyToken": [t.VerifyTokenRequest(token=texts["token"][0], audience="app")],
        "RevokeToken": [t.RevokeTokenRequest(token=texts["token"][0], reason="fuzz")],
        "IntrospectToken": [t.IntrospectTokenRequest(token=texts["token"][0])],
        "MakeSeal": [se.MakeSealRequest(name="fuzz", type=1, picture=blobs["picture"][0], picture_type="PNG",
                                        valid_days=30)],
        "GetSeal": [se.GetSealRequest(seal_id=demo)],
        "ListSeals": [se.ListSealsRequest(page_size=1, page_token=texts["page_token"][0], state="active")],
        "SuspendSeal": [se.SuspendSealRequest(seal_id=fuzz, reason="fuzz")],
        "ResumeSeal": [se.ResumeSealRequest(seal_id=fuzz)],
        "RevokeSeal": [se.RevokeSealRequest(seal_id=fuzz, reason="fuzz")],
        "SignWithSeal": [se.SignWithSealRequest(seal_id=demo, data=data, property_info="fuzz")],
        "VerifySealSignature": [se.VerifySealSignatureRequest(ses_signature=blobs["ses"][0], data=data)],
        "SignPdf": [d.SignPdfRequest(options=d.PdfSignOptions(key="default"), pdf=pdf),
                    d.SignPdfRequest(options=visible, pdf=pdf),
                    d.SignPdfRequest(options=d.PdfSignOptions(key="default", licence=licence), pdf=pdf)],
        "BatchSignPdf": [d.BatchSignPdfRequest(options=visible, items=[d.BatchSignPdfRequest.Item(id="1", pdf=pdf)]),
                         d.BatchSignPdfRequest(options=d.PdfSignOptions(key="default"), items=[
                             d.BatchSignPdfRequest.Item(id="1", pdf=pdf, licence=licence)])],
        "VerifyPdf": [d.VerifyPdfRequest(pdf=signed_pdf)],
        "CreateTimeStamp": [ts.CreateTimeStampRequest(timestamp_request=tsq),
                            ts.CreateTimeStampRequest(data=data, hash_algorithm="sha256")],
        "VerifyTimeStamp": [ts.VerifyTimeStampRequest(timestamp_token=blobs["tst"][0], data=data)],
    }


# strategies -----------------------------------------------------------------------------------------------
_BYTES_KIND = {"certificate": "cert", "holder_certificate": "cert", "intermediates": "cert", "trust_anchors": "cert",
               "public_key": "spki", "signature": "sig", "cms": "cms", "pdf": "pdf", "ses_signature": "ses",
               "timestamp_token": "tst", "timestamp_request": "tsq", "data": "data", "chunk": "data",
               "digest": "data", "sm3_digest": "data", "sm2_id": "sm2_id", "picture": "picture", "crls": "cert"}
_TEXT_KIND = {"key": "key", "maker_key": "key", "holder_key": "key", "name": "key", "subject": "key",
              "seal_id": "seal_id", "token": "token", "token_id": "token_id", "spec": "spec", "purpose": "purpose",
              "hash_algorithm": "hash_algorithm", "algorithm": "algorithm", "picture_type": "picture_type",
              "state": "state", "page_token": "page_token", "audience": "audience", "scopes": "audience",
              "field_name": "field_name", "anchor_text": "anchor_text"}
_INT_RANGES = {FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1),
               FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1)}
_UNIT = st.floats(min_value=0, max_value=1, allow_nan=False)

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


def _mutated(base: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Truncations, a few flipped bytes, or junk spliced in."""

    def cut(data: bytes, at: float) -> bytes:
        return data[:int(len(data) * at)]

    def flip(data: bytes, edits: list[tuple[float, int]]) -> bytes:
        out = bytearray(data)
        for pos, value in edits:
            if out:
                out[min(int(pos * len(out)), len(out) - 1)] ^= value or 1
        return bytes(out)

    def splice(data: bytes, at: float, junk: bytes) -> bytes:
        i = int(len(data) * at)
        return data[:i] + junk + data[i + len(junk):]

    return st.one_of(st.builds(cut, base, _UNIT),
                     st.builds(flip, base, st.lists(st.tuples(_UNIT, st.integers(0, 255)), min_size=1, max_size=4)),
                     st.builds(splice, base, _UNIT, st.binary(min_size=1, max_size=16)))


def _bytes(corpus: Corpus, field: str) -> st.SearchStrategy[bytes]:
    every = st.sampled_from([b for blobs in corpus.blobs.values() for b in blobs])
    kind = _BYTES_KIND.get(field)
    hinted = st.sampled_from(corpus.blobs[kind]) if kind else every
    return st.one_of(hinted, _mutated(hinted), st.binary(max_size=64), every, _mutated(every))


def _text(corpus: Corpus, field: str) -> st.SearchStrategy[str]:
    every = st.sampled_from([t for texts in corpus.texts.values() for t in texts])
    kind = _TEXT_KIND.get(field)
    hinted = st.sampled_from(corpus.texts[kind]) if kind else every
    mutated = _mutated(hinted.map(str.encode)).map(lambda b: b.decode("utf-8", "replace"))
    return st.one_of(hinted, mutated, st.text(max_size=24), every)


def _scalar(corpus: Corpus, f: FieldDescriptor) -> st.SearchStrategy[Any]:
    if f.type == FieldDescriptor.TYPE_BYTES:
        return _bytes(corpus, f.name)
    if f.type == FieldDescriptor.TYPE_STRING:
        return _text(corpus, f.name)
    if f.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if f.type == FieldDescriptor.TYPE_DOUBLE else 32)
    if f.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in f.enum_type.values])
    lo, hi = _INT_RANGES[f.type]
    return st.one_of(st.integers(max(lo, -3), 5), st.integers(lo, hi), st.sampled_from([lo, hi, 2**31 - 1]))


@st.composite
def messages(draw: st.DrawFn, desc: Descriptor, corpus: Corpus) -> Any:
    """A message of ``desc``: each field present or not, oneof members as they fall (the last one set wins)."""
    cls = GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Struct":
        out = struct_pb2.Struct()
        out.update(draw(st.dictionaries(st.sampled_from(["sub", "aud", "exp", "jti", "iss", "x"]) | st.text(max_size=8),
                                        json_values, max_size=4)))
        return out
    if desc.full_name == "google.protobuf.Timestamp":
        edges = st.sampled_from([-62_135_596_800, 253_402_300_799, -62_135_596_801, 253_402_300_800])
        return cls(seconds=draw(st.integers(0, 4_102_444_800) | edges | st.integers(-2**63, 2**63 - 1)),
                   nanos=draw(st.integers(0, 999_999_999) | st.integers(-2**31, 2**31 - 1)))
    msg = cls()
    for f in desc.fields:
        if not draw(st.booleans()):
            continue
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if f.is_repeated:
                getattr(msg, f.name).extend(draw(st.lists(messages(f.message_type, corpus), max_size=3)))
            else:
                getattr(msg, f.name).CopyFrom(draw(messages(f.message_type, corpus)))
        elif f.is_repeated:
            getattr(msg, f.name).extend(draw(st.lists(_scalar(corpus, f), max_size=3)))
        else:
            setattr(msg, f.name, draw(_scalar(corpus, f)))
    return msg


@st.composite
def changed(draw: st.DrawFn, template: Any, corpus: Corpus) -> Any:
    """``template`` with some of its fields replaced by those of a random message of its type."""
    out = type(template)()
    out.CopyFrom(template)
    other = draw(messages(template.DESCRIPTOR, corpus))
    for f, value in other.ListFields():
        if not draw(st.booleans()):
            continue
        out.ClearField(f.name)
        if f.is_repeated:
            getattr(out, f.name).extend(value)
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(out, f.name).CopyFrom(value)
        else:
            setattr(out, f.name, value)
    return out


def requests(method: MethodDescriptor, corpus: Corpus) -> st.SearchStrategy[Any]:
    templates = corpus.templates.get(method.name)
    if not templates:
        return messages(method.input_type, corpus)
    valid = st.sampled_from(templates)
    return st.one_of(valid.flatmap(lambda t: changed(t, corpus)), messages(method.input_type, corpus))


@st.composite
def stream_parts(draw: st.DrawFn, method: MethodDescriptor, corpus: Corpus) -> list[Any]:
    """No parts, a valid first part then anything, or anything (chunks, a second init, empty parts)."""
    part = method.input_type
    cls = GetMessageClass(part)
    chunk = st.builds(lambda b: cls(chunk=b), _bytes(corpus, "chunk") | _bytes(corpus, "pdf"))
    anything = st.one_of(chunk, chunk, messages(part, corpus))
    shape = draw(st.sampled_from(["none", "valid", "valid", "random"]))
    if shape == "none":
        return []
    if shape == "random":
        return draw(st.lists(anything, min_size=1, max_size=4))
    first = draw(st.sampled_from(corpus.first_parts[method.name]) | messages(part, corpus))
    content = corpus.blobs["pdf"][0] if method.name == "SignPdfStream" else b"hello"
    at = draw(st.integers(0, len(content)))
    split = [cls(chunk=content[:at]), cls(chunk=content[at:])]
    return [first, *draw(st.just(split) | st.lists(anything, max_size=4)), *draw(st.lists(anything, max_size=2))]


# the call and what it must answer ---------------------------------------------------------------------------
def _protect(method: MethodDescriptor, request: Any, corpus: Corpus) -> Any:
    """Fuzzing must not disable or rotate the keys the test (and the daemon) rely on, nor suspend or revoke
    the demo seal: those requests go to a name that does not exist, or to the fuzz seal."""
    if method.name in ("RotateKey", "DisableKey") and request.name.split("@")[0].strip() in corpus.protected_keys:
        request.name = "nx-" + request.name
    if method.name in ("SuspendSeal", "RevokeSeal") and request.seal_id.strip() == corpus.demo_seal:
        request.seal_id = corpus.fuzz_seal
    return request


def _invoke(channel: grpc.Channel, module: Any, method: MethodDescriptor, request: Any) -> tuple[grpc.StatusCode,
                                                                                                str | None, Any]:
    stub = getattr(module, f"{method.containing_service.name}Stub")(channel)
    rpc = getattr(stub, method.name)
    try:
        answer = rpc(iter(request) if method.client_streaming else request, timeout=CALL_TIMEOUT)
        if method.server_streaming:
            answer = list(answer)
    except grpc.RpcError as err:
        return err.code(), error_reason(err), err.details()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, None, answer


def check_call(channel: grpc.Channel, module: Any, method: MethodDescriptor, request: Any) -> None:
    code, reason, answer = _invoke(channel, module, method, request)
    shown = repr(request)[:600]
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (method.name, code, reason, answer, shown)
    if code != grpc.StatusCode.OK:
        assert reason and REASON.match(reason), (method.name, code, reason, answer, shown)
    if code == grpc.StatusCode.OK and method.name.startswith("Batch"):
        for item in answer.results:  # a refused item carries a status of its own, as precise as a call's
            if item.HasField("error"):
                assert item.error.code not in (grpc.StatusCode.INTERNAL.value[0], grpc.StatusCode.UNKNOWN.value[0]), (
                    method.name, item, shown)
                infos = [error_details_pb2.ErrorInfo.FromString(d.value) for d in item.error.details]
                assert infos and REASON.match(infos[0].reason), (method.name, item, shown)
    if method.name in VERIFICATIONS:
        if code == grpc.StatusCode.OK:
            assert answer.HasField("result"), (method.name, answer, shown)
        else:
            # a key or seal the request names may be unknown (NOT_FOUND); anything else is the input's fault
            assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (method.name, code, reason,
                                                                                           answer, shown)


@pytest.mark.parametrize("module,method,grpc_module", METHODS,
                         ids=[f"{m.containing_service.name}.{m.name}" for _, m, _ in METHODS])
@SETTINGS
@given(data=st.data())
def test_rpc(admin: Client, corpus: Corpus, module: str, method: MethodDescriptor, grpc_module: Any,
             data: st.DataObject) -> None:
    if method.client_streaming:
        request = data.draw(stream_parts(method, corpus), label="parts")
    else:
        request = _protect(method, data.draw(requests(method, corpus), label="request"), corpus)
    check_call(admin.channel, grpc_module, method, request)


_METHOD = {m.name: (m, grpc_module) for _, m, grpc_module in METHODS}
_PDF = document_pb2
# Inputs the fuzzer found that the daemon answered INTERNAL (or never: a wedge past the call's deadline)
REGRESSIONS: dict[str, tuple[Any, ...]] = {  # (RPC, request from the corpus[, code]; else INVALID_ARGUMENT)
    "seal type out of the enum (ValueError)": ("MakeSeal", lambda c: seal_pb2.MakeSealRequest(name="audit", type=7)),
    "valid_days past the year 9999 (OverflowError)": (
        "MakeSeal", lambda c: seal_pb2.MakeSealRequest(name="x", valid_days=2**32 - 1)),
    "a 5000-character revocation reason (kept in the audit log for good)": ("RevokeToken", lambda c: (
        token_pb2.RevokeTokenRequest(token_id="jti-1", reason="r" * 5000))),
    "a 5000-character token id": ("RevokeToken", lambda c: token_pb2.RevokeTokenRequest(token_id="j" * 5000)),
    "a 5000-character suspension reason": ("SuspendSeal", lambda c: seal_pb2.SuspendSealRequest(
        seal_id=c.demo_seal, reason="r" * 5000)),
    "a 5000-character propertyInfo (signed into the SES_Signature)": ("SignWithSeal", lambda c: (
        seal_pb2.SignWithSealRequest(seal_id=c.demo_seal, data=b"x", property_info="p" * 5000))),
    "drawn seal name of 100000 characters (wedged ~30 min drawing the ring)": (
        "MakeSeal", lambda c: seal_pb2.MakeSealRequest(name="x" * 100_000)),
    "drawn seal named '\\r' (raqm_layout() failed: RuntimeError)": (
        "MakeSeal", lambda c: seal_pb2.MakeSealRequest(name="\r")),
    "drawn seal name with U+2029 (same)": ("MakeSeal", lambda c: seal_pb2.MakeSealRequest(name="seal\u2029x")),
    "SVG picture declaring an encoding expat lacks (LookupError)": ("MakeSeal", lambda c: seal_pb2.MakeSealRequest(
        name="x", picture=b'<?xml version="1.0" encoding="x-foo"?><svg/>', picture_type="SVG")),
    "SVG picture in a multi-byte encoding (ValueError)": ("MakeSeal", lambda c: seal_pb2.MakeSealRequest(
        name="x", picture=b'<?xml version="1.0" encoding="shift_jis"?><svg/>', picture_type="SVG")),
    "picture of junk declared PNG (no check: a seal whose stamp cannot be drawn)": (
        "MakeSeal", lambda c: seal_pb2.MakeSealRequest(name="x", picture=b"junk", picture_type="PNG")),
    "SVG picture with a script declared SVG (no check)": ("MakeSeal", lambda c: seal_pb2.MakeSealRequest(
        name="x", picture=b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>", picture_type="SVG")),
    "picture of 1 MB declared PNG (no size limit)": ("MakeSeal", lambda c: seal_pb2.MakeSealRequest(
        name="x", picture=c.blobs["picture"][0] + b"\0" * 1_000_000, picture_type="PNG")),
    "PNG picture declared GIF": ("MakeSeal", lambda c: seal_pb2.MakeSealRequest(
        name="x", picture=c.blobs["picture"][0], picture_type="GIF")),
    "page_token of a digit int() refuses (ValueError; now BAD_PAGE_TOKEN, as any token ListSeals did not give)": (
        "ListSeals", lambda c: seal_pb2.ListSealsRequest(page_token="\u00b2")),
    "page_token of 10000 digits (ValueError: int() refuses over 4300 digits)": (
        "ListSeals", lambda c: seal_pb2.ListSealsRequest(page_token="9" * 10_000)),
    "IssueToken key of 10 kB (its refusal quoted it past the client's 8 KiB trailers: RESOURCE_EXHAUSTED)": (
        "IssueToken", lambda c: token_pb2.IssueTokenRequest(subject="x", key="k" * 10_000)),
    "SignData key of 100 kB in multi-byte characters (same)": (
        "SignData", lambda c: signature_pb2.SignDataRequest(key="\u5370" * 100_000, data=b"x")),
    "at beyond the year 9999 (ValueError)": ("ValidateCert", lambda c: signature_pb2.ValidateCertRequest(
        certificate=c.blobs["cert"][0], at=gtimestamp_pb2.Timestamp(seconds=2**62))),
    "at with negative nanos (ValueError)": ("ValidateCert", lambda c: signature_pb2.ValidateCertRequest(
        certificate=c.blobs["cert"][0], at=gtimestamp_pb2.Timestamp(seconds=1, nanos=-5))),
    "registered claim in claims (TokenConfigError)": ("IssueToken", lambda c: token_pb2.IssueTokenRequest(
        subject="audit", claims=_struct({"exp": 1}))),
    "token key reference with a version that is not a number (ValueError)": (
        "IssueToken", lambda c: token_pb2.IssueTokenRequest(subject="x", key="default@x")),
    "token key reference '@:' (ValueError)": (
        "IssueToken", lambda c: token_pb2.IssueTokenRequest(subject="x", key="@:")),
    "NaN claim (ValueError)": ("IssueToken", lambda c: token_pb2.IssueTokenRequest(
        subject="x", claims=_struct({"a": float("nan")}))),
    "identity claim not an object (TokenInvalid)": ("IssueToken", lambda c: token_pb2.IssueTokenRequest(
        subject="x", claims=_struct({"gbt39046": 1}))),
    "NaN seal box (PDF_SIGNING_FAILED)": ("SignPdf", lambda c: _PDF.SignPdfRequest(pdf=c.blobs["pdf"][0],
        options=_PDF.PdfSignOptions(key="default", seal_id=c.demo_seal, rect=[float("nan")] * 4))),
    "infinite seal box (PDF_SIGNING_FAILED)": ("SignPdf", lambda c: _PDF.SignPdfRequest(pdf=c.blobs["pdf"][0],
        options=_PDF.PdfSignOptions(key="default", seal_id=c.demo_seal, rect=[0, 0, float("inf"), 1e308]))),
    "PDF whose /Pages has no /Count (KeyError: INTERNAL PDF_SIGNING_FAILED)": ("SignPdf", lambda c: _PDF.SignPdfRequest(
        pdf=c.blobs["pdf"][0].replace(b"/Count", b"/Cotnt", 1), options=_PDF.PdfSignOptions(key="default"))),
    "anchor text in a content stream that inflates 40 KB to 40 MB (there was no limit, 400 MB took 1 GB)": (
        "SignPdf", lambda c: _PDF.SignPdfRequest(pdf=flate_bomb_pdf(), options=_PDF.PdfSignOptions(
            key="default", seal_id=c.demo_seal, anchor_text="licence")), grpc.StatusCode.RESOURCE_EXHAUSTED),
    "VerifySignedData by key '@:' (ValueError)": ("VerifySignedData", lambda c: signature_pb2.VerifySignedDataRequest(
        data=b"hello", signature=c.blobs["sig"][0], key="@:")),
    "certificate extensions tagged ObjectDescriptor in a CMS (AttributeError)": (
        "VerifySignedMessage", lambda c: signature_pb2.VerifySignedMessageRequest(
            cms=extensions_tag_as(c.blobs["cms"][0], 0x07))),
}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_regression(admin: Client, corpus: Corpus, name: str) -> None:
    method_name, make, *expected = REGRESSIONS[name]
    method, grpc_module = _METHOD[method_name]
    code, reason, _ = _invoke(admin.channel, grpc_module, method, make(corpus))
    assert code == (expected[0] if expected else grpc.StatusCode.INVALID_ARGUMENT), (code, reason)
    check_call(admin.channel, grpc_module, method, make(corpus))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    length, size = bytearray(), len(payload)
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            return bytes([number << 3 | 2]) + bytes(length) + payload


def _nested_struct(depth: int) -> bytes:
    """A google.protobuf.Struct {"a": {"a": ... {}}} ``depth`` levels deep, serialized by hand (the client's
    protobuf refuses to build one deeper than its own limit)."""
    out = b""
    for _ in range(depth):
        out = _field(1, _field(1, b"a") + _field(2, _field(5, out)))  # fields["a"].struct_value
    return out


# Request messages protobuf cannot parse: grpcio answered INTERNAL "Exception deserializing request!" (and
# logged a traceback) before any trustsvc code ran
UNPARSABLE = {
    "claims Struct nested 60 deep (past protobuf's depth limit)": ("IssueToken", [_field(1, b"x") + _field(
        5, _nested_struct(60))]),
    "subject not UTF-8": ("IssueToken", [_field(1, b"\xff\xfe")]),
    "truncated wire format": ("SignData", [_field(1, b"default")[:-2]]),
    "stream part whose init.key is not UTF-8": ("SignDataStream", [_field(1, _field(1, b"\xc3")), _field(2, b"x")]),
    "stream part garbled after a valid init": ("SignDataStream", [_field(1, _field(1, b"default")), b"\x12\xff"]),
}


@pytest.mark.parametrize("name", list(UNPARSABLE))
def test_unparsable_request_message(running: Running, admin: Client, name: str) -> None:
    method_name, parts = UNPARSABLE[name]
    method, _ = _METHOD[method_name]
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.client_streaming:
        rpc = admin.channel.stream_unary(path)
        request: Any = iter(parts)
    else:
        rpc, request = admin.channel.unary_unary(path), parts[0]
    with pytest.raises(grpc.RpcError) as err:
        rpc(request, timeout=CALL_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value  # type: ignore[attr-defined]
    assert error_reason(err.value) == "BAD_REQUEST_MESSAGE", err.value
    assert admin.check_health() == "SERVING"


def test_every_rpc_is_fuzzed() -> None:
    declared = {(s.name, m.name) for name in codegen.MODULES
                for s in codegen.load(name)[0].DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert declared == {(m.containing_service.name, m.name) for _, m, _ in METHODS}
    assert len(declared) >= 35


def test_daemon_survived(running: Running, admin: Client, corpus: Corpus) -> None:
    """After the whole run: still serving, the audit log verifies (no partial write), the keys still sign."""
    assert admin.check_health() == "SERVING"
    report = verify_log(running.db)
    assert report.ok, report
    for key in KEPT_KEYS:
        assert admin.sign_data(key, b"still signs").signature
    issued = admin.call(admin.tokens.IssueToken, token_pb2.IssueTokenRequest(subject="after"))
    verified = admin.call(admin.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=issued.token))
    assert verified.result.valid, verified
