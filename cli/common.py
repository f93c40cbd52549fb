"""Helpers shared by CLI command modules."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def home(args: argparse.Namespace) -> Path:
    """The data directory: --home, $TRUSTSVC_HOME, or ./.trustsvc-demo."""
    path = Path(args.home or os.environ.get("TRUSTSVC_HOME") or ".trustsvc-demo")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON, or ``text`` for people."""
    if as_json or text is None:
        print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))
    else:
        print(text)


def read_input(path: str) -> bytes:
    """Bytes of a file, or of stdin for '-'."""
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
