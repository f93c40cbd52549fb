"""Seal a document: SES_Signature v4 over DER(TBS_Sign), with an optional RFC 3161 time stamp.

The seal's DER is fixed, so TBS_Sign is assembled from prepared DER pieces: per signature only the
time, dataHash and propertyInfo are encoded, then one SM2 signature is made. TBS_Sign is
``30 len || version || seal || timeInfo || dataHash || propertyInfo``: everything up to timeInfo is a
prefix fixed per total length (the seal, with its picture, is most of the bytes), so the signer
absorbs SM3(Z || prefix) once (``Signer.prepare_prefix``) and hashes only the ~100-byte suffix per
signature. Signers without that fast path (HSMs) just sign prefix || suffix.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from asn1crypto import core

from trustsvc.algorithms import oids
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import PreparedPrefix, Signer
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import Conflict, InvalidInput, KeyMismatch
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.cms import der_length, tlv
from trustsvc.seal.parse import parse_seal

UTC = dt.UTC
Timestamper = Callable[[bytes], bytes]  # signature value -> DER TimeStampToken
StatusLookup = Callable[[str], "str | None"]
PREFIX_CACHE = 8  # prepared TBS_Sign prefixes kept per SealSigner (one per distinct TBS_Sign length)



def bit_string(data: bytes) -> bytes:
    return tlv(0x03, b"\x00" + data)


class SealSigner:
    """Signs documents with one seal and one holder key; checks made once, pieces prepared once."""

    def __init__(self, seal_der: bytes, signer: Signer, signer_cert: Certificate | bytes | None = None, *,
                 status: StatusLookup | None = None, timestamper: Timestamper | None = None) -> None:
        self.seal = parse_seal(seal_der)
        if self.seal.structure != "v4":
            raise InvalidInput("only GB/T 38540 (v4) seals sign new documents", reason="SEAL_VERSION")
        if signer.algorithm is not SignatureAlgorithm.SM2_SM3:
            raise InvalidInput("seal signatures use SM2-with-SM3", reason="UNSUPPORTED_ALGORITHM")
        cert_der = signer_cert.der if isinstance(signer_cert, Certificate) else (signer_cert or signer.certificate)
        if cert_der is None:
            raise InvalidInput("the signer certificate is needed", reason="NO_SIGNER_CERT")
        cert = Certificate(cert_der)
        if cert.public_key != signer.public_key:
            raise KeyMismatch("the signing key does not match the signer certificate", reason="KEY_MISMATCH")
        listed = (cert.der in self.seal.cert_list if self.seal.cert_list_type == 1
                  else any(v == sm3(cert.der) for _k, v in self.seal.cert_digests))
        if not listed:
            raise Conflict("the signer certificate is not in the seal's certList", reason="SIGNER_NOT_IN_CERT_LIST")
        self.signer, self.cert = signer, cert
        self._cert_window = (cert.not_before, cert.not_after)
        self._status, self._timestamper = status, timestamper
        self._head = tlv(0x02, b"\x04") + self.seal.der  # version 4, eseal (as received)
        self._prefixes: dict[int, PreparedPrefix] = {}
        self._lock = threading.Lock()
        self._last_time: tuple[dt.datetime, bytes] | None = None
        self._tail = tlv(0x04, cert.der) + core.ObjectIdentifier(oids.SM2_WITH_SM3).dump()

    def _prefix(self, content_length: int) -> PreparedPrefix:
        """TBS_Sign's bytes up to timeInfo: its SEQUENCE header (which encodes the total length, so it is
        keyed by that length: only propertyInfo varies it), version and the seal, prepared once per length."""
        prepared = self._prefixes.get(content_length)
        if prepared is None:
            prepared = self.signer.prepare_prefix(b"\x30" + der_length(content_length) + self._head)
            with self._lock:  # servers share one SealSigner between threads
                while len(self._prefixes) >= PREFIX_CACHE:
                    self._prefixes.pop(next(iter(self._prefixes)))
                self._prefixes[content_length] = prepared
        return prepared

    def check_usable(self, when: dt.datetime) -> None:
        """Refuse a seal that is not active or not within its (and the certificate's) validity."""
        if self._status is not None:
            state = self._status(self.seal.es_id)
            if state != "active":
                raise Conflict(f"seal {self.seal.es_id} is {state or 'not registered'}", reason="SEAL_NOT_ACTIVE")
        start, end = self.seal.valid_start, self.seal.valid_end
        if start is None or end is None or not start <= when <= end:
            raise Conflict(f"seal {self.seal.es_id} is not valid at {when} ({start} .. {end})",
                           reason="SEAL_NOT_VALID_NOW")
        if not self._cert_window[0] <= when <= self._cert_window[1]:
            raise Conflict(f"signer certificate not valid at {when}", reason="CERT_NOT_VALID_NOW")

    def sign_document(self, document: bytes, property_info: str, *, at: dt.datetime | None = None) -> bytes:
        """SES_Signature over SM3(document)."""
        return self.sign_hash(sm3(document), property_info, at=at)

    def sign_hash(self, data_hash: bytes, property_info: str, *, at: dt.datetime | None = None) -> bytes:
        """SES_Signature over a caller-supplied 32-byte SM3 dataHash."""
        if len(data_hash) != 32:
            raise InvalidInput("dataHash must be a 32-byte SM3 digest", reason="BAD_DATA_HASH")
        if not property_info.isascii():
            raise InvalidInput("propertyInfo is an IA5String (ASCII)", reason="BAD_PROPERTY_INFO")
        when = (at or dt.datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self.check_usable(when)
        # timeInfo (GeneralizedTime, 17 bytes) || dataHash (BIT STRING, 35 bytes) || propertyInfo (IA5String)
        suffix = b"".join((self._time_der(when), b"\x03\x21\x00", data_hash, tlv(0x16, property_info.encode())))
        prefix = self._prefix(len(self._head) + len(suffix))
        signature = self.signer.sign_with_prefix(prefix, suffix)
        parts = [prefix.data, suffix, self._tail, bit_string(signature)]
        if self._timestamper is not None:
            parts.append(tlv(0xA0, bit_string(self._timestamper(signature))))
        body = b"".join(parts)
        return b"\x30" + der_length(len(body)) + body

    def _time_der(self, when: dt.datetime) -> bytes:
        """DER GeneralizedTime of ``when`` (whole seconds, UTC); the last one is kept (signing bursts)."""
        if self._last_time is None or self._last_time[0] != when:
            self._last_time = (when, tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode()))
        return self._last_time[1]
