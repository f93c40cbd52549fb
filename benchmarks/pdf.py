"""100 KB e-licence PDFs per second per core: fast path (PAdES B-B) vs pyHanko's ordinary signing call, SM2 and
ECDSA, invisible and with a visible seal; verify/s.

Run: python -m benchmarks.pdf  (checks fast/ordinary >= 10, invisible and visible, and that fast output validates)
"""

from __future__ import annotations

import io
import json

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation import validate_pdf_signature

from benchmarks.harness import RESULTS, interleaved
from trustsvc.pdf.appearance import SealAppearance
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.pyhanko_sm2 import TrustsvcPdfSigner, digest_algorithm, validation_context
from trustsvc.pdf.signing import sign_pdf
from trustsvc.pdf.verify import verify_pdf


def main() -> int:
    from trustsvc.seal.picture import render_png

    doc = licence_pdf(100_000)
    seal = SealAppearance(render_png("北京某某科技有限公司", name="合同专用章", dpi=150), box=(300, 400, 150, 150))
    jobs, checks = {}, {}
    for kind in ("sm2", "ecdsa"):
        ident = dev_identity(kind)
        fast = FastPdfSigner(ident.signer)
        fast_visible = FastPdfSigner(ident.signer, appearance=seal)
        meta = signers.PdfSignatureMetadata(field_name="Sig", md_algorithm=digest_algorithm(ident.signer.algorithm))
        pyh = TrustsvcPdfSigner(ident.signer)

        def ordinary(pyh=pyh, meta=meta) -> bytes:
            from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
            return signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(doc)), meta, signer=pyh).getvalue()

        for name, signer in (("fast", fast), ("fast visible", fast_visible)):
            signed = signer.sign(doc)
            sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
            st = validate_pdf_signature(sig, validation_context([ident.root.der]))
            pades = sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached" and "signing_time" not in [
                a["type"].native for a in sig.signer_info["signed_attrs"]]
            ok = st.intact and st.valid and st.trusted and pades
            checks[f"{kind} {name} output validates (PAdES B-B)"] = bool(ok)
        signed = fast.sign(doc)
        jobs[f"{kind} fast"] = lambda fast=fast: fast.sign(doc)
        jobs[f"{kind} fast visible"] = lambda fast=fast_visible: fast.sign(doc)
        jobs[f"{kind} pyhanko ordinary"] = ordinary
        jobs[f"{kind} ordinary visible"] = lambda s=ident.signer: sign_pdf(doc, s, appearance=seal)
        jobs[f"{kind} verify"] = lambda signed=signed, root=ident.root.der: verify_pdf(signed, trust_roots=[root])
    rates = interleaved(jobs, seconds=0.5, rounds=3)
    result = {name: round(r.ops_per_s, 1) for name, r in rates.items()}
    for kind in ("sm2", "ecdsa"):
        ratio = rates[f"{kind} fast"].ops_per_s / rates[f"{kind} pyhanko ordinary"].ops_per_s
        result[f"{kind} fast/ordinary"] = round(ratio, 1)
        checks[f"{kind} fast/ordinary >= 10"] = ratio >= 10
        visible = rates[f"{kind} fast visible"].ops_per_s / rates[f"{kind} ordinary visible"].ops_per_s
        result[f"{kind} fast visible/ordinary visible"] = round(visible, 1)
        checks[f"{kind} fast visible/ordinary visible >= 10"] = visible >= 10
        plain = rates[f"{kind} fast visible"].ops_per_s / rates[f"{kind} pyhanko ordinary"].ops_per_s
        result[f"{kind} fast visible/ordinary invisible"] = round(plain, 1)
    result["checks"] = checks
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pdf.json").write_text(json.dumps(result, indent=2))
    for k, v in result.items():
        print(f"{k:32} {v}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
