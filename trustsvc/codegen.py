"""Generate Python gRPC code from proto/trustsvc/v1 into trustsvc/_generated (git-ignored).

Called lazily by ``trustsvc.server`` and ``trustsvc.client`` when the generated code is missing
or older than the protos (a stamp holds the SHA-256 over the proto files), and by scripts
(``python -m trustsvc.codegen``). Imports in the output are rewritten to
``trustsvc._generated.trustsvc.v1`` so they never clash with the ``trustsvc`` package itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_DIR = PROTO_ROOT / "trustsvc" / "v1"
OUT = Path(__file__).resolve().parent / "_generated"
STAMP = OUT / "STAMP"
PACKAGE = "trustsvc._generated.trustsvc.v1"
MODULES = ("common", "signature", "key", "token", "seal", "document", "timestamp")

_IMPORT = re.compile(r"^from trustsvc\.v1 import ", re.M)


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def proto_digest() -> str:
    """SHA-256 over the names and contents of the proto files (what the stamp records)."""
    h = hashlib.sha256()
    for path in proto_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def is_up_to_date() -> bool:
    """The generated code matches proto/. An installed package without proto/ (a wheel or an image,
    generated at build time) is up to date by definition once its code is there."""
    if not PROTO_DIR.is_dir():
        return STAMP.exists()
    return STAMP.exists() and STAMP.read_text().strip() == proto_digest()


def generate(out: Path | None = None) -> None:
    """Run grpc_tools.protoc over every proto into ``out`` (default ``OUT``; atomically replaced)."""
    out = OUT if out is None else out
    import google.rpc.status_pb2 as status_pb2

    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        raise RuntimeError("generating the gRPC code from proto/ needs grpcio-tools: pip install -e '.[codegen]' "
                           "(scripts/bootstrap.sh does)") from None

    include_grpc = Path(grpc_tools.__file__).parent / "_proto"
    include_rpc = Path(status_pb2.__file__).parent.parent.parent  # site-packages holding google/rpc/*.proto
    digest = proto_digest()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="_gen", dir=out.parent))
    try:
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include_grpc}", f"-I{include_rpc}",
                f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}",
                *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()]]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed on proto/trustsvc/v1")
        for path in (tmp / "trustsvc" / "v1").iterdir():
            if path.suffix in (".py", ".pyi"):
                path.write_text(_IMPORT.sub(f"from {PACKAGE} import ", path.read_text()))
        for pkg in (tmp, tmp / "trustsvc", tmp / "trustsvc" / "v1"):
            (pkg / "__init__.py").write_text('"""Generated from proto/ by trustsvc.codegen; do not edit."""\n')
        (tmp / "STAMP").write_text(digest + "\n")
        old = out.with_name(out.name + ".old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _lock() -> Iterator[IO[str]]:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT.parent / ".codegen.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure() -> None:
    """Generate when missing or outdated (safe across processes)."""
    if is_up_to_date():
        return
    if not PROTO_DIR.is_dir():
        raise RuntimeError(f"the generated gRPC code is missing from {OUT} and there is no proto/ to generate it "
                           "from: build the package after `python -m trustsvc.codegen`")
    with _lock():
        if not is_up_to_date():
            generate()
            importlib.invalidate_caches()


def load(name: str) -> tuple[Any, Any]:
    """(``<name>_pb2``, ``<name>_pb2_grpc``) for one proto file, generating first if needed."""
    ensure()
    return (importlib.import_module(f"{PACKAGE}.{name}_pb2"), importlib.import_module(f"{PACKAGE}.{name}_pb2_grpc"))


if __name__ == "__main__":
    if "--check" in sys.argv:
        ok = is_up_to_date()
        print("up to date" if ok else "outdated: run python -m trustsvc.codegen")
        sys.exit(0 if ok else 1)
    with _lock():
        generate()
    print(f"generated {OUT}")
    os._exit(0)
