"""A local RFC 3161 time-stamping authority signing through any Signer (SM2/SM3, ECDSA, RSA).

``LocalTsa(signer, cert_chain, policy_oid, accuracy, serial_source)``:
``respond(request_der) -> TimeStampResp DER`` (granted, or rejection with a PKIFailureInfo:
badDataFormat, badRequest, badAlg, unacceptedPolicy, unacceptedExtension);
``timestamp(data=... | digest=..., hash_alg='sm3') -> TimeStampToken DER`` skips the request.
The signer's certificate must carry a critical extendedKeyUsage of exactly timeStamping
(RFC 3161 §2.3); the constructor refuses one that does not.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Sequence

from asn1crypto import tsp, x509

from trustsvc.algorithms.signer import Signer
from trustsvc.errors import Conflict, InvalidInput
from trustsvc.pki.certificate import Certificate, check_in_force
from trustsvc.pki.cms import DIGEST_SIZES, hash_data, sign_cms, tlv

UTC = dt.UTC
DEFAULT_POLICY = "1.2.156.112562.1.3.1"  # local development policy OID; configure a real one
HASH_ALGS = ("sm3", "sha256", "sha384", "sha512")


class TsaRejection(Exception):
    """Internal: a request the authority refuses, with its PKIFailureInfo name."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info


def random_serial() -> int:
    """A random positive 127-bit serial number."""
    return int.from_bytes(os.urandom(16), "big") >> 1


class CounterSerial:
    """A thread-safe increasing serial source starting at ``start``."""

    def __init__(self, start: int = 1) -> None:
        self._next = start
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            value, self._next = self._next, self._next + 1
            return value


class LocalTsa:
    """An RFC 3161 authority in this process."""

    def __init__(self, signer: Signer, cert_chain: Sequence[bytes] | None = None, *,
                 policy_oid: str = DEFAULT_POLICY, accuracy: dt.timedelta | None = dt.timedelta(seconds=1),
                 serial_source: Callable[[], int] = random_serial, hash_algs: Sequence[str] = HASH_ALGS,
                 accepted_policies: Sequence[str] = (), clock: Callable[[], dt.datetime] | None = None,
                 include_tsa_name: bool = True) -> None:
        chain = tuple(cert_chain) if cert_chain is not None else signer.certificate_chain
        if not chain:
            raise InvalidInput("a TSA needs its certificate", reason="NO_SIGNER_CERTIFICATE")
        cert = Certificate.load(chain[0])
        if cert.public_key != signer.public_key:
            raise InvalidInput("the TSA certificate does not belong to the signer's key", reason="KEY_MISMATCH")
        check_tsa_certificate(cert)
        self.signer = signer.with_certificates(chain)
        self.certificate = cert
        self.policy_oid = policy_oid
        self.accuracy = accuracy
        self.serial_source = serial_source
        self.hash_algs = tuple(hash_algs)
        self.accepted_policies = {policy_oid, *accepted_policies}
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.include_tsa_name = include_tsa_name

    # ------------------------------------------------------------------------- requests
    def respond(self, request_der: bytes) -> bytes:
        """TimeStampResp DER for a TimeStampReq DER; never raises for a bad request."""
        try:
            req = self._parse(request_der)
            imprint = req["message_imprint"]
            token = self._token(imprint["hash_algorithm"]["algorithm"].native, bytes(imprint["hashed_message"]),
                                req["nonce"].native, bool(req["cert_req"].native))
        except TsaRejection as exc:
            return rejection(exc.fail_info, str(exc))
        except Conflict as exc:  # the authority cannot stamp now (its certificate is not in force)
            return rejection("system_failure", exc.message)
        status = tsp.PKIStatusInfo({"status": "granted"}).dump()
        return tlv(0x30, status + token)

    def _parse(self, der: bytes) -> tsp.TimeStampReq:
        try:
            req = tsp.TimeStampReq.load(der, strict=True)
            version = req["version"].native
            imprint = req["message_imprint"]
            alg = imprint["hash_algorithm"]
            alg_name = alg["algorithm"].native
            params = alg["parameters"].native
            hashed = bytes(imprint["hashed_message"])
            policy = req["req_policy"].dotted if req["req_policy"].native is not None else None
            _ = req["nonce"].native, req["cert_req"].native
            extensions = req["extensions"].native
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise TsaRejection("bad_data_format", f"not a DER TimeStampReq: {exc}") from None
        if version != "v1":
            raise TsaRejection("bad_request", f"TimeStampReq version {version} is not 1")
        if alg_name not in self.hash_algs or params is not None:
            raise TsaRejection("bad_alg", f"hash algorithm {alg['algorithm'].dotted} not accepted")
        if len(hashed) != DIGEST_SIZES[alg_name]:
            raise TsaRejection("bad_data_format", f"{alg_name} imprint must be {DIGEST_SIZES[alg_name]} bytes")
        if policy is not None and policy not in self.accepted_policies:
            raise TsaRejection("unaccepted_policy", f"policy {policy} not accepted")
        if extensions:
            raise TsaRejection("unaccepted_extensions", "request extensions are not supported")
        return req

    # ------------------------------------------------------------------------- tokens
    def timestamp(self, data: bytes | None = None, *, digest: bytes | None = None, hash_alg: str = "sm3",
                  nonce: int | None = None, cert_req: bool = True) -> bytes:
        """A TimeStampToken (DER ContentInfo) for ``data`` or its ``digest``."""
        if (data is None) == (digest is None):
            raise InvalidInput("give exactly one of data or digest", reason="BAD_ARGUMENTS")
        if hash_alg not in self.hash_algs:
            raise InvalidInput(f"hash algorithm {hash_alg} not accepted by this TSA", reason="UNSUPPORTED_DIGEST")
        imprint = digest if digest is not None else hash_data(hash_alg, data or b"")
        if len(imprint) != DIGEST_SIZES[hash_alg]:
            raise InvalidInput(f"a {hash_alg} digest is {DIGEST_SIZES[hash_alg]} bytes", reason="BAD_DIGEST_LENGTH")
        return self._token(hash_alg, imprint, nonce, cert_req)

    def _token(self, hash_alg: str, imprint: bytes, nonce: int | None, cert_req: bool) -> bytes:
        now = self.clock().astimezone(UTC)
        if self.accuracy is None or self.accuracy >= dt.timedelta(seconds=1):
            now = now.replace(microsecond=0)
        else:
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        # outside its certificate's validity a token never verifies (a long-running authority whose
        # certificate expired would otherwise go on issuing them)
        check_in_force(self.certificate, "the time-stamping authority", now)
        info: dict[str, object] = {
            "version": "v1",
            "policy": self.policy_oid,
            "message_imprint": {"hash_algorithm": {"algorithm": hash_alg}, "hashed_message": imprint},
            "serial_number": self.serial_source(),
            "gen_time": now,
        }
        if self.accuracy is not None:
            info["accuracy"] = _accuracy(self.accuracy)
        if nonce is not None:
            info["nonce"] = nonce
        if self.include_tsa_name:
            info["tsa"] = x509.GeneralName(name="directory_name", value=self.certificate.subject_name)
        tst_der = tsp.TSTInfo(info).dump()
        return sign_cms(self.signer, tst_der, detached=False, content_type="tst_info", signing_time=now,
                        include_certificates=cert_req)


def _accuracy(delta: dt.timedelta) -> dict[str, int]:
    micros = int(delta / dt.timedelta(microseconds=1))
    seconds, rest = divmod(micros, 1_000_000)
    millis, micros = divmod(rest, 1000)
    out = {}
    if seconds:
        out["seconds"] = seconds
    if millis:
        out["millis"] = millis
    if micros:
        out["micros"] = micros
    return out


def rejection(fail_info: str, text: str, status: str = "rejection") -> bytes:
    """TimeStampResp DER with status rejection (no token)."""
    info = tsp.PKIStatusInfo({"status": status, "status_string": [text[:200]], "fail_info": {fail_info}})
    return tlv(0x30, info.dump())


def check_tsa_certificate(cert: Certificate) -> None:
    """Raise InvalidInput unless ``cert`` has a critical EKU of exactly timeStamping."""
    ext = next((e for e in cert.asn1["tbs_certificate"]["extensions"]
                if e["extn_id"].native == "extended_key_usage"), None)
    if ext is None or not ext["critical"].native or set(ext["extn_value"].native) != {"time_stamping"}:
        raise InvalidInput("a TSA certificate needs a critical extendedKeyUsage of only timeStamping",
                           reason="TSA_CERT_EKU")


__all__ = ["CounterSerial", "LocalTsa", "check_tsa_certificate", "random_serial", "rejection"]
