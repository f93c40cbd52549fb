"""Development material for tests, benchmarks and demos: a throw-away CA chain and small e-licence PDFs."""

from __future__ import annotations

import dataclasses
import io
import os

from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.pki.certificate import Certificate, CertificateBuilder

_SPECS = {"sm2": "sm2", "ecdsa": "ec-p256", "ec-p256": "ec-p256", "rsa": "rsa-2048", "rsa-2048": "rsa-2048"}


@dataclasses.dataclass(frozen=True)
class DevIdentity:
    """A leaf signer (carrying leaf + root certificates) and its root."""

    signer: SoftwareSigner
    root: Certificate
    root_signer: SoftwareSigner


def dev_identity(kind: str = "sm2", name: str = "测试签章人") -> DevIdentity:
    """A root CA and a leaf certificate of key ``kind`` (sm2, ecdsa, rsa)."""
    spec = _SPECS[kind]
    root_signer = SoftwareSigner.generate(spec)
    root = (CertificateBuilder().subject({"common_name": f"trustsvc dev root {kind}", "organization_name": "trustsvc"})
            .public_key(root_signer.public_key).basic_constraints(True).key_usage({"key_cert_sign", "crl_sign"})
            .sign(root_signer))
    leaf_signer = SoftwareSigner.generate(spec)
    leaf = (CertificateBuilder().subject({"common_name": name, "organization_name": "trustsvc"})
            .public_key(leaf_signer.public_key).key_usage({"digital_signature", "non_repudiation"})
            .sign(root_signer, root))
    return DevIdentity(leaf_signer.with_certificates([leaf.der, root.der]), root,  # type: ignore[arg-type]
                       root_signer.with_certificates([root.der]))  # type: ignore[arg-type]


def licence_pdf(size: int = 0, *, text: str = "Electronic licence", pages: int = 1) -> bytes:
    """A small e-licence PDF (pyHanko writer), padded with an incompressible stream to about ``size`` bytes."""
    from pyhanko.pdf_utils import generic, writer

    w = writer.PdfFileWriter()
    for i in range(pages):
        content = (f"BT /F1 24 Tf 72 720 Td ({text} {i + 1}) Tj ET\n"
                   "BT /F1 12 Tf 72 690 Td (Holder: ANCHOR-HOLDER) Tj ET\n").encode()
        stream = generic.StreamObject(stream_data=content)
        font = generic.DictionaryObject({
            generic.pdf_name("/Type"): generic.pdf_name("/Font"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
            generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica")})
        page = writer.PageObject(
            contents=w.add_object(stream), media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
            resources=generic.DictionaryObject({generic.pdf_name("/Font"): generic.DictionaryObject(
                {generic.pdf_name("/F1"): w.add_object(font)})}))
        w.insert_page(page)
    if size:
        pad = generic.StreamObject(stream_data=os.urandom(max(size - 1500, 0)))
        w.root[generic.pdf_name("/TrustsvcPadding")] = w.add_object(pad)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()
