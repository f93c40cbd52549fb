"""Fast path and batch: same validity as the ordinary path, retry on a small placeholder, atomic outputs."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from trustsvc.pdf.batch import batch_sign
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.pyhanko_sm2 import validation_context

_IDENT = {k: dev_identity(k) for k in ("sm2", "ecdsa")}


def _factory():
    return _IDENT["sm2"].signer


@pytest.mark.parametrize("kind", ["sm2", "ecdsa"])
def test_fast_output_validates(kind):
    ident = _IDENT[kind]
    out = FastPdfSigner(ident.signer).sign(licence_pdf(100_000))
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
    status = validate_pdf_signature(sig, validation_context([ident.root.der]))
    assert status.intact and status.valid and status.trusted


def test_placeholder_too_small_retries():
    signer = FastPdfSigner(_IDENT["ecdsa"].signer, reserve=64)
    out = signer.sign(licence_pdf())
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
    assert validate_pdf_signature(sig, validation_context([_IDENT["ecdsa"].root.der])).valid
    assert signer.reserve > 64


@pytest.mark.parametrize("workers", [0, 2])
def test_batch_signs_directory(tmp_path, workers):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        (src / f"l{i}.pdf").write_bytes(licence_pdf())
    (src / "bad.pdf").write_bytes(b"not a pdf")
    seen = []
    results = batch_sign(sorted(src.iterdir()), tmp_path / "out", _factory, workers=workers,
                         progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (5, 5)
    bad = [r for r in results if r.error]
    assert len(bad) == 1 and bad[0].source.endswith("bad.pdf")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"l{i}.pdf" for i in range(4)]
    for p in (tmp_path / "out").iterdir():
        sig = PdfFileReader(io.BytesIO(p.read_bytes())).embedded_signatures[0]
        assert validate_pdf_signature(sig, validation_context([_IDENT["sm2"].root.der])).intact
