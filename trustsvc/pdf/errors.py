"""Reading PDFs with precise errors: malformed, truncated, encrypted."""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from trustsvc.errors import DecodeError, InvalidInput

PdfInput = bytes | bytearray | memoryview | BinaryIO
# what pyHanko raises, while it reads or signs, on a file whose structure is broken (a /Pages without /Count or
# /Kids ...): also AssertionError (trailer /Root not a dictionary or missing, a /Prev loop, an xref stream
# without /Type /XRef), ArithmeticError (OverflowError: startxref beyond ssize_t; decimal.InvalidOperation: a
# number such as "1.2.3" in an xref stream's dictionary), RecursionError (arrays nested 50000 deep) and
# NotImplementedError (an xref stream's /Filter it does not know)
BROKEN_STRUCTURE = (KeyError, TypeError, IndexError, AttributeError, zlib.error, AssertionError, ArithmeticError,
                    RecursionError, NotImplementedError)
# what pyHanko raises on a malformed file it opens
_MALFORMED = (PdfError, ValueError, *BROKEN_STRUCTURE)


def as_stream(pdf: PdfInput) -> BinaryIO:
    """A seekable binary stream over ``pdf`` (bytes are wrapped; files are used as they are, not read into memory)."""
    if isinstance(pdf, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(pdf))
    return pdf


def check_header(stream: BinaryIO) -> None:
    """PDF_NOT_PDF without a %PDF- header in the first 1 KB, PDF_TRUNCATED without %%EOF in the last 2 KB."""
    stream.seek(0)
    head = stream.read(1024)
    if b"%PDF-" not in head:
        raise DecodeError("not a PDF: no %PDF- header in the first 1024 bytes", reason="PDF_NOT_PDF")
    stream.seek(-min(2048, stream.seek(0, io.SEEK_END)), io.SEEK_END)
    if b"%%EOF" not in stream.read():
        raise DecodeError("PDF is truncated: no %%EOF marker at the end", reason="PDF_TRUNCATED")
    stream.seek(0)


def open_reader(pdf: PdfInput) -> PdfFileReader:
    """A pyHanko reader; raises DecodeError (PDF_NOT_PDF/PDF_TRUNCATED/PDF_MALFORMED), InvalidInput (PDF_ENCRYPTED)."""
    stream = as_stream(pdf)
    check_header(stream)
    try:
        reader = PdfFileReader(stream, strict=False)
        _ = reader.root, reader.trailer
    except _MALFORMED as exc:
        raise DecodeError(f"PDF is malformed: {exc}", reason="PDF_MALFORMED") from None
    if reader.encrypted:
        raise InvalidInput("PDF is encrypted: decrypt it before signing or verifying", reason="PDF_ENCRYPTED")
    return reader


def open_writer(pdf: PdfInput) -> IncrementalPdfFileWriter:
    """An incremental writer over ``pdf`` with the same checks as open_reader."""
    stream = as_stream(pdf)
    open_reader(stream)
    stream.seek(0)
    try:
        return IncrementalPdfFileWriter(stream, strict=False)
    except _MALFORMED as exc:
        raise DecodeError(f"PDF is malformed: {exc}", reason="PDF_MALFORMED") from None
