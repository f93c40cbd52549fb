"""Our PDFs against pyHanko's own validator, poppler's pdfsig, qpdf --check and BouncyCastle."""

from __future__ import annotations

import io
import subprocess

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from tests.conftest import require_tool
from tests.interop import bouncycastle
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pdf.signing import sign_pdf
from trustsvc.pdf.verify import signed_bytes


def _outputs(kind: str) -> dict[str, bytes]:
    ident = dev_identity(kind)
    return {"ordinary": sign_pdf(licence_pdf(), ident.signer),
            "fast": FastPdfSigner(ident.signer).sign(licence_pdf())}, ident


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_pdfsig_qpdf_and_pyhanko(kind, tmp_path):
    pdfsig, qpdf = require_tool("pdfsig"), require_tool("qpdf")
    outputs, ident = _outputs(kind)
    for name, data in outputs.items():
        sig = PdfFileReader(io.BytesIO(data)).embedded_signatures[0]
        status = validate_pdf_signature(sig, validation_context([ident.root.der]))
        assert status.intact and status.valid and status.trusted, name
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        out = subprocess.run([pdfsig, str(path)], capture_output=True, text=True).stdout
        assert "Signature is Valid." in out, (name, out)
        check = subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True)
        assert check.returncode == 0 and "No syntax or stream encoding errors found" in check.stdout, check.stdout


def test_bouncycastle_verifies_sm2_cms(tmp_path):
    require_tool("java")
    outputs, _ = _outputs("sm2")
    for name, data in outputs.items():
        cms_der, covered = signed_bytes(PdfFileReader(io.BytesIO(data)).embedded_signatures[0])
        (tmp_path / "c.der").write_bytes(cms_der)
        (tmp_path / "d.bin").write_bytes(covered)
        proc = bouncycastle.run("PdfCmsTool", "verify", str(tmp_path / "c.der"), str(tmp_path / "d.bin"))
        assert proc.returncode == 0 and "VALID 1.2.156.10197.1.501" in proc.stdout, (name, proc.stdout, proc.stderr)
