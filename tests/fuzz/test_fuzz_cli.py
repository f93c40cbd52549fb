"""Fuzz the verify commands of the ``trustsvc`` CLI on files from outside: malformed, truncated, bit-flipped,
empty, random, of the wrong kind, a directory, a missing or unreadable path. Every run ends in a documented
exit code (1 verification failed, 2 bad input, 3 refused), never in a traceback, and names the problem;
the valid inputs the fixtures make first still verify (exit 0)."""

from __future__ import annotations

import dataclasses
import io
import json
import random
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from tests.unit.test_cms_pki import make_pki
from tests.unit.test_seal_support import make_setup
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.audit import AuditEvent, AuditLog
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.signing import sign_pdf
from trustsvc.store.database import Database
from trustsvc.token import RevocationStore

FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@dataclasses.dataclass
class Inputs:
    root: Path
    home: Path
    files: dict[str, Path]
    token: str

    def bad(self, name: str, data: bytes) -> Path:
        """A file holding ``data`` in the scratch directory."""
        path = self.root / "bad" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inputs]:
    root = tmp_path_factory.mktemp("cli-fuzz")
    home = root / "home"
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = root / name
        files[name].write_bytes(data)

    seal = make_setup()
    put("seal", seal.seal)
    put("seal_trust", seal.maker_cert.to_pem())

    ident = dev_identity("sm2")
    put("pdf", sign_pdf(licence_pdf(), ident.signer))
    put("pdf_trust", ident.root.to_pem())

    pki = make_pki("sm2", tsa=True)
    put("tsa_key", private_key_to_pem(pki.signer._key))
    put("tsa_cert", pki.leaf.to_pem())
    put("tsa_root", pki.root.to_pem())
    put("tsa_data", b"licence 91350100M000100Y43")
    files["tst"] = root / "doc.tst"
    assert main(["tsa", "stamp", str(files["tsa_data"]), "--key", str(files["tsa_key"]), "--cert",
                 str(files["tsa_cert"]), "--chain", str(files["tsa_root"]), "--out", str(files["tst"])]) == 0

    audit_db = root / "audit.db"
    log = AuditLog(Database(f"sqlite:///{audit_db}"), checkpoint_every=2)
    for i in range(5):
        log.append(AuditEvent("SignPdf", "client-a", request_id=f"r{i}", document_hash="00" * 32))
    files["audit_db"] = audit_db
    RevocationStore(Database(f"sqlite:///{root / 'tokens.db'}"))  # an empty revocation list for token verify

    assert main(["--home", str(home), "ca", "init"]) == 0
    files["ca_cert"] = root / "leaf.crt.pem"
    assert main(["--home", str(home), "ca", "issue", "--profile", sorted(_profiles())[0], "--cn", "leaf",
                 "--out-cert", str(files["ca_cert"]), "--out-key", str(root / "leaf.key.pem")]) == 0
    files["ca_root"] = home / "ca" / "ca-cert.pem"

    assert main(["--home", str(home), "key", "create", "k1"]) == 0
    old = sys.stdout
    sys.stdout = buf = io.StringIO()
    try:
        assert main(["--home", str(home), "token", "issue", "--sub", "alice"]) == 0
    finally:
        sys.stdout = old
    yield Inputs(root, home, files, buf.getvalue().strip())


def _profiles() -> list[str]:
    from trustsvc.pki.ca import PROFILES

    return list(PROFILES)


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def check(result: tuple[int, str, str], codes: set[int]) -> str:
    """The exit code is one of ``codes``, nothing printed a traceback, and a failure names its reason."""
    code, out, err = result
    assert "Traceback" not in out + err, out + err
    assert code in codes, (code, out[-2000:], err[-2000:])
    if code in (2, 3) and err.strip().startswith("{"):
        assert json.loads(err.strip().splitlines()[-1])["error"], err
    if code in (2, 3):
        assert out.strip() or err.strip(), "a failure must say why"
    return out + err


def variants(data: bytes, seed: int = 0) -> list[tuple[str, bytes]]:
    """Deterministic malformed versions of valid ``data``."""
    rnd = random.Random(seed)
    out = [("empty", b""), ("random", rnd.randbytes(len(data) or 64)), ("one-byte", data[:1])]
    for cut in (10, len(data) // 3, len(data) // 2, len(data) - 1):
        out.append((f"cut{cut}", data[:cut]))
    for pos in sorted({p for p in (0, 1, 4, len(data) // 2, len(data) - 2) if 0 <= p < len(data)}):
        flipped = bytearray(data)
        flipped[pos] ^= 0x41
        out.append((f"flip{pos}", bytes(flipped)))
    return out


def mutated(data: bytes, pos: int, xor: int, cut: int) -> bytes:
    buf = bytearray(data[:max(cut, 1)])
    buf[pos % len(buf)] ^= xor
    return bytes(buf)


# ---------------------------------------------------------------------------------------------- commands
# name -> (argv for a file, the input it reads, exit codes a malformed input may give)

def commands(inp: Inputs) -> dict[str, tuple[list[str], str, set[int]]]:
    f = {k: str(v) for k, v in inp.files.items()}
    h = ["--home", str(inp.home)]
    return {
        "seal verify": ([*h, "seal", "verify", "{}", "--trust", f["seal_trust"], "--json"], "seal", {1, 2}),
        "seal verify --trust": ([*h, "seal", "verify", f["seal"], "--trust", "{}"], "seal_trust", {1, 2}),
        "pdf verify": ([*h, "pdf", "verify", "{}", "--trust", f["pdf_trust"], "--json"], "pdf", {1, 2}),
        "pdf verify --trust": ([*h, "pdf", "verify", f["pdf"], "--trust", "{}"], "pdf_trust", {1, 2}),
        "pdf inspect": ([*h, "pdf", "inspect", "{}", "--json"], "pdf", {0, 2}),
        "tsa verify": (["tsa", "verify", "{}", "--file", f["tsa_data"], "--ca", f["tsa_root"], "--json"], "tst",
                       {1, 2}),
        "tsa verify --ca": (["tsa", "verify", f["tst"], "--ca", "{}"], "tsa_root", {1, 2}),
        "audit verify": ([*h, "audit", "verify", "--db", "sqlite:///{}", "--json"], "audit_db", {1, 2}),
        "audit find": ([*h, "audit", "find", "--db", "sqlite:///{}", "-n", "3", "--json"], "audit_db", {0, 1, 2}),
        "ca verify": ([*h, "ca", "verify", "{}", "--trust", f["ca_root"]], "ca_cert", {1, 2}),
        "ca verify --trust": ([*h, "ca", "verify", f["ca_cert"], "--trust", "{}"], "ca_root", {1, 2}),
        "tsa stamp --key": (["tsa", "stamp", f["tsa_data"], "--key", "{}", "--cert", f["tsa_cert"], "--out",
                             str(inp.root / "out.tst")], "tsa_key", {0, 2}),
    }


COMMANDS = ["seal verify", "seal verify --trust", "pdf verify", "pdf verify --trust", "pdf inspect", "tsa verify",
            "tsa verify --ca", "audit verify", "audit find", "ca verify", "ca verify --trust", "tsa stamp --key"]


def argv_for(inp: Inputs, name: str, path: Path | str) -> list[str]:
    argv, _, _ = commands(inp)[name]
    return [a.replace("{}", str(path)) for a in argv]


@pytest.mark.parametrize("name", COMMANDS)
def test_valid_inputs_verify(inputs: Inputs, capsys: pytest.CaptureFixture[str], name: str) -> None:
    _, key, _ = commands(inputs)[name]
    check(run(capsys, argv_for(inputs, name, inputs.files[key])), {0})


@pytest.mark.parametrize("name", COMMANDS)
def test_malformed_variants(inputs: Inputs, capsys: pytest.CaptureFixture[str], name: str) -> None:
    _, key, codes = commands(inputs)[name]
    for label, data in variants(inputs.files[key].read_bytes()):
        path = inputs.bad(f"{name.replace(' ', '_')}-{label}", data)
        good = {0} if data == inputs.files[key].read_bytes().rstrip(b"\n") else set()  # PEM without its last newline
        check(run(capsys, argv_for(inputs, name, path)), codes | good)


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("kind", ["missing", "directory", "under-a-file"])
def test_unreadable_paths(inputs: Inputs, capsys: pytest.CaptureFixture[str], name: str, kind: str) -> None:
    path = {"missing": inputs.root / "no-such-file",
            "directory": inputs.root,  # open() on a directory fails even for root
            "under-a-file": inputs.files["tsa_data"] / "x"}[kind]  # ENOTDIR
    code, out, err = run(capsys, argv_for(inputs, name, path))
    check((code, out, err), {2})  # was a FileNotFoundError/IsADirectoryError/NotADirectoryError traceback
    error = json.loads(err.strip().splitlines()[-1])
    assert error["error"] in ("INPUT_NOT_FOUND", "INPUT_UNREADABLE") and str(path) in error["message"], error


WRONG_KIND = [("seal verify", "pdf"), ("pdf verify", "seal"), ("pdf inspect", "seal"), ("tsa verify", "seal"),
              ("tsa verify", "pdf"), ("ca verify", "pdf"), ("ca verify", "seal"), ("seal verify --trust", "pdf"),
              ("pdf verify --trust", "seal"), ("audit verify", "pdf"), ("tsa stamp --key", "tsa_cert"),
              ("tsa verify --ca", "tst"), ("ca verify --trust", "seal")]


@pytest.mark.parametrize(("name", "other"), WRONG_KIND)
def test_wrong_kind_of_file(inputs: Inputs, capsys: pytest.CaptureFixture[str], name: str, other: str) -> None:
    check(run(capsys, argv_for(inputs, name, inputs.files[other])), {1, 2})


@pytest.mark.parametrize("name", ["seal verify", "pdf verify", "tsa verify", "ca verify", "audit verify"])
@FUZZ
@given(pos=st.integers(0, 1 << 20), xor=st.integers(1, 255), cut=st.integers(1, 1 << 20))
def test_mutations(inputs: Inputs, capsys: pytest.CaptureFixture[str], name: str, pos: int, xor: int,
                   cut: int) -> None:
    _, key, codes = commands(inputs)[name]
    data = inputs.files[key].read_bytes()
    path = inputs.bad(f"hyp-{name.replace(' ', '_')}", mutated(data, pos, xor, cut % (len(data) + 1)))
    if name == "audit verify":
        codes = {0, 1, 2, 3}  # a flipped byte in free space may change nothing
    check(run(capsys, argv_for(inputs, name, path)), codes)


# ---------------------------------------------------------------------------------------------- audit databases

def _error(result: tuple[int, str, str], code: int) -> dict[str, str]:
    check(result, {code})
    return json.loads(result[2].strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_audit_verify_empty_random_and_foreign_databases(inputs: Inputs, capsys: pytest.CaptureFixture[str]) -> None:
    # regression: a 0-byte file was given the audit tables and passed as "OK, 0 records" (exit 0)
    empty = inputs.bad("empty.db", b"")
    assert _error(run(capsys, ["audit", "verify", "--db", f"sqlite:///{empty}", "--json"]), 2)["error"] \
        == "NOT_AN_AUDIT_DATABASE"
    assert empty.read_bytes() == b""
    # regression: random bytes were exit 3 STORE_UNAVAILABLE, as if the database server were down
    rnd = inputs.bad("random.db", random.Random(1).randbytes(4096))
    assert _error(run(capsys, ["audit", "verify", "--db", str(rnd)]), 2)["error"] == "NOT_AN_AUDIT_DATABASE"
    foreign = inputs.root / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE audit_log (x INTEGER)")
    conn.close()
    error = _error(run(capsys, ["audit", "verify", "--db", f"sqlite:///{foreign}", "--json"]), 2)
    assert error["error"] == "NO_AUDIT_LOG" and "audit_head" in error["message"]


def test_audit_verify_missing_database_is_not_created(inputs: Inputs, capsys: pytest.CaptureFixture[str]) -> None:
    # regression: a missing path was created as an empty database and reported "OK" (exit 0)
    missing = inputs.root / "nowhere" / "audit.db"
    error = _error(run(capsys, ["audit", "verify", "--db", f"sqlite:///{missing}"]), 2)
    assert error["error"] == "INPUT_NOT_FOUND" and "audit.db" in error["message"] and not missing.parent.exists()


def test_truncated_trust_file_is_not_an_empty_trust_list(inputs: Inputs, capsys: pytest.CaptureFixture[str]) -> None:
    # regression: a PEM trust file cut before its END line held no certificate, was taken as "no --trust" and
    # `seal verify` answered valid-with-warnings (exit 0)
    pem = inputs.files["seal_trust"].read_bytes()
    cut = inputs.bad("half.pem", pem[:len(pem) // 2])
    error = _error(run(capsys, argv_for(inputs, "seal verify --trust", cut)), 2)
    assert error["error"] == "BAD_CERTIFICATE" and str(cut) in error["message"]
    key_only = inputs.files["tsa_key"]  # a PEM file, but a key
    for name in ("seal verify --trust", "pdf verify --trust", "tsa verify --ca", "ca verify --trust"):
        assert _error(run(capsys, argv_for(inputs, name, key_only)), 2)["error"] == "BAD_CERTIFICATE"


def test_audit_verify_key_files(inputs: Inputs, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["audit", "verify", "--db", f"sqlite:///{inputs.files['audit_db']}"]
    for label, data in variants(inputs.files["tsa_cert"].read_bytes()):
        check(run(capsys, [*db, "--audit-key", str(inputs.bad(f"audit-key-{label}", data))]), {1, 2})
    for path in (inputs.root / "no-such-key.pem", inputs.root):  # regression: FileNotFoundError traceback
        assert _error(run(capsys, [*db, "--audit-key", str(path)]), 2)["error"] in ("INPUT_NOT_FOUND",
                                                                                    "INPUT_UNREADABLE")


# ---------------------------------------------------------------------------------------------- tokens

def _token_argv(inp: Inputs, token: str, action: str = "verify") -> list[str]:
    return ["--home", str(inp.home), "token", action, token, "--db", f"sqlite:///{inp.root / 'tokens.db'}"]


@pytest.mark.parametrize("action", ["verify", "introspect"])
def test_token_variants(inputs: Inputs, capsys: pytest.CaptureFixture[str], action: str) -> None:
    code, out, _ = run(capsys, _token_argv(inputs, inputs.token, action))
    assert code == 0 and json.loads(out).get("valid", json.loads(out).get("active")) is True
    token = inputs.token.encode()
    cases = [d for _, d in variants(token)] + [b"a" * 2_000_000, b"a." * 1_000_000, b"..", b"\xff\xfe.x.y",
                                               b"eyJhbGciOiJub25lIn0.e30.", b"e30.e30.e30"]
    for data in cases:
        text = data.decode("utf-8", "replace").replace("\x00", "")
        if not text.strip() or text.startswith("-"):
            continue
        check(run(capsys, _token_argv(inputs, text, action)), {0, 1, 2})
    for data in (b"", b"a" * 3_000_000 + b"\n", b"\xff\xfe\x00garbage"):
        old = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(data))
        try:
            text = check(run(capsys, _token_argv(inputs, "-", action)), {0, 1, 2})
        finally:
            sys.stdin = old
        if action == "verify":
            assert "reason" in text or "error" in text


def test_token_trust_file(inputs: Inputs, capsys: pytest.CaptureFixture[str]) -> None:
    for label, data in [*variants(b'{"issuers": []}'), ("list", b"[1]"), ("issuers", b'{"issuers": [1]}')]:
        path = inputs.bad(f"trust-{label}.json", data)
        check(run(capsys, [*_token_argv(inputs, inputs.token), "--trust", str(path)]), {0, 2})
    for path in (inputs.root / "no-trust.json", inputs.root):
        check(run(capsys, [*_token_argv(inputs, inputs.token), "--trust", str(path)]), {2})
    # regression: an entry that is not an object was exit 3 (refused) instead of 2 like the other bad trust files
    path = inputs.bad("trust-entry.json", b'{"issuers": [1]}')
    assert _error(run(capsys, [*_token_argv(inputs, inputs.token), "--trust", str(path)]), 2)["error"] \
        == "BAD_TRUST_CONFIG"


@pytest.mark.parametrize("flag", ["--maker-key", "--maker-cert", "--holder-cert", "--picture"])
def test_seal_make_unreadable_files(inputs: Inputs, capsys: pytest.CaptureFixture[str], flag: str) -> None:
    files = {"--maker-key": str(inputs.files["tsa_key"]), "--maker-cert": str(inputs.files["seal_trust"]),
             "--holder-cert": str(inputs.files["tsa_cert"]), "--picture": None}
    files[flag] = str(inputs.root)  # a directory: was an IsADirectoryError traceback
    argv = ["--home", str(inputs.home), "seal", "make", "--name", "x"]
    argv += [a for k, v in files.items() if v for a in (k, v)]
    assert _error(run(capsys, argv), 2)["error"] == "INPUT_UNREADABLE"


# ---------------------------------------------------------------------------------------------- key files

def _key_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "keys").rglob("*") if p.is_file())


@pytest.mark.parametrize("action", ["show", "export-public", "list"])
def test_key_store_files_corrupted(inputs: Inputs, capsys: pytest.CaptureFixture[str], action: str,
                                   tmp_path: Path) -> None:
    import shutil

    files = _key_files(inputs.home)
    assert files
    for target in files:
        original = target.read_bytes()
        for i, (_, data) in enumerate(variants(original)[:6]):
            home = tmp_path / f"h-{target.name}-{i}"
            shutil.copytree(inputs.home / "keys", home / "keys")
            (home / "keys" / target.relative_to(inputs.home / "keys")).write_bytes(data)
            argv = ["--home", str(home), "key", action] + (["k1"] if action != "list" else [])
            check(run(capsys, argv), {0, 2, 3})


# ---------------------------------------------------------------------------------------------- outputs

def test_unwritable_outputs_are_bad_input_not_tracebacks(inputs: Inputs, capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    # regression: every command that writes a file the user named raised FileNotFoundError / IsADirectoryError
    f, home = inputs.files, ["--home", str(inputs.home)]
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"x")
    for bad in (tmp_path / "no-such-dir" / "out", tmp_path, a_file / "below-a-file"):
        commands = [
            ["seal", "render", "测试单位", "-o", str(bad)],
            [*home, "ca", "issue", "--profile", sorted(_profiles())[0], "--cn", "x", "--out-cert", str(bad),
             "--out-key", str(tmp_path / "k.pem")],
            [*home, "ca", "crl", "--out", str(bad)],
            ["tsa", "stamp", str(f["tsa_data"]), "--key", str(f["tsa_key"]), "--cert", str(f["tsa_cert"]),
             "--chain", str(f["tsa_root"]), "--out", str(bad)],
            [*home, "pdf", "sign", str(f["pdf"]), "-o", str(bad), "--dev-identity", "ecdsa"],
            [*home, "pdf", "batch-sign", str(f["pdf"]), "-o", str(a_file), "--dev-identity", "ecdsa", "--workers", "0"],
        ]
        for argv in commands:
            assert _error(run(capsys, argv), 2)["error"] == "OUTPUT_UNWRITABLE", (argv, bad)
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("*/.*.tmp"))  # no temporary left behind
    assert not (tmp_path / "k.pem").exists()  # refused before issuing: no key without its certificate


def test_a_private_key_is_owner_only_even_over_an_open_file(inputs: Inputs, capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    # regression: O_TRUNC on an existing 0644 file kept its mode, so the new key was world-readable
    key, cert = tmp_path / "leaf.key.pem", tmp_path / "leaf.crt.pem"
    key.write_bytes(b"old")
    key.chmod(0o644)
    assert run(capsys, ["--home", str(inputs.home), "ca", "issue", "--profile", sorted(_profiles())[0], "--cn",
                        "leaf", "--out-cert", str(cert), "--out-key", str(key)])[0] == 0
    assert key.stat().st_mode & 0o777 == 0o600 and key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
