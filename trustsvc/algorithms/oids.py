"""Object identifiers used across trustsvc (GB/T 33560, GM/T 0006, RFC 5480, RFC 8017)."""

from __future__ import annotations

# SM family (GM/T 0006-2012)
SM2_CURVE = "1.2.156.10197.1.301"
SM2_SIGN = "1.2.156.10197.1.301.1"  # SM2-1: never emit as a CMS signatureAlgorithm
SM2_ENCRYPT = "1.2.156.10197.1.301.3"
SM3 = "1.2.156.10197.1.401"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM4 = "1.2.156.10197.1.104"
SM4_CBC = "1.2.156.10197.1.104.2"
SM4_GCM = "1.2.156.10197.1.104.8"

# GM/T 0010 content types (accepted on input)
GMT0010_DATA = "1.2.156.10197.6.1.4.2.1"
GMT0010_SIGNED_DATA = "1.2.156.10197.6.1.4.2.2"

# Standard
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_SHA384 = "1.2.840.10045.4.3.3"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
RSA_SHA256 = "1.2.840.113549.1.1.11"
RSA_PSS = "1.2.840.113549.1.1.10"
ED25519 = "1.3.101.112"
P256 = "1.2.840.10045.3.1.7"
P384 = "1.3.132.0.34"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
CMS_DATA = "1.2.840.113549.1.7.1"
CMS_SIGNED_DATA = "1.2.840.113549.1.7.2"

# trustsvc's own arc: a UUID OID (ITU-T X.667, 2.25.<UUID as an integer>), registered by nobody else
TRUSTSVC_ARC = "2.25.69328385081571213798592542347431357981"
# CMS signed attribute binding a registered electronic seal to a PDF signature; value: OCTET STRING (the SESeal)
REGISTERED_SEAL_ATTR = TRUSTSVC_ARC + ".1"
