#!/usr/bin/env bash
# Set up and run the main job on embedded defaults: a development CA, keys, and real signatures
# that are made and verified (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/trustsvc demo "$@"
