"""E-licence metadata (GB/T 36903 subset) as XMP in a trustsvc namespace, written before signing so it is covered."""

from __future__ import annotations

import dataclasses
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.metadata.xmp_xml import MetadataStream
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from trustsvc.errors import InvalidInput

NS = "https://trustsvc.example/ns/elicence/1.0/"
PREFIX = "tsl"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_FIELDS = ("licence_type", "licence_number", "holder_name", "holder_id", "issuing_authority",
           "issue_date", "valid_from", "valid_until")
REQUIRED = ("licence_type", "licence_number", "holder_name", "holder_id", "issuing_authority", "issue_date")
_DATES = ("issue_date", "valid_from", "valid_until")
MAX_FIELD = 512  # characters per field: a licence's metadata is a few short strings
_XML_NAMES = {f: "".join(p.capitalize() if i else p for i, p in enumerate(f.split("_"))) for f in _FIELDS}


@dataclasses.dataclass(frozen=True)
class LicenceMetadata:
    """What an e-licence says about itself; ``holder_id`` is an ID number or a unified social credit code."""

    licence_type: str
    licence_number: str
    holder_name: str
    holder_id: str
    issuing_authority: str
    issue_date: str  # ISO 8601 date
    valid_from: str = ""
    valid_until: str = ""

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LicenceMetadata:
        """As read back from a document: missing fields are empty, nothing is checked."""
        return cls(**{k: str(data.get(k, "")) for k in _FIELDS})

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, source: str = "licence metadata") -> LicenceMetadata:
        """Metadata to write into a licence, checked: known fields only, the required ones present, every value
        a string of at most MAX_FIELD characters without control characters, dates as ISO 8601 (YYYY-MM-DD),
        valid_from not after valid_until. Anything else is InvalidInput BAD_LICENCE_METADATA naming the field."""
        def bad(message: str) -> InvalidInput:
            return InvalidInput(f"{source}: {message}", reason="BAD_LICENCE_METADATA")

        unknown = sorted(str(k) for k in set(data) - set(_FIELDS))
        missing = [f for f in REQUIRED if not data.get(f)]
        if unknown or missing:
            raise bad(f"unknown fields {unknown}, missing fields {missing}; known: {list(_FIELDS)}")
        for name, value in data.items():
            if not isinstance(value, str):
                raise bad(f"{name} must be a string, not {type(value).__name__}")
            if len(value) > MAX_FIELD:
                raise bad(f"{name} is longer than {MAX_FIELD} characters")
            if any(_not_text(c) for c in value):
                raise bad(f"{name} holds a control character or one XML cannot carry")
        dates = {}
        for name in _DATES:
            if data.get(name):
                try:
                    dates[name] = dt.date.fromisoformat(data[name])
                except ValueError:
                    raise bad(f"{name} {data[name]!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
        if "valid_from" in dates and "valid_until" in dates and dates["valid_from"] > dates["valid_until"]:
            raise bad("valid_from is after valid_until")
        return cls.from_dict(data)


def _not_text(c: str) -> bool:
    """C0/C1 controls, surrogates and the non-characters XML 1.0 excludes."""
    n = ord(c)
    return n < 0x20 or 0x7F <= n < 0xA0 or 0xD800 <= n < 0xE000 or n in (0xFFFE, 0xFFFF)


def to_xmp(meta: LicenceMetadata) -> bytes:
    """An XMP packet carrying ``meta`` in the trustsvc namespace."""
    ET.register_namespace("rdf", _RDF)
    ET.register_namespace(PREFIX, NS)
    ET.register_namespace("x", "adobe:ns:meta/")
    root = ET.Element("{adobe:ns:meta/}xmpmeta")
    rdf = ET.SubElement(root, f"{{{_RDF}}}RDF")
    desc = ET.SubElement(rdf, f"{{{_RDF}}}Description", {f"{{{_RDF}}}about": ""})
    for f in _FIELDS:
        ET.SubElement(desc, f"{{{NS}}}{_XML_NAMES[f]}").text = getattr(meta, f)
    body = ET.tostring(root, encoding="utf-8")
    return (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body
            + b'\n<?xpacket end="w"?>')


def from_xmp(data: bytes) -> LicenceMetadata | None:
    """The licence metadata in an XMP packet, or None if it has none."""
    try:
        start = data.index(b"<x:xmpmeta") if b"<x:xmpmeta" in data else data.index(b"<")
        end = data.rindex(b"</x:xmpmeta>") + len(b"</x:xmpmeta>") if b"</x:xmpmeta>" in data else len(data)
        root = ET.fromstring(data[start:end])
    except (ValueError, ET.ParseError):
        return None
    values: dict[str, str] = {}
    for f in _FIELDS:
        tag = f"{{{NS}}}{_XML_NAMES[f]}"
        el = root.find(f".//{tag}")
        if el is not None:
            values[f] = el.text or ""
            continue
        for desc in root.iter(f"{{{_RDF}}}Description"):  # pyHanko re-serialises simple values as attributes
            if tag in desc.attrib:
                values[f] = desc.attrib[tag]
    return LicenceMetadata.from_dict(values) if values else None


def write_metadata(writer: BasePdfFileWriter, meta: LicenceMetadata) -> None:
    """Set the catalog's /Metadata to an XMP stream with ``meta`` (in the pending revision)."""
    # A MetadataStream: pyHanko then updates it in place (keeping our namespace) rather than replacing it.
    stream = MetadataStream(stream_data=to_xmp(meta))
    writer.root[generic.pdf_name("/Metadata")] = writer.add_object(stream)
    writer.update_root()


def read_metadata(reader: PdfFileReader, revision: int | None = None) -> LicenceMetadata | None:
    """The licence metadata of the document's /Metadata, if any: as it is now, or as it was in ``revision``
    (0-based, as pyHanko numbers a signature's ``signed_revision``)."""
    try:
        root = reader.root if revision is None else reader.get_historical_root(revision)
        stream = root.get("/Metadata")
        if stream is None:
            return None
        return from_xmp(stream.get_object().data)
    except Exception:  # a broken metadata stream is reported as "no metadata"
        return None
