"""Sign PDFs through pyHanko with any trustsvc Signer: PAdES B-B..B-LTA, certification or approval, dual signing."""

from __future__ import annotations

import dataclasses
import enum
import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator.context import ValidationContext

from trustsvc.algorithms.signer import Signer
from trustsvc.errors import DecodeError, InvalidInput, TrustsvcError
from trustsvc.fileio import atomic_output
from trustsvc.pdf.errors import BROKEN_STRUCTURE, PdfInput, open_writer
from trustsvc.pdf.metadata import LicenceMetadata, write_metadata
from trustsvc.pdf.pyhanko_sm2 import TrustsvcPdfSigner, digest_algorithm, validation_context
from trustsvc.pdf.seal_binding import RegisteredSealProvider, checked_seal

if TYPE_CHECKING:
    from trustsvc.pdf.appearance import SealAppearance


class PadesLevel(str, enum.Enum):
    """PAdES baseline levels (ETSI EN 319 142-1)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"

    @classmethod
    def parse(cls, value: str | PadesLevel) -> PadesLevel:
        try:
            return cls(value.upper() if isinstance(value, str) else value)
        except ValueError:
            raise InvalidInput(f"unknown PAdES level {value!r}; use B-B, B-T, B-LT or B-LTA",
                               reason="BAD_PADES_LEVEL") from None


class SigningFailed(TrustsvcError):
    """pyHanko refused or failed to sign; the message says why."""

    reason = "PDF_SIGNING_FAILED"


@dataclasses.dataclass(frozen=True)
class SignOptions:
    """How to sign. ``certify`` is a DocMDP level (1 no changes, 2 forms+signing, 3 +annotations) or None."""

    level: PadesLevel | str = PadesLevel.B_B
    timestamper: TimeStamper | None = None
    certify: int | None = None
    field_name: str | None = None
    reason: str | None = None
    location: str | None = None
    contact: str | None = None
    metadata: LicenceMetadata | None = None
    appearance: SealAppearance | None = None
    subfilter: str = "ETSI.CAdES.detached"
    trust_roots: Sequence[bytes] = ()  # for B-LT/B-LTA revocation info; defaults to the signer's root
    crls: Sequence[bytes] = ()
    validation_context: ValidationContext | None = None
    bytes_reserved: int | None = None  # None: pyHanko sizes the CMS with a dry run


_SUBFILTERS = {"ETSI.CAdES.detached": fields.SigSeedSubFilter.PADES,
               "adbe.pkcs7.detached": fields.SigSeedSubFilter.ADOBE_PKCS7_DETACHED}
_MDP = {1: fields.MDPPerm.NO_CHANGES, 2: fields.MDPPerm.FILL_FORMS, 3: fields.MDPPerm.ANNOTATE}


def sign_pdf(pdf: PdfInput, signer: Signer, options: SignOptions | None = None, **kwargs: object) -> bytes:
    """Sign ``pdf`` (bytes or a binary file) with ``signer``; returns the signed PDF (an incremental update).

    Options come as a SignOptions or as its fields by keyword (``level="B-T", timestamper=...``).
    """
    out = io.BytesIO()
    sign_pdf_to(pdf, out, signer, options, **kwargs)
    return out.getvalue()


def sign_pdf_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], signer: Signer,
                  options: SignOptions | None = None, **kwargs: object) -> None:
    """Sign file ``src`` into ``dst`` streaming (the document is never held in memory whole).

    Written to a temporary name beside ``dst``, fsynced and renamed: ``dst`` is never left half-written.
    """
    with open(src, "rb") as inp, atomic_output(dst) as out:
        sign_pdf_to(inp, out, signer, options, **kwargs)


def sign_pdf_to(pdf: PdfInput, output: BinaryIO, signer: Signer, options: SignOptions | None = None,
                **kwargs: object) -> None:
    """Sign ``pdf`` writing the signed PDF to the seekable ``output`` (from its current start, truncated).

    A ``bytes_reserved`` too small for the CMS is retried once with pyHanko's own sizing, never a broken file.
    """
    opts = dataclasses.replace(options or SignOptions(), **kwargs)  # type: ignore[arg-type]
    start = output.tell()
    try:
        _sign_once(pdf, output, signer, opts)
    except PlaceholderTooSmall:
        output.seek(start)
        output.truncate()
        _sign_once(pdf, output, signer, dataclasses.replace(opts, bytes_reserved=None))


class PlaceholderTooSmall(SigningFailed):
    """The reserved /Contents was too small for the CMS (sign_pdf retries larger)."""

    reason = "PLACEHOLDER_TOO_SMALL"


def _sign_once(pdf: PdfInput, output: BinaryIO, signer: Signer, opts: SignOptions) -> None:
    try:
        _sign_into(pdf, output, signer, opts)
    except TrustsvcError:
        raise
    except SigningError as exc:
        if "larger than expected" in str(exc):
            raise PlaceholderTooSmall(f"reserved signature space too small: {exc}") from None
        raise SigningFailed(f"pyHanko could not sign: {exc}") from None
    except PdfError as exc:
        raise DecodeError(f"PDF is malformed: {exc}", reason="PDF_MALFORMED") from None
    except ValueError as exc:  # an existing signature whose CMS does not parse (asn1crypto, pyHanko's CMS errors)
        raise DecodeError(f"PDF cannot be signed: {type(exc).__name__}: {exc}", reason="PDF_MALFORMED") from None
    except BROKEN_STRUCTURE as exc:  # the input's fault (as FastPdfSigner says), not the daemon's: no INTERNAL
        raise DecodeError(f"PDF cannot be signed: {type(exc).__name__}: {exc}", reason="PDF_MALFORMED") from None
    except Exception as exc:  # anything else pyHanko raises while signing (PdfWriteError ...)
        raise SigningFailed(f"signing failed: {type(exc).__name__}: {exc}") from None


def _sign_into(pdf: PdfInput, output: BinaryIO, signer: Signer, opts: SignOptions) -> None:
    level = PadesLevel.parse(opts.level)
    if level is not PadesLevel.B_B and opts.timestamper is None:
        raise InvalidInput(f"PAdES {level.value} needs a time stamper", reason="NO_TIMESTAMPER")
    subfilter = _SUBFILTERS.get(opts.subfilter)
    if subfilter is None:
        raise InvalidInput(f"unsupported /SubFilter {opts.subfilter!r}", reason="BAD_SUBFILTER")
    if opts.certify is not None and opts.certify not in _MDP:
        raise InvalidInput("certify must be a DocMDP level 1, 2 or 3", reason="BAD_DOCMDP_LEVEL")
    writer = open_writer(pdf)
    _check_may_sign(writer, opts)
    if opts.metadata is not None:
        write_metadata(writer, opts.metadata)
    vc = None
    if level in (PadesLevel.B_LT, PadesLevel.B_LTA):
        vc = opts.validation_context or validation_context(
            list(opts.trust_roots) or [signer.certificate_chain[-1]], other_certs=list(signer.certificate_chain),
            crls=list(opts.crls))
    meta = signers.PdfSignatureMetadata(
        field_name=opts.field_name or (opts.appearance.field if opts.appearance is not None else None)
        or _free_field_name(writer, signer),
        md_algorithm=digest_algorithm(signer.algorithm), subfilter=subfilter,
        certify=opts.certify is not None, docmdp_permissions=_MDP.get(opts.certify or 2, fields.MDPPerm.FILL_FORMS),
        reason=opts.reason, location=opts.location, contact_info=opts.contact,
        embed_validation_info=vc is not None, validation_context=vc, use_pades_lta=level is PadesLevel.B_LTA)
    stamp_style, field_spec, text_params, extra = None, None, None, []
    if opts.appearance is not None:
        stamp_style, field_spec = opts.appearance.pyhanko_style(writer, signer, str(meta.field_name))
        text_params = opts.appearance.text_params(signer)
        if opts.appearance.seal is not None:
            checked_seal(opts.appearance.seal, signer.certificate or b"", picture=opts.appearance.picture)
            extra.append(RegisteredSealProvider(opts.appearance.seal))
    pdf_signer = signers.PdfSigner(meta, signer=TrustsvcPdfSigner(signer, extra_signed_attrs=extra),
                                   timestamper=opts.timestamper if level is not PadesLevel.B_B else None,
                                   stamp_style=stamp_style, new_field_spec=field_spec)
    pdf_signer.sign_pdf(writer, output=output, bytes_reserved=opts.bytes_reserved,
                        appearance_text_params=text_params)


def dual_sign_pdf(pdf: PdfInput, signers_: Sequence[Signer], options: SignOptions | None = None,
                  **kwargs: object) -> bytes:
    """Sign with each signer in turn (e.g. SM2 then ECDSA/RSA for generic viewers), in one call.

    Only the first signature certifies (if ``certify`` is set); later ones are approval signatures.
    Appearance applies to the first signature only.
    """
    if not signers_:
        raise InvalidInput("dual signing needs at least one signer", reason="NO_SIGNER")
    opts = dataclasses.replace(options or SignOptions(), **kwargs)  # type: ignore[arg-type]
    data = pdf if isinstance(pdf, bytes) else _read_all(pdf)
    for i, signer in enumerate(signers_):
        step = opts if i == 0 else dataclasses.replace(opts, certify=None, appearance=None, metadata=None,
                                                      field_name=None)
        if i == 0 and opts.field_name is None:
            step = dataclasses.replace(step, field_name=None)
        data = sign_pdf(data, signer, step)
    return data


def _read_all(pdf: PdfInput) -> bytes:
    if isinstance(pdf, (bytearray, memoryview)):
        return bytes(pdf)
    pdf.seek(0)  # type: ignore[union-attr]
    return pdf.read()  # type: ignore[union-attr]


def _free_field_name(writer: object, signer: Signer) -> str:
    """Signature-<ALG>-<n>, not yet used in the document."""
    used = {name for name, _, _ in fields.enumerate_sig_fields(writer)}  # type: ignore[arg-type]
    base = f"Signature-{signer.key_type.value.upper()}"
    n = 1
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"


def _check_may_sign(writer: object, opts: SignOptions) -> None:
    """Refuse what would break earlier signatures: certifying a signed document, signing under DocMDP 1."""
    from pyhanko.sign.validation import pdf_embedded

    reader = writer.prev  # type: ignore[attr-defined]
    existing = [s for s in reader.embedded_signatures]
    if existing and opts.certify is not None:
        raise InvalidInput("the document is already signed: only the first signature may certify",
                           reason="PDF_ALREADY_SIGNED")
    try:
        docmdp = pdf_embedded.read_certification_data(reader)
    except Exception:
        docmdp = None
    if docmdp is not None and docmdp.permission is fields.MDPPerm.NO_CHANGES:
        raise InvalidInput("the document is certified with DocMDP level 1 (no changes): it cannot be signed again",
                           reason="DOCMDP_FORBIDS_CHANGES")
