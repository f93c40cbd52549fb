"""`trustsvc hsm check` and `trustsvc hsm init-dev DIR`: PKCS#11 tokens for admins."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
from pathlib import Path

from cli.common import write_output
from trustsvc.errors import HsmError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("hsm", help="PKCS#11 HSM: check a token, set up a development SoftHSM2 token")
    hs = p.add_subparsers(dest="hsm_command", metavar="SUBCOMMAND")
    c = hs.add_parser("check", help="token facts, mechanisms, SM2 profile self-test, ECDSA sign/verify")
    c.add_argument("--sm2-profile", default=None, help="profile name (default: match by module)")
    c.set_defaults(func=_check)
    i = hs.add_parser("init-dev", help="create a SoftHSM2 token for development under DIR")
    i.add_argument("dir")
    i.add_argument("--label", default="trustsvc-dev")
    i.set_defaults(func=_init_dev)


def _check(args: argparse.Namespace) -> int:
    from trustsvc.keys.pkcs11 import open_from_env

    if args.sm2_profile:
        os.environ["TRUSTSVC_PKCS11_SM2_PROFILE"] = args.sm2_profile
    store = open_from_env(Path(args.home or os.environ.get("TRUSTSVC_HOME", ".trustsvc-demo")))
    try:
        out: dict[str, object] = {"token": store.token_info(),
                                  "mechanisms": sorted(f"0x{m:08X}" for m in store.mechanisms())}
        out["sm2_self_test"] = store.sm2_self_test()
        name = f"trustsvc-check-{secrets.token_hex(4)}"
        store.create(name, "ec-p256")
        signer = store.signer(name)
        signer.verifier().verify(b"check", signer.sign(b"check"))
        store.disable(name)
        out["ecdsa_p256"] = "ok"
    finally:
        store.close()
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _init_dev(args: argparse.Namespace) -> int:
    hsm_dir = Path(os.environ.get("TRUSTSVC_HSM_DIR", Path(__file__).resolve().parents[1] / "hsm"))
    script = hsm_dir / "setup-softhsm.sh"
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    pin_file = directory / "user.pin"
    if not pin_file.exists():  # owner-only from the start (a write then chmod left it readable for a moment)
        write_output(pin_file, (secrets.token_hex(8) + "\n").encode(), mode=0o600)
    so_pin = secrets.token_hex(8)
    res = subprocess.run([str(script), str(directory), args.label, so_pin, pin_file.read_text().strip()],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise HsmError(f"setup-softhsm.sh failed: {res.stderr.strip()}", reason="HSM_SETUP_FAILED")
    conf = (directory / "softhsm2.conf").resolve()
    print(json.dumps({"SOFTHSM2_CONF": str(conf), "TRUSTSVC_PKCS11_TOKEN": args.label,
                      "TRUSTSVC_PKCS11_PIN_FILE": str(pin_file.resolve())}, indent=2))
    return 0
