"""Visible seal stamps through DocumentService over real mTLS gRPC: placement, rendering, refusals, policy."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields

from tests.integration.test_daemon_fixtures import Running
from tests.unit.test_pdf_appearance import _assert_in_box, _red_pixels
from trustsvc.client import Client, document_pb2, error_reason, seal_pb2
from trustsvc.pdf.appearance import SealAppearance
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.seal.parse import parse_seal
from trustsvc.server.runtime import POLICY_CHECK_S
from trustsvc.server.tls import issue_client_cert

pytestmark = pytest.mark.integration

LIMITED_POLICY = """
[clients."cn=seal-limited"]
operations = ["DocumentService/*"]
keys = ["default"]
seals = ["{allowed}"]
"""


@pytest.fixture(scope="module")
def seals(running: Running) -> dict[str, str]:
    """esIDs: the embedded demo seal, a revoked and a suspended one, one the limited client may not use."""
    with running.client("admin") as admin:
        listed = admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest(state="active")).seals
        out = {"demo": listed[0].seal_id}
        for name in ("revoked", "suspended", "forbidden"):
            made = admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name=f"测试{name}章", valid_days=30))
            out[name] = made.seal.seal_id
        admin.call(admin.seals.RevokeSeal, seal_pb2.RevokeSealRequest(seal_id=out["revoked"], reason="lost"))
        admin.call(admin.seals.SuspendSeal, seal_pb2.SuspendSealRequest(seal_id=out["suspended"], reason="audit"))
        out["demo_der"] = listed[0].seal_der.hex()
        admin.create_key("demo-other", "sm2")  # certified, but not a holder of any seal
    issue_client_cert(running.home, "seal-limited")
    policy = running.home / "policy.toml"
    policy.write_text(policy.read_text() + LIMITED_POLICY.format(allowed=out["demo"]))
    _await_policy(running, "seal-limited")
    return out


def _await_policy(running: Running, client_name: str) -> None:
    """The daemon looks at the policy file at most once per POLICY_CHECK_S: wait until it knows the client."""
    deadline = time.monotonic() + 10 * POLICY_CHECK_S
    with running.client(client_name) as c:
        while True:
            try:
                c.call(c.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=licence_pdf()))
                return
            except grpc.RpcError as exc:
                if error_reason(exc) != "UNKNOWN_CLIENT" or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)


def _opts(key: str = "default", **kw: object) -> document_pb2.PdfSignOptions:
    return document_pb2.PdfSignOptions(key=key, reason="licence issued", **kw)  # type: ignore[arg-type]


def _sign(c: Client, pdf: bytes, opts: document_pb2.PdfSignOptions) -> bytes:
    return bytes(c.call(c.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=pdf), timeout=60).pdf)


def _valid(c: Client, pdf: bytes, seal_id: str) -> None:
    """Valid, and the signature binds registered seal ``seal_id`` (checked against the daemon's registry)."""
    report = c.call(c.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=pdf))
    assert report.result.valid, report.report_json
    assert [s.seal_id for s in report.signatures] == [seal_id]
    seal_check = next(ch for ch in report.signatures[0].result.checks if ch.name == "seal")
    assert seal_check.passed and "signer listed" in seal_check.detail, seal_check


def _refused(c: Client, opts: document_pb2.PdfSignOptions) -> tuple[grpc.StatusCode, str | None]:
    with pytest.raises(grpc.RpcError) as err:
        _sign(c, licence_pdf(), opts)
    return err.value.code(), error_reason(err.value)


def test_seal_stamped_in_rect(client: Client, seals: dict[str, str], tmp_path: Path) -> None:
    signed = _sign(client, licence_pdf(), _opts(seal_id=seals["demo"], page=0, rect=[300, 400, 450, 550]))
    _assert_in_box(_red_pixels(signed, tmp_path), (300, 400, 150, 150))
    _valid(client, signed, seals["demo"])
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    assert sig.sig_field["/Rect"] is not None


def test_seal_next_to_anchor_text_streamed(client: Client, seals: dict[str, str], tmp_path: Path) -> None:
    pdf = licence_pdf()
    opts = _opts(seal_id=seals["demo"], anchor_text="ANCHOR-HOLDER")

    def gen() -> Iterator[document_pb2.SignPdfStreamRequest]:
        yield document_pb2.SignPdfStreamRequest(options=opts)
        for i in range(0, len(pdf), 2048):
            yield document_pb2.SignPdfStreamRequest(chunk=pdf[i:i + 2048])
    parts = list(client.documents.SignPdfStream(gen(), timeout=60))
    signed = b"".join(p.chunk for p in parts[:-1])
    summary = parts[-1].summary
    assert summary.signed_size == len(signed) and summary.audit.seq
    seal = parse_seal(bytes.fromhex(seals["demo_der"]))
    size = (seal.picture_width_mm * 72 / 25.4, seal.picture_height_mm * 72 / 25.4)
    box = SealAppearance(seal.picture_data, anchor="ANCHOR-HOLDER", size=size).anchor_box(
        PdfFileReader(io.BytesIO(pdf)))
    _assert_in_box(_red_pixels(signed, tmp_path), box)
    _valid(client, signed, seals["demo"])


def test_seal_in_existing_empty_field(client: Client, seals: dict[str, str], tmp_path: Path) -> None:
    w = IncrementalPdfFileWriter(io.BytesIO(licence_pdf()))
    fields.append_signature_field(w, fields.SigFieldSpec("SealHere", on_page=0, box=(100, 100, 220, 220)))
    buf = io.BytesIO()
    w.write(buf)
    signed = _sign(client, buf.getvalue(), _opts(seal_id=seals["demo"], field_name="SealHere"))
    assert PdfFileReader(io.BytesIO(signed)).embedded_signatures[0].field_name == "SealHere"
    _assert_in_box(_red_pixels(signed, tmp_path), (100, 100, 120, 120))
    _valid(client, signed, seals["demo"])


def test_unknown_revoked_suspended_foreign_seals_refused(client: Client, seals: dict[str, str]) -> None:
    rect = [300, 400, 450, 550]
    assert _refused(client, _opts(seal_id="TS99999999", rect=rect)) == (grpc.StatusCode.NOT_FOUND, "SEAL_NOT_FOUND")
    assert _refused(client, _opts(seal_id=seals["revoked"], rect=rect)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "SEAL_NOT_ACTIVE")
    assert _refused(client, _opts(seal_id=seals["suspended"], rect=rect)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "SEAL_NOT_ACTIVE")
    # the signing key's certificate must be one of the seal's holders (its certList)
    assert _refused(client, _opts(key="demo-other", seal_id=seals["demo"], rect=rect)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "SIGNER_NOT_IN_CERT_LIST")


def test_placement_errors(client: Client, seals: dict[str, str]) -> None:
    cases = [
        (_opts(rect=[1, 2, 3, 4]), "SEAL_ID_REQUIRED"),
        (_opts(seal_id=seals["demo"]), "BAD_SEAL_PLACEMENT"),
        (_opts(seal_id=seals["demo"], rect=[1, 2, 3]), "BAD_SEAL_PLACEMENT"),
        (_opts(seal_id=seals["demo"], rect=[10, 10, 5, 50]), "BAD_SEAL_PLACEMENT"),
        (_opts(seal_id=seals["demo"], page=7, rect=[10, 10, 50, 50]), "BAD_SEAL_PLACEMENT"),
    ]
    for opts, reason in cases:
        assert _refused(client, opts) == (grpc.StatusCode.INVALID_ARGUMENT, reason), opts
    assert _refused(client, _opts(seal_id=seals["demo"], anchor_text="NO-SUCH-TEXT")) == (
        grpc.StatusCode.NOT_FOUND, "ANCHOR_NOT_FOUND")
    assert _refused(client, _opts(seal_id=seals["demo"], field_name="NoSuchField")) == (
        grpc.StatusCode.NOT_FOUND, "FIELD_NOT_FOUND")


def test_policy_limits_seals(running: Running, seals: dict[str, str], tmp_path: Path) -> None:
    with running.client("seal-limited") as limited:
        rect = [300, 400, 450, 550]
        assert _refused(limited, _opts(seal_id=seals["forbidden"], rect=rect)) == (
            grpc.StatusCode.PERMISSION_DENIED, "SEAL_NOT_ALLOWED")
        # a seal outside the caller's policy is refused before the registry is consulted: no existence oracle
        assert _refused(limited, _opts(seal_id="TS99999999", rect=rect)) == (
            grpc.StatusCode.PERMISSION_DENIED, "SEAL_NOT_ALLOWED")
        signed = _sign(limited, licence_pdf(), _opts(seal_id=seals["demo"], rect=rect))
        _assert_in_box(_red_pixels(signed, tmp_path), (300, 400, 150, 150))


def test_batch_with_seal_stamps_every_document(client: Client, seals: dict[str, str], tmp_path: Path) -> None:
    """BatchSignPdf with seal_id: the fast path stamps each PDF; a bad item fails alone."""
    opts = _opts(seal_id=seals["demo"], page=0, rect=[300, 400, 450, 550])
    resp = client.call(client.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(options=opts, items=[
        document_pb2.BatchSignPdfRequest.Item(id="a", pdf=licence_pdf(text="first")),
        document_pb2.BatchSignPdfRequest.Item(id="bad", pdf=b"%PDF-1.7 truncated"),
        document_pb2.BatchSignPdfRequest.Item(id="b", pdf=licence_pdf(text="second"))]), timeout=60)
    by_id = {r.id: r for r in resp.results}
    assert by_id["bad"].WhichOneof("outcome") == "error"
    for name in ("a", "b"):
        signed = bytes(by_id[name].pdf)
        sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
        assert sig.sig_object["/Reason"] == "licence issued"  # PdfSignOptions.reason (batches dropped it)
        (tmp_path / name).mkdir()
        _assert_in_box(_red_pixels(signed, tmp_path / name), (300, 400, 150, 150))
        _valid(client, signed, seals["demo"])
    with pytest.raises(grpc.RpcError) as err:  # the seal checks apply to batches too
        client.call(client.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(
            options=_opts(seal_id=seals["revoked"], page=0, rect=[300, 400, 450, 550]),
            items=[document_pb2.BatchSignPdfRequest.Item(id="a", pdf=licence_pdf())]))
    assert (err.value.code(), error_reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION, "SEAL_NOT_ACTIVE")


def test_a_seal_revoked_after_stamping_fails_verification(client: Client, running: Running) -> None:
    """The signature names its seal: once the registry revokes that seal, VerifyPdf fails a signature whose time
    is only the signer's claim (reason SEAL), and passes with a warning one time-stamped before the revocation."""
    with running.client("admin") as admin:
        made = admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="测试吊销章", valid_days=30))
        seal_id = made.seal.seal_id
        signed = _sign(client, licence_pdf(), _opts(seal_id=seal_id, rect=[300, 400, 450, 550]))
        _valid(client, signed, seal_id)
        time.sleep(1.1)  # a time stamp's genTime is whole seconds: stamped clearly after the seal was made ...
        stamped = _sign(client, licence_pdf(), _opts(seal_id=seal_id, rect=[300, 400, 450, 550], with_timestamp=True))
        time.sleep(2.1)  # ... and clearly before it is revoked (the registry keeps whole seconds too)
        admin.call(admin.seals.RevokeSeal, seal_pb2.RevokeSealRequest(seal_id=seal_id, reason="lost"))
    report = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=signed))
    assert not report.result.valid and report.result.reason == "SEAL", report.report_json
    assert report.signatures[0].seal_id == seal_id
    assert "SEAL_REVOKED" in report.signatures[0].result.message
    # time-stamped while the seal was active: still valid, the revocation reported as a warning
    report = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=stamped))
    assert report.result.valid, report.report_json
    seal_check = next(ch for ch in report.signatures[0].result.checks if ch.name == "seal")
    assert "SEAL_REVOKED_SINCE" in seal_check.detail, seal_check
    # the auditor's view: the seal's life and the document stamped with it, in order
    from trustsvc.audit.search import AuditQuery, find_records

    found = find_records(running.db, AuditQuery(seal=seal_id))
    assert [m.record.operation for m in found] == ["SealService/MakeSeal", "DocumentService/SignPdf",
                                                   "DocumentService/SignPdf", "SealService/RevokeSeal"], found
