"""The ``trustsvc`` command. Each module in cli/ with a ``register(subparsers)`` adds a command group.

Exit codes: 0 success; 1 verification failed (a document, seal, token or log did not verify);
2 bad usage or bad input; 3 refused or failed (not found, conflicting state such as a revoked seal,
a component unavailable).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence

import cli
from trustsvc.errors import InvalidInput, TrustsvcError

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_FAILURE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trustsvc", description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None,
                        help="data directory (default: $TRUSTSVC_HOME or ./.trustsvc-demo)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda m: m.name):
        if info.name in ("main", "common") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"cli.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except InvalidInput as exc:
        _report(exc)
        return EXIT_USAGE
    except TrustsvcError as exc:
        _report(exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _report(exc: TrustsvcError) -> None:
    print(json.dumps({"error": exc.reason, "message": exc.message}, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
