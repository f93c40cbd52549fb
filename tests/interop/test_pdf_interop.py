"""Our PDFs against pyHanko's own validator, poppler's pdfsig, qpdf --check and BouncyCastle."""

from __future__ import annotations

import dataclasses
import io
import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from tests.conftest import require_tool
from tests.interop import bouncycastle
from tests.interop.tools import bc_verify_pdf_cms
from tests.unit.test_pdf_signing import META, pyhanko_pades_level
from tests.unit.test_seal_support import make_maker, seal_listing
from trustsvc.pdf.appearance import SealAppearance
from trustsvc.pdf.devkit import DevIdentity, dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.metadata import LicenceMetadata
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pdf.signing import sign_pdf
from trustsvc.seal.parse import parse_seal


def _seal_png() -> bytes:
    from trustsvc.seal.picture import render_png

    return render_png("北京某某科技有限公司", name="合同专用章", dpi=150)


def _registered_seal(ident: DevIdentity) -> bytes:
    """A GB/T 38540 seal listing ``ident``'s certificate (any key type may be a holder)."""
    maker, maker_cert = make_maker()
    return seal_listing([ident.signer.certificate_chain[0]], maker, maker_cert, picture=_seal_png())


def _outputs(kind: str) -> tuple[dict[str, bytes], DevIdentity]:
    """Ordinary, fast (PAdES, the default), fast with a visible seal, both with a registered seal bound (signed
    attribute), fast with licence metadata, and fast adbe.pkcs7.detached outputs."""
    ident = dev_identity(kind)
    visible = SealAppearance(_seal_png(), box=(300, 400, 150, 150))
    registered = dataclasses.replace(visible, seal=_registered_seal(ident))
    return {"ordinary": sign_pdf(licence_pdf(), ident.signer),
            "ordinary-sealed": sign_pdf(licence_pdf(), ident.signer, appearance=registered),
            "fast": FastPdfSigner(ident.signer).sign(licence_pdf()),
            "fast-visible": FastPdfSigner(ident.signer, appearance=visible).sign(licence_pdf()),
            "fast-sealed": FastPdfSigner(ident.signer, appearance=registered).sign(licence_pdf()),
            "fast-licence": FastPdfSigner(ident.signer).sign(licence_pdf(), metadata=META),
            "fast-adbe": FastPdfSigner(ident.signer, subfilter="adbe.pkcs7.detached").sign(licence_pdf())}, ident


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_pdfsig_qpdf_and_pyhanko(kind, tmp_path):
    pdfsig, qpdf = require_tool("pdfsig"), require_tool("qpdf")
    outputs, ident = _outputs(kind)
    for name, data in outputs.items():
        if name == "fast-adbe":
            sig = PdfFileReader(io.BytesIO(data)).embedded_signatures[0]
            status = validate_pdf_signature(sig, validation_context([ident.root.der]))
            assert status.intact and status.valid and status.trusted, name
        else:
            assert pyhanko_pades_level(data, [ident.root.der]) == "B-B", name
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        out = subprocess.run([pdfsig, str(path)], capture_output=True, text=True).stdout
        assert "Signature is Valid." in out, (name, out)
        check = subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True)
        assert check.returncode == 0 and "No syntax or stream encoding errors found" in check.stdout, check.stdout
    assert_xmp_licence(tmp_path / "fast-licence.pdf")


def assert_xmp_licence(path: Path, meta: LicenceMetadata = META) -> None:
    """poppler's pdfinfo reads the document's XMP; it carries every licence field in our namespace."""
    import xml.etree.ElementTree as ET

    xmp = subprocess.run([require_tool("pdfinfo"), "-meta", str(path)], capture_output=True, text=True).stdout
    root = ET.fromstring(xmp[xmp.index("<x:xmpmeta"):xmp.rindex("</x:xmpmeta>") + len("</x:xmpmeta>")])
    ns = "{https://trustsvc.example/ns/elicence/1.0/}"
    found = {el.tag.removeprefix(ns): el.text for el in root.iter() if el.tag.startswith(ns)}
    for desc in root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"):
        found.update({k.removeprefix(ns): v for k, v in desc.attrib.items() if k.startswith(ns)})
    assert found["licenceNumber"] == meta.licence_number and found["holderName"] == meta.holder_name, found
    assert found["issuingAuthority"] == meta.issuing_authority and found["validUntil"] == meta.valid_until, found


def test_bouncycastle_verifies_sm2_cms(tmp_path):
    """BC verifies every output's CMS and, where a registered seal is bound, finds it by its OID and reads back
    the seal byte for byte."""
    require_tool("java")
    outputs, _ = _outputs("sm2")
    for name, data in outputs.items():
        seal_out = tmp_path / f"{name}.seal"
        proc = bc_verify_pdf_cms(tmp_path, data, seal_out)
        assert proc.returncode == 0 and "VALID 1.2.156.10197.1.501" in proc.stdout, (name, proc.stdout, proc.stderr)
        if name.endswith("-sealed"):
            seal = seal_out.read_bytes()
            assert f"SEAL {len(seal)}" in proc.stdout and parse_seal(seal).es_id == "3301060000000001", name
        else:
            assert "NO SEAL" in proc.stdout, name


def _embed_external_cms(pdf: bytes, make_cms, reserve: int = 8192) -> bytes:
    """A signature placeholder (pyHanko's CMS embedder, as the fast path uses) filled with ``make_cms(covered)``."""
    import datetime as dt

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields
    from pyhanko.sign.signers.cms_embedder import PdfCMSEmbedder, SigIOSetup, SigObjSetup
    from pyhanko.sign.signers.pdf_byterange import SignatureObject

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    embedder = PdfCMSEmbedder().write_cms(field_name="BCSignature", writer=writer)
    next(embedder)
    embedder.send(SigObjSetup(sig_placeholder=SignatureObject(
        timestamp=dt.datetime.now(dt.UTC), subfilter=fields.SigSeedSubFilter.ADOBE_PKCS7_DETACHED,
        bytes_reserved=2 * reserve)))
    prepared, out = embedder.send(SigIOSetup(md_algorithm="sm3", in_place=False, output=io.BytesIO()))
    buf = out.getvalue()
    covered = buf[:prepared.reserved_region_start] + buf[prepared.reserved_region_end:]
    embedder.send(make_cms(covered))
    return out.getvalue()


def _bc_signed_pdf(tmp_path, sm2_id: str | None):
    from trustsvc.algorithms import private_key_to_pkcs8

    ident = dev_identity("sm2")
    (tmp_path / "k.p8").write_bytes(private_key_to_pkcs8(ident.signer._key))
    (tmp_path / "c.der").write_bytes(ident.signer.certificate_chain[0])

    def bc_cms(covered: bytes) -> bytes:
        (tmp_path / "d.bin").write_bytes(covered)
        args = [str(tmp_path / n) for n in ("k.p8", "c.der", "d.bin", "cms.der")]
        proc = bouncycastle.run("PdfCmsTool", "sign", *args, *([sm2_id] if sm2_id is not None else []))
        assert proc.returncode == 0 and "SIGNED" in proc.stdout, (proc.stdout, proc.stderr)
        return (tmp_path / "cms.der").read_bytes()

    return _embed_external_cms(licence_pdf(), bc_cms), ident


def test_we_verify_bouncycastle_sm2_cms(tmp_path):
    from trustsvc.pdf.verify import verify_pdf

    require_tool("java")
    data, ident = _bc_signed_pdf(tmp_path, None)
    report = verify_pdf(data, trust_roots=[ident.root.der])
    assert report.valid, report.to_text()
    assert report.signatures[0].algorithm == "sm2-sm3" and report.signatures[0].digest == "sm3"
    status = validate_pdf_signature(PdfFileReader(io.BytesIO(data)).embedded_signatures[0],
                                    validation_context([ident.root.der]))
    assert status.intact and status.valid and status.trusted


def test_bouncycastle_sm2_cms_with_empty_id_fails_naming_the_id(tmp_path):
    from trustsvc.pdf.verify import verify_pdf

    require_tool("java")
    data, ident = _bc_signed_pdf(tmp_path, "-")
    report = verify_pdf(data, trust_roots=[ident.root.der])
    assert not report.valid
    sig_check = next(c for c in report.signatures[0].checks if c.name == "signature")
    assert sig_check.ok is False and "SM2_ID" in sig_check.detail and "ID" in sig_check.detail, report.to_text()
