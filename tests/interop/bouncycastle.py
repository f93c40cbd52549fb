"""Run the small Java/BouncyCastle programs in tests/interop/java (compiled on first use).

Every ``*.java`` file there is compiled together against Debian's bcprov/bcpkix/bcutil jars.
"""

from __future__ import annotations

import functools
import glob
import subprocess
from pathlib import Path

JAVA_DIR = Path(__file__).parent / "java"
BUILD_DIR = JAVA_DIR / "build"
_JARS = ("bcprov", "bcpkix", "bcutil")


def classpath() -> str:
    jars = []
    for name in _JARS:
        found = sorted(glob.glob(f"/usr/share/java/{name}.jar")) or sorted(glob.glob(f"/usr/share/java/{name}*.jar"))
        if not found:
            raise RuntimeError(f"BouncyCastle jar {name} missing: run scripts/bootstrap.sh --with-test-deps")
        jars.append(found[0])
    return ":".join(jars)


@functools.lru_cache(maxsize=1)
def compiled() -> str:
    """Compile every Java source once per test run; returns the classpath to run with."""
    sources = sorted(str(p) for p in JAVA_DIR.glob("*.java"))
    BUILD_DIR.mkdir(exist_ok=True)
    cp = classpath()
    newest = max(Path(s).stat().st_mtime for s in sources)
    stamp = BUILD_DIR / ".stamp"
    if not stamp.exists() or stamp.stat().st_mtime < newest:
        subprocess.run(["javac", "-nowarn", "-encoding", "UTF-8", "-cp", cp, "-d", str(BUILD_DIR), *sources],
                       check=True, capture_output=True, text=True)
        stamp.touch()
    return f"{BUILD_DIR}:{cp}"


def run(main_class: str, *args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``main_class`` with ``args``; returns the completed process (check returncode/stdout)."""
    return subprocess.run(["java", "-cp", compiled(), main_class, *args], input=input_bytes.decode("latin-1")
                          if input_bytes is not None else None, capture_output=True, text=True, timeout=120)
