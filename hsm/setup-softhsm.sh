#!/usr/bin/env bash
# Create a SoftHSM2 configuration and one initialised token under DIR.
# Usage: hsm/setup-softhsm.sh DIR LABEL SOPIN PIN
# Writes DIR/softhsm2.conf and DIR/tokens/; sets nothing globally. Use the token with
#   SOFTHSM2_CONF=DIR/softhsm2.conf
# Development and tests only: the PINs given here end up in your shell history.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 DIR LABEL SOPIN PIN" >&2
  exit 2
fi
dir=$1 label=$2 sopin=$3 pin=$4
command -v softhsm2-util >/dev/null 2>&1 || { echo "softhsm2-util not found: install softhsm2" >&2; exit 3; }
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
chmod 700 "$dir/tokens"
cat >"$dir/softhsm2.conf" <<CONF
# SoftHSM2 configuration written by trustsvc hsm/setup-softhsm.sh
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
if softhsm2-util --show-slots 2>/dev/null | grep -q "Label:[[:space:]]*$label[[:space:]]*$"; then
  echo "token $label already exists in $dir" >&2
  exit 0
fi
softhsm2-util --init-token --free --label "$label" --so-pin "$sopin" --pin "$pin" >/dev/null
echo "SOFTHSM2_CONF=$dir/softhsm2.conf"
