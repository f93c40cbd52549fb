"""The wheel a deployment installs (and the Dockerfile builds) works without the source tree:
it carries the generated gRPC code with its stamp, the CLI package and the package data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from trustsvc import codegen

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built as the Dockerfile's build stage does: from a copy of what it copies, after codegen."""
    codegen.ensure()
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("trustsvc", "cli", "proto"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.lock"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--wheel-dir", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("trustsvc-*.whl")
    return path


def test_wheel_carries_generated_code_stamp_and_cli(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "trustsvc/_generated/STAMP" in names
    assert {f"trustsvc/_generated/trustsvc/v1/{m}_pb2.py" for m in codegen.MODULES} <= names
    assert "cli/main.py" in names and "cli/serve.py" in names


def test_wheel_needs_no_code_generator_at_run_time(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: grpcio-tools")]
    assert requires and all("extra ==" in line for line in requires), requires


def test_unpacked_wheel_loads_every_service_without_proto(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # grpc_tools made unimportable: an installed wheel must never try to generate code
    script = ("import sys; sys.modules['grpc_tools'] = None; "
              "import trustsvc.codegen as c; assert not c.PROTO_DIR.is_dir(), c.PROTO_DIR; "
              "assert c.is_up_to_date(); [c.load(m) for m in c.MODULES]; import trustsvc.server, trustsvc.client; "
              "from cli.main import main; sys.exit(main(['--help']))")
    # the unpacked wheel first on the path, the dependencies from this environment; run away from the checkout
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trustsvc" in done.stdout
