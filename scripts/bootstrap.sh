#!/usr/bin/env bash
# Set up everything trustsvc and its tests need on a fresh Debian machine: system packages
# (only those missing), a virtualenv in .venv with the package and its test extras.
# Usage: scripts/bootstrap.sh [--with-test-deps]
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--with-test-deps" ] && want_test=1

runtime_pkgs=(openssl gcc python3-dev)
test_pkgs=(default-jdk-headless libbcprov-java libbcpkix-java libbcutil-java softhsm2 libssl-dev libp11-kit-dev
           poppler-utils qpdf fonts-wqy-zenhei postgresql postgresql-client valgrind)

missing=()
pkgs=("${runtime_pkgs[@]}")
[ $want_test = 1 ] && pkgs+=("${test_pkgs[@]}")
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing packages ${missing[*]} and no apt-get; install them yourself" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.trustsvc-installed
extras=".[codegen]"; [ $want_test = 1 ] && extras=".[test]"  # a source checkout generates its gRPC code
installed=$(cat "$stamp" 2>/dev/null || true)
# reinstall (which also rebuilds the native SM2 extension) when the packaging or the C source changed,
# or when the built extension is gone (git clean)
native_src=trustsvc/algorithms/_sm2native.c
native_stale=0
if [ -f "$native_src" ]; then
  if [ "$native_src" -nt "$stamp" ] || ! compgen -G "trustsvc/algorithms/_sm2native*.so" >/dev/null; then native_stale=1; fi
fi
if [ -z "$installed" ] || [ pyproject.toml -nt "$stamp" ] || [ $native_stale = 1 ] \
   || { [ "$extras" = ".[test]" ] && [ "$installed" != ".[test]" ]; }; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q -e "$extras" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2; rm -f "$log"
    echo "bootstrap: pip install failed" >&2; exit 1
  fi
  rm -f "$log"
  .venv/bin/python -c "import trustsvc, gmalglib" >/dev/null
  echo "$extras" >"$stamp"
fi
