"""SM2 vendor profiles: which vendor codes a token uses for SM2 and what its mechanisms compute.

Profiles are data (hsm/profiles/*.toml, or $TRUSTSVC_HSM_PROFILES). No PKCS#11 version
standardises SM2, and vendor mechanisms differ in their input (host-computed e, the message
with Z inside, the message with no Z at all) and output (raw r||s or DER). Whatever the
profile says, every profile is checked once against a standard SM2 verifier before use.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import tomllib
from pathlib import Path

from trustsvc.errors import HsmError

PROFILE_DIR = Path(__file__).resolve().parents[3] / "hsm" / "profiles"


class InputMode(enum.StrEnum):
    E_PREHASHED = "E_PREHASHED"  # input is e = SM3(Z||M), computed on the host
    MSG_Z_INTERNAL = "MSG_Z_INTERNAL"  # input is M; token computes Z with the default ID
    MSG_NO_Z = "MSG_NO_Z"  # input is hashed with SM3 and signed, no Z (host passes Z||M)
    MSG_ID_PARAM = "MSG_ID_PARAM"  # input is M; the ID goes in the mechanism parameter


class OutputFormat(enum.StrEnum):
    RAW_RS = "RAW_RS"
    DER = "DER"


class PointFormat(enum.StrEnum):
    EC_POINT_DER = "EC_POINT_DER"  # CKA_EC_POINT holds DER OCTET STRING(04||X||Y)
    EC_POINT_RAW = "EC_POINT_RAW"  # CKA_EC_POINT holds 04||X||Y


@dataclasses.dataclass(frozen=True)
class SignMode:
    mechanism: int
    input: InputMode
    output: OutputFormat
    name: str = ""
    # MSG_NO_Z only: the host prefixes Z to the message, so the token signs SM3(Z||M) = e.
    host_z_prefix: bool = False


@dataclasses.dataclass(frozen=True)
class Sm2Profile:
    name: str
    description: str
    key_type: int
    keygen: int
    point: PointFormat
    sign_modes: tuple[SignMode, ...]
    match_manufacturer: tuple[str, ...] = ()
    match_module: tuple[str, ...] = ()
    match_library_version: str = ""  # "major.minor" prefix, empty = any
    ec_params: bool = True  # put the SM2 curve OID in CKA_EC_PARAMS of the public template

    def matches(self, module_path: str, manufacturer: str, library_version: str) -> bool:
        base = os.path.basename(module_path).lower()
        man = manufacturer.strip().lower()
        if self.match_library_version and not library_version.startswith(self.match_library_version):
            return False
        return (any(m.lower() in base for m in self.match_module)
                or any(man.startswith(m.lower()) for m in self.match_manufacturer))


def _parse(data: dict[str, object], source: str) -> Sm2Profile:
    try:
        key = data["key"]
        match = data.get("match", {})
        assert isinstance(key, dict) and isinstance(match, dict)
        modes = tuple(
            SignMode(mechanism=int(m["mechanism"]), input=InputMode(m["input"]),
                     output=OutputFormat(m["output"]), name=str(m.get("name", "")),
                     host_z_prefix=bool(m.get("host_z_prefix", False)))
            for m in data["sign"])  # type: ignore[union-attr,attr-defined]
        return Sm2Profile(
            name=str(data["name"]), description=str(data.get("description", "")),
            key_type=int(key["key_type"]), keygen=int(key["keygen"]),
            point=PointFormat(key.get("point", "EC_POINT_DER")), sign_modes=modes,
            match_manufacturer=tuple(match.get("manufacturer", ())),
            match_module=tuple(match.get("module", ())),
            match_library_version=str(match.get("library_version", "")),
            ec_params=bool(key.get("ec_params", True)))
    except (KeyError, ValueError, TypeError, AssertionError) as exc:
        raise HsmError(f"bad SM2 profile {source}: {type(exc).__name__}: {exc}",
                       reason="HSM_BAD_PROFILE") from None


def load_profile(path: Path) -> Sm2Profile:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HsmError(f"cannot read SM2 profile {path}: {exc}", reason="HSM_BAD_PROFILE") from None
    return _parse(data, str(path))


def load_profiles(directory: Path | None = None) -> dict[str, Sm2Profile]:
    """Every profile in ``directory`` (default $TRUSTSVC_HSM_PROFILES or hsm/profiles)."""
    directory = directory or Path(os.environ.get("TRUSTSVC_HSM_PROFILES", PROFILE_DIR))
    profiles = {}
    for path in sorted(directory.glob("*.toml")):
        p = load_profile(path)
        profiles[p.name] = p
    return profiles


def select(profiles: dict[str, Sm2Profile], module_path: str, manufacturer: str,
           library_version: str, wanted: str | None = None) -> Sm2Profile | None:
    """The profile named ``wanted``, or the first that matches the module; None if none."""
    if wanted:
        if wanted not in profiles:
            raise HsmError(f"no SM2 profile named {wanted!r}; known: {', '.join(sorted(profiles))}",
                           reason="HSM_BAD_PROFILE")
        return profiles[wanted]
    for p in profiles.values():
        if p.matches(module_path, manufacturer, library_version):
            return p
    return None
