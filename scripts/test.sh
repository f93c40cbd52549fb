#!/usr/bin/env bash
# Set up (system packages, venv, generated code) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --with-test-deps
scripts/ensure_postgres.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
