"""X.509 for SM2 and the rest: certificates, CSRs, CRLs, chain validation, a development CA."""

from trustsvc.pki.certificate import Certificate, CertificateBuilder
from trustsvc.pki.crl import CertificateRevocationList, RevocationReason, RevokedEntry, build_crl
from trustsvc.pki.csr import CertificateRequest, build_csr
from trustsvc.pki.validation import Check, CheckStatus, PathValidationResult, validate, validate_or_raise

__all__ = [
    "Certificate", "CertificateBuilder", "CertificateRequest", "CertificateRevocationList", "Check", "CheckStatus",
    "PathValidationResult", "RevocationReason", "RevokedEntry", "build_crl", "build_csr", "validate",
    "validate_or_raise",
]
