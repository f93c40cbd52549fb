"""Pkcs11KeyStore: named, versioned keys generated and kept inside a PKCS#11 token.

A key version lives as a private/public key pair with CKA_LABEL "name@version" and CKA_ID
SHA-256("name@version")[:16]; its metadata (spec, state, created) as a CKO_DATA object with
CKA_APPLICATION "trustsvc" and the same label; its certificates as CKO_CERTIFICATE objects
with the same CKA_ID (label "name@version#i", leaf first). Private keys are generated with
TOKEN, PRIVATE, SENSITIVE, not EXTRACTABLE, SIGN only, not MODIFIABLE, and refused unless the
token then reports NEVER_EXTRACTABLE, ALWAYS_SENSITIVE and LOCAL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pkcs11.exceptions as px
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from asn1crypto.core import OctetString
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import Attribute, CertificateType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import KeyType as CKK
from pkcs11.util.ec import encode_named_curve_parameters

from trustsvc.algorithms import sm2
from trustsvc.algorithms.keypair import KEY_SPECS, PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.errors import Conflict, HsmError, KeyDisabled, KeyNotFound, UnsupportedAlgorithm
from trustsvc.keys.base import KeyInfo, KeyState, KeyStore, check_certificate_chain, check_key_name
from trustsvc.keys.pkcs11 import module
from trustsvc.keys.pkcs11.errors import translate
from trustsvc.keys.pkcs11.pool import PooledSession, SessionPool
from trustsvc.keys.pkcs11.profiles import InputMode, PointFormat, SignMode, Sm2Profile, load_profiles, select
from trustsvc.keys.pkcs11.signer import Pkcs11Signer

APPLICATION = "trustsvc"
SM2_CURVE_OID_DER = bytes.fromhex("06082a811ccf5501822d")
ED25519_OID_DER = bytes.fromhex("06032b6570")
SELF_TEST_MESSAGE = b"trustsvc SM2 self-test"
SELF_TEST_ID = b"trustsvc-self-test-id"  # MSG_ID_PARAM: proves the token uses the ID it is given
# spec prefix -> (key-pair generation, signing) mechanisms a non-SM2 key of that kind needs in the token
SPEC_MECHANISMS: dict[str, tuple[Mechanism, Mechanism]] = {
    "ec-": (Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA),
    "rsa-": (Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.SHA256_RSA_PKCS),
    "ed25519": (Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA),
}


def key_id(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:16]


def pin_source(pin: str | None = None, pin_file: str | os.PathLike[str] | None = None,
               pin_env: str | None = None) -> Callable[[], str]:
    """A callable returning the user PIN (read when needed, never logged)."""
    if pin is not None:
        return lambda: pin
    if pin_file is not None:
        path = Path(pin_file)

        def from_file() -> str:
            try:
                return path.read_text().strip()
            except OSError as exc:
                raise HsmError(f"cannot read the PIN file {path}: {exc.strerror}",
                               reason="HSM_PIN_MISSING") from None
        return from_file
    if pin_env is not None:
        def from_env() -> str:
            value = os.environ.get(pin_env)
            if not value:
                raise HsmError(f"environment variable {pin_env} holding the PIN is not set",
                               reason="HSM_PIN_MISSING")
            return value
        return from_env
    raise HsmError("no PIN source: give a PIN file or an environment variable", reason="HSM_PIN_MISSING")


class Pkcs11KeyStore(KeyStore):
    """Keys in one PKCS#11 token; signers share one session pool."""

    kind = "hsm"

    def __init__(self, module_path: str, *, token_label: str | None = None,
                 token_serial: str | None = None, pin: Callable[[], str],
                 max_sessions: int = 8, sm2_profile: str | None = None,
                 sm2_mechanism: int | None = None, profiles_dir: Path | None = None) -> None:
        self.module_path = module_path
        self.pool = SessionPool(module_path, token_label=token_label, token_serial=token_serial,
                                pin=pin, max_sessions=max_sessions)
        self._lock = threading.RLock()
        self._signers: dict[tuple[str, int], Pkcs11Signer] = {}
        self._profiles_dir = profiles_dir
        self._wanted_profile = sm2_profile
        self._wanted_mechanism = sm2_mechanism
        self._sm2_checked = False
        self.sm2_profile: Sm2Profile | None = None
        self.sm2_mode: SignMode | None = None
        self.sm2_report: list[dict[str, str]] = []
        self._specs_ok: set[str] = set()

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore({self.pool!r})"

    def close(self) -> None:
        self.pool.close()

    def observe_errors(self, callback: Callable[[HsmError], None]) -> None:
        """Call ``callback`` once for every HsmError a token operation raises (the daemon counts them)."""
        self.pool.on_error = callback

    # token facts ------------------------------------------------------------------------------
    def mechanisms(self) -> set[int]:
        def run(ps: PooledSession) -> set[int]:
            return {int(m) for m in ps.session.token.slot.get_mechanisms()}
        return self.pool.run("listing mechanisms", run)

    def token_info(self) -> dict[str, str]:
        def run(ps: PooledSession) -> dict[str, str]:
            t = ps.session.token
            lib = self.pool.lib
            return {"label": t.label, "serial": t.serial.decode(errors="replace").strip(),
                    "manufacturer": t.manufacturer_id, "model": t.model,
                    "library": lib.manufacturer_id, "library_description": lib.library_description,
                    "library_version": "{}.{}".format(*lib.library_version)}
        return self.pool.run("reading token information", run)

    def require_spec(self, spec: str) -> None:
        """Raise unless this token can generate and sign with keys of ``spec``: SM2 through a self-tested
        profile (HSM_NO_SM2), other kinds through the standard mechanisms it lists (HSM_NO_MECHANISM)."""
        if spec not in KEY_SPECS:
            raise UnsupportedAlgorithm(f"unknown key spec {spec!r}; known: {', '.join(KEY_SPECS)}",
                                       reason="UNKNOWN_KEY_SPEC")
        if spec == "sm2":
            self._require_sm2()
            return
        if spec in self._specs_ok:
            return
        needed = next(m for prefix, m in SPEC_MECHANISMS.items() if spec.startswith(prefix))
        missing = [f"CKM_{m.name}" for m in needed if int(m) not in self.mechanisms()]
        if missing:
            raise HsmError(f"the token does not offer {' and '.join(missing)}, needed for {spec} keys",
                           reason="HSM_NO_MECHANISM")
        self._specs_ok.add(spec)

    # SM2 profiles and self-test -----------------------------------------------------------------
    def sm2_self_test(self) -> list[dict[str, str]]:
        """Pick the SM2 profile, sign a test message with each listed sign mode on a session key,
        check it with the standard SM2 verifier; the first passing mode (or the one asked for) is used."""
        with self._lock:
            if self._sm2_checked:
                return self.sm2_report
            info = self.token_info()
            profiles = load_profiles(self._profiles_dir)
            profile = select(profiles, self.module_path, info["library"], info["library_version"],
                             self._wanted_profile)
            report: list[dict[str, str]] = []
            self.sm2_profile, self.sm2_mode = profile, None
            if profile is None:
                report.append({"profile": "-", "status": "none",
                               "detail": f"no SM2 profile matches {info['library']!r}; SM2 keys unavailable"})
            else:
                mechs = self.mechanisms()
                for mode in profile.sign_modes:
                    if self._wanted_mechanism is not None and mode.mechanism != self._wanted_mechanism:
                        continue
                    entry = {"profile": profile.name, "mechanism": f"0x{mode.mechanism:08X}",
                             "name": mode.name, "input": mode.input.value, "output": mode.output.value}
                    if mode.mechanism not in mechs or profile.keygen not in mechs:
                        entry.update(status="absent", detail="the token does not list this mechanism")
                    else:
                        try:
                            self._self_test_mode(profile, mode)
                            entry.update(status="ok", detail="signature verified with the standard SM2 verifier")
                            if self.sm2_mode is None:
                                self.sm2_mode = mode
                        except HsmError as exc:
                            entry.update(status="refused", detail=f"{exc.reason}: {exc.message}")
                    report.append(entry)
                if self._wanted_mechanism is not None and not report:
                    report.append({"profile": profile.name, "status": "refused",
                                   "mechanism": f"0x{self._wanted_mechanism:08X}",
                                   "detail": "the profile has no such sign mechanism"})
            self.sm2_report = report
            self._sm2_checked = True
            return report

    def _self_test_mode(self, profile: Sm2Profile, mode: SignMode) -> None:
        label = f"trustsvc-selftest-{os.getpid()}-{threading.get_ident()}"
        kid = key_id(label)

        def run(ps: PooledSession) -> None:
            pub, priv = self._generate(ps, "sm2", label, kid, profile, token=False)
            try:
                public = self._public_key(pub, "sm2", profile)
                signer = Pkcs11Signer(self.pool, label, kid, public, sm2_mode=mode)
                ps.keys[("priv", label, kid)] = priv
                sig = signer._sign_on(ps, (SELF_TEST_MESSAGE,))[0]
                try:
                    sm2.verify(public.point or b"", SELF_TEST_MESSAGE, sig)
                    if mode.input is InputMode.MSG_ID_PARAM:  # the token must honour the ID we pass
                        other = Pkcs11Signer(self.pool, label, kid, public, sm2_mode=mode, sm2_id=SELF_TEST_ID)
                        sm2.verify(public.point or b"", SELF_TEST_MESSAGE,
                                   other._sign_on(ps, (SELF_TEST_MESSAGE,))[0], SELF_TEST_ID)
                except Exception as exc:  # InvalidSignature / DecodeError, with a diagnosis
                    raise HsmError(
                        f"profile {profile.name} mechanism 0x{mode.mechanism:08X} ({mode.name}) output does "
                        f"not verify as SM2 (GM/T 0009): {getattr(exc, 'message', exc)}",
                        reason=getattr(exc, "reason", "HSM_SM2_SELF_TEST")) from None
            finally:
                ps.keys.pop(("priv", label, kid), None)
                for obj in (priv, pub):
                    try:
                        obj.destroy()
                    except px.PKCS11Error:
                        pass
        self.pool.run(f"SM2 self-test of profile {profile.name}", run)

    def _require_sm2(self) -> Sm2Profile:
        self.sm2_self_test()
        if self.sm2_profile is None or self.sm2_mode is None:
            why = "; ".join(f"{r.get('mechanism', '')} {r['status']}: {r['detail']}" for r in self.sm2_report)
            raise HsmError(f"no SM2 mechanism of this token passed the self-test ({why})", reason="HSM_NO_SM2")
        return self.sm2_profile

    # generation ---------------------------------------------------------------------------------
    def _generate(self, ps: PooledSession, spec: str, label: str, kid: bytes,
                  profile: Sm2Profile | None = None, *, token: bool = True) -> tuple[Any, Any]:
        public: dict[Any, Any] = {Attribute.TOKEN: token, Attribute.VERIFY: True, Attribute.ENCRYPT: False,
                                  Attribute.WRAP: False, Attribute.DERIVE: False, Attribute.MODIFIABLE: False,
                                  Attribute.PRIVATE: False}
        private: dict[Any, Any] = {Attribute.TOKEN: token, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                                   Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
                                   Attribute.UNWRAP: False, Attribute.DERIVE: False, Attribute.MODIFIABLE: False}
        length = 0
        if spec in ("ec-p256", "ec-p384"):
            ktype, mech = CKK.EC, Mechanism.EC_KEY_PAIR_GEN
            public[Attribute.EC_PARAMS] = encode_named_curve_parameters(
                "secp256r1" if spec == "ec-p256" else "secp384r1")
        elif spec == "ed25519":
            ktype, mech = CKK.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN
            public[Attribute.EC_PARAMS] = ED25519_OID_DER
        elif spec.startswith("rsa-") and spec in KEY_SPECS:
            ktype, mech, length = CKK.RSA, Mechanism.RSA_PKCS_KEY_PAIR_GEN, int(spec[4:])
            public[Attribute.MODULUS_BITS] = length
            public[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
        elif spec == "sm2":
            profile = profile or self._require_sm2()
            ktype, mech = module.key_type(profile.key_type), module.mechanism(profile.keygen)
            if profile.ec_params:
                public[Attribute.EC_PARAMS] = SM2_CURVE_OID_DER
        else:
            raise UnsupportedAlgorithm(f"unknown key spec {spec!r}; known: {', '.join(KEY_SPECS)}",
                                       reason="UNKNOWN_KEY_SPEC")
        # python-pkcs11 has no default capabilities for vendor key types (ArgumentsBad): say them.
        caps = MechanismFlag.SIGN | MechanismFlag.VERIFY if spec == "sm2" else None
        pub, priv = ps.session.generate_keypair(ktype, length, id=kid, label=label, store=token,
                                                capabilities=caps, mechanism=mech,
                                                public_template=public, private_template=private)
        for attr in (Attribute.NEVER_EXTRACTABLE, Attribute.ALWAYS_SENSITIVE, Attribute.LOCAL):
            try:
                ok = bool(priv[attr])
            except px.PKCS11Error:
                ok = False
            if not ok or bool(priv[Attribute.EXTRACTABLE]):
                priv.destroy()
                pub.destroy()
                raise HsmError(f"the token generated a key without {attr.name}=true; refused",
                               reason="HSM_UNSAFE_KEY")
        return pub, priv

    def _public_key(self, pub: Any, spec: str, profile: Sm2Profile | None = None) -> PublicKey:
        if spec.startswith("rsa-"):
            n = int.from_bytes(pub[Attribute.MODULUS], "big")
            e = int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big")
            return PublicKey.from_cryptography(rsa.RSAPublicNumbers(e, n).public_key())
        raw = bytes(pub[Attribute.EC_POINT])
        if spec == "sm2" and profile is not None and profile.point is PointFormat.EC_POINT_RAW:
            point = raw
        else:  # PKCS#11 2.40: DER OCTET STRING
            try:
                point = bytes(OctetString.load(raw, strict=True).native)
            except ValueError:
                raise HsmError("CKA_EC_POINT is not a DER OCTET STRING", reason="HSM_BAD_PUBLIC_KEY") from None
        if spec == "sm2":
            return PublicKey.from_sm2_point(point)
        if spec == "ed25519":
            info = asn1_keys.PublicKeyInfo({"algorithm": {"algorithm": "ed25519"}, "public_key": point})
            return PublicKey.from_spki(info.dump())
        params = asn1_keys.ECDomainParameters.load(bytes(pub[Attribute.EC_PARAMS]))
        info = asn1_keys.PublicKeyInfo({"algorithm": {"algorithm": "ec", "parameters": params},
                                        "public_key": point})
        return PublicKey.from_spki(info.dump())

    # metadata objects -----------------------------------------------------------------------------
    def _all_meta(self, ps: PooledSession) -> list[tuple[Any, dict[str, Any]]]:
        out = []
        for obj in ps.session.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                           Attribute.APPLICATION: APPLICATION}):
            try:
                out.append((obj, json.loads(bytes(obj[Attribute.VALUE]))))
            except (ValueError, px.PKCS11Error):
                continue
        return out

    def _info(self, ps: PooledSession, meta: dict[str, Any]) -> KeyInfo:
        label = f"{meta['name']}@{meta['version']}"
        kid = key_id(label)
        pub = ps.session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label, id=kid)
        profile = None
        if meta["spec"] == "sm2":
            profile = load_profiles(self._profiles_dir).get(meta.get("profile", ""))
        chain = []
        for cert in ps.session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: kid}):
            chain.append((str(cert[Attribute.LABEL]), bytes(cert[Attribute.VALUE])))
        chain.sort(key=lambda c: int(c[0].rpartition("#")[2] or 0))
        return KeyInfo(name=meta["name"], version=int(meta["version"]), spec=meta["spec"],
                       state=KeyState(meta["state"]), created=dt.datetime.fromisoformat(meta["created"]),
                       public_key=self._public_key(pub, meta["spec"], profile), store=self.kind,
                       certificate_chain=tuple(c[1] for c in chain))

    def _versions(self, ps: PooledSession, name: str) -> list[tuple[Any, dict[str, Any]]]:
        return sorted((m for m in self._all_meta(ps) if m[1]["name"] == name), key=lambda m: m[1]["version"])

    def _pick(self, ps: PooledSession, name: str, version: int | None) -> tuple[Any, dict[str, Any]]:
        versions = self._versions(ps, name)
        if version is None:  # the active version, else the latest (as the software keystore)
            if not versions:
                raise KeyNotFound(f"key {name!r} not in the token", reason="KEY_NOT_FOUND")
            active = [m for m in versions if m[1]["state"] == KeyState.ACTIVE.value]
            return (active or versions)[-1]
        for m in versions:
            if m[1]["version"] == version:
                return m
        raise KeyNotFound(f"key {name}@{version} not in the token", reason="KEY_NOT_FOUND")

    def _new_version(self, ps: PooledSession, name: str, version: int, spec: str) -> KeyInfo:
        label = f"{name}@{version}"
        kid = key_id(label)
        profile = self._require_sm2() if spec == "sm2" else None
        self._generate(ps, spec, label, kid, profile)
        meta = {"name": name, "version": version, "spec": spec, "state": KeyState.ACTIVE.value,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        if profile is not None:
            meta["profile"] = profile.name
        self._write_meta(ps, meta)
        return self._info(ps, meta)

    def _write_meta(self, ps: PooledSession, meta: dict[str, Any]) -> None:
        ps.session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                                  Attribute.PRIVATE: True, Attribute.MODIFIABLE: False,
                                  Attribute.APPLICATION: APPLICATION,
                                  Attribute.LABEL: f"{meta['name']}@{meta['version']}",
                                  Attribute.VALUE: json.dumps(meta).encode()})

    def _set_state(self, ps: PooledSession, obj: Any, meta: dict[str, Any], state: KeyState) -> None:
        """Replace the metadata object (SoftHSM2 refuses to modify CKA_VALUE of data objects)."""
        meta["state"] = state.value
        self._write_meta(ps, meta)
        obj.destroy()
        self._signers.pop((meta["name"], int(meta["version"])), None)

    # KeyStore -------------------------------------------------------------------------------------
    def create(self, name: str, spec: str) -> KeyInfo:
        check_key_name(name)  # before any session: a caller's bad name is not an HSM error
        self.require_spec(spec)  # an unknown spec, or one the token cannot make
        with self._lock:
            def run(ps: PooledSession) -> KeyInfo:
                if self._versions(ps, name):
                    raise Conflict(f"key {name!r} already exists in the token", reason="KEY_EXISTS")
                return self._new_version(ps, name, 1, spec)
            return self.pool.run(f"creating key {name}", run)

    def rotate(self, name: str) -> KeyInfo:
        check_key_name(name)
        with self._lock:
            def run(ps: PooledSession) -> KeyInfo:
                versions = self._versions(ps, name)
                if not versions:
                    raise KeyNotFound(f"key {name!r} not in the token", reason="KEY_NOT_FOUND")
                spec = versions[-1][1]["spec"]
                new = self._new_version(ps, name, versions[-1][1]["version"] + 1, spec)
                for obj, meta in versions:
                    if meta["state"] == KeyState.ACTIVE.value:
                        self._set_state(ps, obj, meta, KeyState.PASSIVE)
                return new
            return self.pool.run(f"rotating key {name}", run)

    def disable(self, name: str, version: int | None = None) -> KeyInfo:
        check_key_name(name)
        with self._lock:
            def run(ps: PooledSession) -> KeyInfo:
                obj, meta = self._pick(ps, name, version)
                self._set_state(ps, obj, meta, KeyState.DISABLED)
                return self._info(ps, meta)
            return self.pool.run(f"disabling key {name}", run)

    def list(self) -> list[KeyInfo]:
        def run(ps: PooledSession) -> list[KeyInfo]:
            metas = sorted((m for _, m in self._all_meta(ps)), key=lambda m: (m["name"], m["version"]))
            return [self._info(ps, m) for m in metas]
        return self.pool.run("listing keys", run)

    def info(self, name: str, version: int | None = None) -> KeyInfo:
        check_key_name(name)
        return self.pool.run(f"reading key {name}", lambda ps: self._info(ps, self._pick(ps, name, version)[1]))

    def signer(self, name: str, version: int | None = None) -> Pkcs11Signer:
        cached = self._signers.get((name, version)) if version is not None else None
        if cached is not None:
            return cached
        info = self.info(name, version)
        if info.state is not KeyState.ACTIVE:
            raise KeyDisabled(f"key {name}@{info.version} is {info.state.value}; it does not sign",
                              reason="KEY_DISABLED")
        with self._lock:
            cached = self._signers.get((name, info.version))
            if cached is None:
                mode = None
                if info.spec == "sm2":
                    self._require_sm2()
                    mode = self.sm2_mode
                label = f"{name}@{info.version}"
                cached = Pkcs11Signer(self.pool, label, key_id(label), info.public_key,
                                      info.public_key.default_algorithm(),
                                      certificate_chain=info.certificate_chain, sm2_mode=mode,
                                      key_ref=info.ref)
                self._signers[(name, info.version)] = cached
            return cached

    def signer_with(self, name: str, algorithm: SignatureAlgorithm, version: int | None = None) -> Pkcs11Signer:
        """A signer with a non-default algorithm (e.g. RSA-PSS)."""
        base = self.signer(name, version)
        return Pkcs11Signer(self.pool, base.label, base.key_id, base.public_key, algorithm,
                            certificate_chain=base.certificate_chain, sm2_mode=base.sm2_mode,
                            key_ref=base.key_ref)

    def set_certificate_chain(self, name: str, version: int, chain: tuple[bytes, ...]) -> None:
        chain = check_certificate_chain(self.info(name, version).public_key, chain)
        label = f"{name}@{version}"
        kid = key_id(label)

        def run(ps: PooledSession) -> None:
            self._pick(ps, name, version)
            for old in ps.session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: kid}):
                old.destroy()
            for i, der in enumerate(chain):
                cert = asn1_x509.Certificate.load(der)
                ps.session.create_object({
                    Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                    Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.LABEL: f"{label}#{i}",
                    Attribute.ID: kid, Attribute.VALUE: der, Attribute.SUBJECT: cert.subject.dump(),
                    Attribute.ISSUER: cert.issuer.dump(),
                    Attribute.SERIAL_NUMBER: cert["tbs_certificate"]["serial_number"].dump()})
        with self._lock:
            self.pool.run(f"storing certificates of {label}", run)
            self._signers.pop((name, version), None)

    def private_key_value(self, name: str, version: int | None = None) -> bytes:
        """Attempt to read the private key value: always fails on a safe token (for tests/audits)."""
        check_key_name(name)

        def run(ps: PooledSession) -> bytes:
            info = self._pick(ps, name, version)[1]
            label = f"{name}@{info['version']}"
            priv = ps.session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label, id=key_id(label))
            attr = Attribute.PRIVATE_EXPONENT if info["spec"].startswith("rsa-") else Attribute.VALUE
            return bytes(priv[attr])
        try:
            return self.pool.run("reading a private key", run)
        except px.PKCS11Error as exc:
            raise translate(exc, "reading a private key") from None


def open_from_env(home: Path) -> Pkcs11KeyStore:
    """The store named by TRUSTSVC_PKCS11_MODULE / _TOKEN / _PIN or _PIN_FILE (and _SERIAL, _SM2_PROFILE)."""
    module_path = os.environ.get("TRUSTSVC_PKCS11_MODULE", module.DEFAULT_MODULE)
    label = os.environ.get("TRUSTSVC_PKCS11_TOKEN")
    serial = os.environ.get("TRUSTSVC_PKCS11_SERIAL")
    if not label and not serial:
        raise HsmError("set TRUSTSVC_PKCS11_TOKEN (token label) or TRUSTSVC_PKCS11_SERIAL", reason="HSM_CONFIG")
    if os.environ.get("TRUSTSVC_PKCS11_PIN"):
        pin = pin_source(pin_env="TRUSTSVC_PKCS11_PIN")
    elif os.environ.get("TRUSTSVC_PKCS11_PIN_FILE"):
        pin = pin_source(pin_file=Path(home, os.environ["TRUSTSVC_PKCS11_PIN_FILE"]))
    else:
        raise HsmError("set TRUSTSVC_PKCS11_PIN or TRUSTSVC_PKCS11_PIN_FILE", reason="HSM_PIN_MISSING")
    return Pkcs11KeyStore(module_path, token_label=label, token_serial=serial, pin=pin,
                          max_sessions=int(os.environ.get("TRUSTSVC_PKCS11_MAX_SESSIONS", "8")),
                          sm2_profile=os.environ.get("TRUSTSVC_PKCS11_SM2_PROFILE") or None)
