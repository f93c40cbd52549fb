"""Teach asn1crypto the SM2/SM3 identifiers, once, at import.

asn1crypto keeps OID maps as class attributes; registering names here lets certificates,
CMS and keys that carry SM OIDs parse into named values (``'sm2_sm3'``, ``'sm3'``, ``'sm2'``).
"""

from __future__ import annotations

from asn1crypto import algos, cms, core, keys

from trustsvc.algorithms import oids

_done = False


def register() -> None:
    """Register SM OIDs with asn1crypto (idempotent)."""
    global _done
    if _done:
        return
    keys.NamedCurve.register("sm2", oids.SM2_CURVE, 32)
    algos.DigestAlgorithmId._map[oids.SM3] = "sm3"
    algos.DigestAlgorithmId._reverse_map = None
    algos.SignedDigestAlgorithmId._map[oids.SM2_WITH_SM3] = "sm2_sm3"
    algos.SignedDigestAlgorithmId._map[oids.SM2_SIGN] = "sm2"
    algos.SignedDigestAlgorithmId._reverse_map = None
    # GM/T 0010 content types parse as their PKCS#7 equivalents' names with a gm_ prefix.
    cms.ContentType._map[oids.GMT0010_DATA] = "gm_data"
    cms.ContentType._map[oids.GMT0010_SIGNED_DATA] = "gm_signed_data"
    cms.ContentType._reverse_map = None
    cms.ContentInfo._oid_specs["gm_data"] = cms.ContentInfo._oid_specs["data"]
    cms.ContentInfo._oid_specs["gm_signed_data"] = cms.SignedData
    # trustsvc's signed attribute binding a registered seal to a PDF signature (trustsvc.pdf.seal_binding)
    cms.CMSAttributeType._map[oids.REGISTERED_SEAL_ATTR] = "trustsvc_registered_seal"
    cms.CMSAttributeType._reverse_map = None
    cms.CMSAttribute._oid_specs["trustsvc_registered_seal"] = _SetOfOctetString
    _done = True


class _SetOfOctetString(core.SetOf):
    _child_spec = core.OctetString


register()
