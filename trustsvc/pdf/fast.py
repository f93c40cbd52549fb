"""Fast path: reserve the /Contents size up front and build each CMS from a prepared template.

Per document the cost is one incremental update written by pyHanko's low-level CMS embedder,
one hash over the byte ranges and one signature; no dry run and no asn1crypto CMS build.
The default /SubFilter is ETSI.CAdES.detached with PAdES baseline signed attributes (content-type,
message-digest, ESS signing-certificate-v2; the signing time is the signature dictionary's /M).
adbe.pkcs7.detached keeps a signingTime attribute in the CMS. An optional visible seal is prepared
once (``fast_seal.PreparedSeal``) and stamped into each document; a registered seal's SESeal is bound in the
template's signed attributes (``seal_binding``).
"""

from __future__ import annotations

import datetime as dt
import io

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields
from pyhanko.sign.signers.cms_embedder import PdfCMSEmbedder, SigIOSetup, SigObjSetup
from pyhanko.sign.signers.pdf_byterange import SignatureObject

from trustsvc.algorithms.signer import Signer
from trustsvc.errors import DecodeError, InvalidInput, TrustsvcError
from trustsvc.pdf.appearance import SealAppearance
from trustsvc.pdf.errors import PdfInput, as_stream, check_header
from trustsvc.pdf.fast_seal import PreparedSeal
from trustsvc.pdf.metadata import LicenceMetadata, write_metadata
from trustsvc.pdf.pyhanko_sm2 import digest_algorithm, max_signature_size
from trustsvc.pdf.seal_binding import checked_seal, seal_attribute
from trustsvc.pki.cms import CmsTemplate

UTC = dt.UTC
_SUBFILTERS = {"ETSI.CAdES.detached": fields.SigSeedSubFilter.PADES,
               "adbe.pkcs7.detached": fields.SigSeedSubFilter.ADOBE_PKCS7_DETACHED}


class PlaceholderTooSmall(InvalidInput):
    """The CMS did not fit the reserved /Contents; the fast signer retries with more room."""

    reason = "PLACEHOLDER_TOO_SMALL"

    def __init__(self, message: str, needed: int) -> None:
        super().__init__(message)
        self.needed = needed


class FastPdfSigner:
    """Signs many PDFs with one key: template, reserved size and seal picture are prepared once.

    ``appearance`` (box, existing field or anchor; picture only) makes the signature visible; ``reason``,
    ``location`` and ``contact`` go into every signature dictionary.
    """

    def __init__(self, signer: Signer, *, subfilter: str = "ETSI.CAdES.detached", field_prefix: str = "Signature",
                 reserve: int | None = None, appearance: SealAppearance | None = None, reason: str | None = None,
                 location: str | None = None, contact: str | None = None) -> None:
        if not signer.certificate_chain:
            raise InvalidInput("a PDF signer needs a certificate: give the signer its chain", reason="NO_CERTIFICATE")
        if subfilter not in _SUBFILTERS:
            raise InvalidInput(f"unsupported /SubFilter {subfilter!r}", reason="BAD_SUBFILTER")
        self.signer = signer
        self.reason, self.location, self.contact = reason, location, contact  # /Reason, /Location, /ContactInfo
        self.subfilter = _SUBFILTERS[subfilter]
        self.field_prefix = field_prefix
        self.md_algorithm = digest_algorithm(signer.algorithm)
        extra = None
        if appearance is not None and appearance.seal is not None:  # a registered seal: bound by a signed attribute
            checked_seal(appearance.seal, signer.certificate or b"", picture=appearance.picture)
            extra = [seal_attribute(appearance.seal)]
        self.template = CmsTemplate(signer, signing_time_attr=self.subfilter is not fields.SigSeedSubFilter.PADES,
                                    extra_signed_attrs=extra)
        self.seal = PreparedSeal(appearance) if appearance is not None else None
        probe = self.template.assemble(self.template.signed_attrs(bytes(self._digest_size())),
                                       bytes(max_signature_size(signer)))
        self.reserve = reserve if reserve is not None else len(probe) + 32  # DER bytes; hex is twice this

    def _digest_size(self) -> int:
        return {"sha256": 32, "sm3": 32, "sha384": 48, "sha512": 64}[self.md_algorithm]

    def sign(self, pdf: PdfInput, *, field_name: str | None = None, signing_time: dt.datetime | None = None,
             metadata: LicenceMetadata | None = None) -> bytes:
        """The signed PDF; ``metadata`` is written as XMP in the revision the signature covers. A too small
        placeholder is retried once with the exact size needed."""
        data = pdf if isinstance(pdf, bytes) else as_stream(pdf).read()
        try:
            return self._sign_guarded(data, field_name, signing_time, metadata, self.reserve)
        except PlaceholderTooSmall as exc:
            self.reserve = exc.needed + 64
            return self._sign_guarded(data, field_name, signing_time, metadata, self.reserve)

    def _sign_guarded(self, data: bytes, field_name: str | None, signing_time: dt.datetime | None,
                      metadata: LicenceMetadata | None, reserve: int) -> bytes:
        """_sign_once with pyHanko's lazy-parsing errors turned into trustsvc errors."""
        try:
            return self._sign_once(data, field_name, signing_time, metadata, reserve)
        except TrustsvcError:
            raise
        except PdfError as exc:
            raise DecodeError(f"PDF is malformed: {exc}", reason="PDF_MALFORMED") from None
        except Exception as exc:  # pyHanko raises many kinds (ValueError, TypeError ...) on odd input
            raise DecodeError(f"PDF cannot be signed: {type(exc).__name__}: {exc}", reason="PDF_MALFORMED") from None

    def _sign_once(self, data: bytes, field_name: str | None, signing_time: dt.datetime | None,
                   metadata: LicenceMetadata | None, reserve: int) -> bytes:
        when = (signing_time or dt.datetime.now(UTC)).replace(microsecond=0)
        check_header(io.BytesIO(data))  # the same PDF_NOT_PDF / PDF_TRUNCATED as the pyHanko path
        try:
            writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise DecodeError(f"PDF is malformed: {exc}", reason="PDF_MALFORMED") from None
        if writer.prev.encrypted:
            raise InvalidInput("PDF is encrypted: decrypt it before signing", reason="PDF_ENCRYPTED")
        if metadata is not None:
            write_metadata(writer, metadata)
        app = self.seal.appearance if self.seal is not None else None
        name = field_name or (app.field if app is not None else None) or self._free_name(writer)
        spec = self.seal.field_spec(writer, name) if self.seal is not None else None
        embedder = PdfCMSEmbedder(new_field_spec=spec).write_cms(field_name=name, writer=writer)
        field_ref = next(embedder)
        if self.seal is not None:
            self.seal.apply(writer, field_ref.get_object())
        embedder.send(SigObjSetup(sig_placeholder=SignatureObject(
            timestamp=when, subfilter=self.subfilter, bytes_reserved=2 * reserve, reason=self.reason,
            location=self.location, contact_info=self.contact)))
        out = io.BytesIO()
        prepared, out = embedder.send(SigIOSetup(md_algorithm=self.md_algorithm, in_place=False, output=out))
        attrs = self.template.signed_attrs(prepared.document_digest, when)
        cms_der = self.template.assemble(attrs, self.signer.sign(attrs))
        if len(cms_der) > reserve:
            raise PlaceholderTooSmall(f"CMS of {len(cms_der)} bytes does not fit {reserve} reserved", len(cms_der))
        embedder.send(cms_der)
        return out.getvalue()

    def _free_name(self, writer: IncrementalPdfFileWriter) -> str:
        used = {n for n, _, _ in fields.enumerate_sig_fields(writer)}
        n = 1
        while f"{self.field_prefix}{n}" in used:
            n += 1
        return f"{self.field_prefix}{n}"
