"""E-licence content over the daemon: SignPdf, SignPdfStream and BatchSignPdf write licence metadata in the signed
revision, poppler reads it back, pyHanko validates the signature, VerifyPdf returns it, bad metadata is refused by
name; metadata or form fields changed after signing fail VerifyPdf."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import grpc
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from tests.integration.test_daemon_fixtures import Running
from tests.interop.test_pdf_interop import assert_xmp_licence
from trustsvc.client import Client, document_pb2, error_reason
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.pdf.metadata import LicenceMetadata
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pki.certificate import Certificate

LICENCE = {"licence_type": "营业执照", "licence_number": "91110000MA01ABCD1X", "holder_name": "北京某某科技有限公司",
           "holder_id": "91110000MA01ABCD1X", "issuing_authority": "北京市市场监督管理局", "issue_date": "2024-05-01",
           "valid_from": "2024-05-01", "valid_until": "2044-04-30"}


def _licence(**change: str) -> document_pb2.LicenceMetadata:
    return document_pb2.LicenceMetadata(**{**LICENCE, **change})


def _checked(client: Client, pdf: bytes, tmp_path: Path, want: dict[str, str]) -> None:
    """pyHanko validates the signature, poppler reads the XMP, VerifyPdf returns the same licence."""
    root = Certificate.load(client.export_cert("default").chain[-1]).der
    status = validate_pdf_signature(PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0], validation_context([root]))
    assert status.intact and status.valid and status.trusted and status.coverage.name == "ENTIRE_FILE"
    path = tmp_path / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    assert_xmp_licence(path, LicenceMetadata.from_dict(want))
    report = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=pdf))
    assert report.result.valid, report.report_json
    assert {f.name: v for f, v in report.licence.ListFields()} == want


def test_sign_pdf_and_stream_write_the_licence(running: Running, client: Client, tmp_path: Path) -> None:
    opts = document_pb2.PdfSignOptions(key="default", reason="licence issued", licence=_licence())
    rid = uuid.uuid4().hex
    signed = client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=licence_pdf()),
                         timeout=60, request_id=rid).pdf
    _checked(client, signed, tmp_path, LICENCE)
    (record,) = running.daemon.rt.audit.find(rid)
    assert json.loads(record.detail)["licence"] == LICENCE["licence_number"]
    assert LICENCE["holder_id"] not in record.detail.replace(LICENCE["licence_number"], "")  # the number only

    out = io.BytesIO()
    pdf = licence_pdf(text="streamed e-licence")
    opts = document_pb2.PdfSignOptions(key="default", licence=_licence(licence_number="L-STREAM-1"))
    client.sign_pdf_stream(opts, [pdf[i:i + 4096] for i in range(0, len(pdf), 4096)], out, timeout=60)
    _checked(client, out.getvalue(), tmp_path, {**LICENCE, "licence_number": "L-STREAM-1"})


def test_batch_items_carry_their_own_licence(client: Client, tmp_path: Path) -> None:
    items = [document_pb2.BatchSignPdfRequest.Item(id="own", pdf=licence_pdf(), licence=_licence(licence_number="L-1")),
             document_pb2.BatchSignPdfRequest.Item(id="shared", pdf=licence_pdf()),
             document_pb2.BatchSignPdfRequest.Item(id="bad", pdf=licence_pdf(),
                                                   licence=_licence(issue_date="yesterday")),
             document_pb2.BatchSignPdfRequest.Item(id="plain", pdf=licence_pdf())]
    opts = document_pb2.PdfSignOptions(key="default", licence=_licence(licence_number="L-SHARED"))
    reply = client.call(client.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(options=opts, items=items),
                        timeout=60)
    results = {r.id: r for r in reply.results}
    _checked(client, results["own"].pdf, tmp_path, {**LICENCE, "licence_number": "L-1"})
    _checked(client, results["shared"].pdf, tmp_path, {**LICENCE, "licence_number": "L-SHARED"})
    assert results["bad"].WhichOneof("outcome") == "error"
    assert results["bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "issue_date" in results["bad"].error.message and "BAD_LICENCE_METADATA" in str(results["bad"].error)

    no_licence = client.call(client.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(
        options=document_pb2.PdfSignOptions(key="default"), items=[items[3]]), timeout=60).results[0].pdf
    report = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=no_licence))
    assert report.result.valid and not report.HasField("licence")


@pytest.mark.parametrize("change, words", [
    ({"licence_number": ""}, "missing fields ['licence_number']"),
    ({"valid_from": "2050-01-01"}, "valid_from is after valid_until"),
    ({"holder_name": "x" * 513}, "holder_name is longer than 512"),
    ({"holder_name": "a\x00b"}, "holder_name holds a control character"),
])
def test_bad_licence_is_refused_by_name(client: Client, change: dict[str, str], words: str) -> None:
    opts = document_pb2.PdfSignOptions(key="default", licence=_licence(**change))
    for call in (lambda: client.call(client.documents.SignPdf,
                                     document_pb2.SignPdfRequest(options=opts, pdf=licence_pdf()), timeout=60),
                 lambda: client.sign_pdf_stream(opts, [licence_pdf()], io.BytesIO(), timeout=60),
                 lambda: client.call(client.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(
                     options=opts, items=[document_pb2.BatchSignPdfRequest.Item(id="1", pdf=licence_pdf())]),
                     timeout=60)):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(refused.value) == "BAD_LICENCE_METADATA" and words in refused.value.details()


def test_a_licence_changed_after_signing_is_invalid(client: Client) -> None:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from trustsvc.pdf.metadata import write_metadata

    opts = document_pb2.PdfSignOptions(key="default", licence=_licence())
    signed = client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=licence_pdf()),
                         timeout=60).pdf
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    write_metadata(writer, LicenceMetadata.from_dict({**LICENCE, "holder_name": "冒名公司"}))
    forged = io.BytesIO()
    writer.write(forged)
    report = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=forged.getvalue()))
    assert not report.result.valid and report.result.reason == "LICENCE_METADATA"
    assert report.licence.holder_name == "冒名公司"  # what the file shows, flagged by the invalid result
    assert "holder_name" in report.signatures[0].result.message


def test_a_form_field_changed_after_signing_is_invalid_unless_allowed(client: Client) -> None:
    from tests.unit.test_pdf_bad_input import form_pdf, holder_rewritten

    opts = document_pb2.PdfSignOptions(key="default", licence=_licence())
    signed = client.call(client.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=form_pdf()),
                         timeout=60).pdf
    forged = io.BytesIO(holder_rewritten(signed))
    strict = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=forged.getvalue()))
    assert not strict.result.valid and strict.result.reason == "FORM_FIELDS", strict.report_json
    lenient = client.call(client.documents.VerifyPdf, document_pb2.VerifyPdfRequest(pdf=forged.getvalue(),
                                                                                   allow_form_filling=True))
    assert lenient.result.valid, lenient.report_json
