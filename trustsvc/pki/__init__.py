"""X.509 for SM2 and the rest: certificates, CSRs, CRLs, chain validation, a development CA."""

from trustsvc.pki.certificate import Certificate, CertificateBuilder

__all__ = ["Certificate", "CertificateBuilder"]
