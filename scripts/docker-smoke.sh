#!/usr/bin/env bash
# Build the trustsvc image and prove it works: build, HEALTHCHECK healthy, a real mTLS client call from the
# host (SignData + VerifySignedData, IssueToken + VerifyToken), the native SM2 extension inside, non-root,
# clean `docker stop`. Not part of the test suite (.ci/run does not call it). See docs/docker.md.
#
# Needs root on Debian (installs docker.io and debootstrap with apt when missing). Starts dockerd when none
# answers and stops it again at the end (only the one it started). When `docker pull python:3.11-slim` fails
# (no Docker Hub), it builds a stand-in base image from Debian bookworm with debootstrap and builds with
# --build-arg BASE_IMAGE=<stand-in>. Idempotent: the stand-in is made once and reused.
#
# Environment:
#   TRUSTSVC_SMOKE_PORT      host port for gRPC (default 50551; the container uses host networking)
#   TRUSTSVC_SMOKE_METRICS   host port for metrics (default 9564)
#   TRUSTSVC_SMOKE_WORK      scratch directory (default /var/tmp/trustsvc-docker-smoke)
#   TRUSTSVC_SMOKE_IMAGE     image tag to build (default trustsvc:smoke)
#   TRUSTSVC_SMOKE_KEEP=1    keep dockerd running and the container's home afterwards
#   TRUSTSVC_SMOKE_REBUILD_BASE=1   rebuild the stand-in base even if it exists
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

PORT=${TRUSTSVC_SMOKE_PORT:-50551}
METRICS=${TRUSTSVC_SMOKE_METRICS:-9564}
WORK=${TRUSTSVC_SMOKE_WORK:-/var/tmp/trustsvc-docker-smoke}
IMAGE=${TRUSTSVC_SMOKE_IMAGE:-trustsvc:smoke}
REAL_BASE=python:3.11-slim
STANDIN=trustsvc-standin/python:3.11-bookworm
STANDIN_RECIPE=3   # bump when the stand-in recipe below changes: an older stand-in is then rebuilt
NAME=trustsvc-smoke
HOST_CA=/etc/ssl/certs/ca-certificates.crt

failures=0
STARTED_DOCKERD=
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
die() { fail "$*"; finish; }

finish() {
  if docker inspect "$NAME" >/dev/null 2>&1; then
    if [ "$failures" -gt 0 ]; then
      log "container log (last 40 lines):"
      docker logs --tail 40 "$NAME" 2>&1 | sed 's/^/    /'
    fi
    docker rm -f "$NAME" >/dev/null 2>&1
  fi
  if [ -n "$STARTED_DOCKERD" ] && [ "${TRUSTSVC_SMOKE_KEEP:-0}" != 1 ]; then
    log "stopping the dockerd this script started (pid $STARTED_DOCKERD)"
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
  fi
  if [ "$failures" -eq 0 ]; then
    printf 'RESULT: PASS (all checks)\n'
    exit 0
  fi
  printf 'RESULT: FAIL (%d check(s) failed)\n' "$failures"
  exit 1
}

trap 'fail "interrupted"; finish' INT TERM

# --- 1. tools -------------------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]}"
fi
pass "tools: docker $(docker --version 2>/dev/null | awk '{print $3}' | tr -d ,), dockerd, debootstrap"

# --- 2. dockerd -----------------------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  mkdir -p "$WORK"
  for driver in overlay2 vfs; do
    for extra in "" "--iptables=false"; do
      log "starting dockerd --storage-driver $driver $extra (log: $WORK/dockerd.log)"
      # shellcheck disable=SC2086
      nohup dockerd --storage-driver "$driver" $extra >"$WORK/dockerd.log" 2>&1 &
      STARTED_DOCKERD=$!
      for _ in $(seq 1 30); do
        docker info >/dev/null 2>&1 && break 3
        kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
        sleep 1
      done
      kill "$STARTED_DOCKERD" 2>/dev/null; wait "$STARTED_DOCKERD" 2>/dev/null; STARTED_DOCKERD=
    done
  done
  docker info >/dev/null 2>&1 || die "dockerd did not start (see $WORK/dockerd.log)"
fi
pass "dockerd answers (storage driver $(docker info --format '{{.Driver}}'), server $(docker version --format '{{.Server.Version}}'))"

# --- 3. base image --------------------------------------------------------------------------------------
BASE=$REAL_BASE
if docker image inspect "$REAL_BASE" >/dev/null 2>&1 || timeout 120 docker pull -q "$REAL_BASE" >/dev/null 2>&1; then
  pass "base: $REAL_BASE"
else
  BASE=$STANDIN
  have=$(docker image inspect "$STANDIN" --format '{{index .Config.Labels "trustsvc.standin.recipe"}}' 2>/dev/null)
  if [ "${TRUSTSVC_SMOKE_REBUILD_BASE:-0}" = 1 ] || [ "$have" != "$STANDIN_RECIPE" ]; then
    log "docker pull $REAL_BASE failed: building the stand-in $STANDIN from Debian bookworm (debootstrap)"
    rootfs=$WORK/rootfs
    rm -rf "$rootfs"
    mkdir -p "$WORK"
    # python3.11-dev: python:3.11-slim carries Python's headers (it builds Python from source), and the
    # build stage compiles gmalglib and _sm2native against them
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python3.11-dev,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
      || die "debootstrap (see $WORK/debootstrap.log)"
    ln -sf python3 "$rootfs/usr/bin/python"
    # The host's CA bundle (it may hold the CA of an intercepting HTTPS proxy) as the image's bundle, and
    # under /usr/local/share/ca-certificates so that update-ca-certificates inside keeps it.
    if [ -f "$HOST_CA" ]; then
      cp "$HOST_CA" "$rootfs/etc/ssl/certs/ca-certificates.crt"
      cp "$HOST_CA" "$rootfs/usr/local/share/ca-certificates/host-bundle.crt"
    fi
    # like the Debian images python:3.11-slim is built on: apt keeps no package cache or .debs after an
    # install, dpkg leaves out documentation and translations
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APTCONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APTCONF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKGCONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKGCONF
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
      "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
    docker rmi "$STANDIN" >/dev/null 2>&1
    tar -C "$rootfs" --numeric-owner -c . | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
      --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
      --change "LABEL trustsvc.standin.recipe=$STANDIN_RECIPE" \
      --change 'CMD ["python3"]' \
      - "$STANDIN" >/dev/null || die "docker import of the stand-in base"
    rm -rf "$rootfs"
  fi
  ver=$(docker run --rm --network host "$STANDIN" python --version 2>&1)
  case $ver in
    "Python 3.11."*) pass "base: stand-in $STANDIN ($ver; $REAL_BASE cannot be pulled here)" ;;
    *) die "stand-in base does not run python 3.11: $ver" ;;
  esac
fi

# --- 4. build -------------------------------------------------------------------------------------------
log "docker build --network host --build-arg BASE_IMAGE=$BASE -t $IMAGE ."
t0=$(date +%s)
if DOCKER_BUILDKIT=0 docker build --network host --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . \
    >"$WORK/build.log" 2>&1; then
  size=$(docker image inspect "$IMAGE" --format '{{.Size}}')
  pass "build $IMAGE in $(( $(date +%s) - t0 )) s, image size $(( size / 1000000 )) MB"
else
  tail -30 "$WORK/build.log" | sed 's/^/    /'
  die "docker build (see $WORK/build.log)"
fi

# --- 5. image content -------------------------------------------------------------------------------------
out=$(docker run --rm --network host --entrypoint python "$IMAGE" -c \
  "import trustsvc.algorithms._sm2native as m, trustsvc.algorithms.sm2_engine as e; \
print(m.__file__.rsplit('/', 1)[1], 'engine', e.get_engine().name)" 2>&1)
case $out in
  *"engine native") pass "native SM2 extension imports in the image and is the engine ($out)" ;;
  *) fail "native SM2 extension: $out" ;;
esac
out=$(docker run --rm --network host --entrypoint sh "$IMAGE" -c \
  'command -v softhsm2-util && test -f /usr/lib/softhsm/libsofthsm2.so && command -v pkcs11-tool && fc-list | grep -qi wqy && echo ok' 2>&1)
case $out in *ok) pass "SoftHSM2, OpenSC and the CJK font are in the image" ;; *) fail "runtime packages: $out" ;; esac
if docker run --rm --network host --entrypoint sh "$IMAGE" -c 'command -v gcc' >/dev/null 2>&1; then
  fail "gcc is in the final image (should stay in the build stage)"
else
  pass "no compiler in the final image"
fi
out=$(docker run --rm --network host --entrypoint sh "$IMAGE" -c \
  'd=$(mktemp -d) && trustsvc hsm init-dev "$d" >/dev/null && SOFTHSM2_CONF=$d/softhsm2.conf softhsm2-util --show-slots | grep -c "Initialized:.*yes"' 2>&1)
case $out in [1-9]*) pass "trustsvc hsm init-dev makes a SoftHSM2 token inside the image" ;; *) fail "hsm init-dev: $out" ;; esac

# --- 6. run -------------------------------------------------------------------------------------------------
home=$WORK/home
docker rm -f "$NAME" >/dev/null 2>&1
rm -rf "$home"
mkdir -p "$home" && chown 10001:10001 "$home" && chmod 700 "$home"
if ss -ltn 2>/dev/null | awk '{print $4}' | grep -Eq "[:.]($PORT|$METRICS)\$"; then
  die "port $PORT or $METRICS is taken on the host (set TRUSTSVC_SMOKE_PORT / TRUSTSVC_SMOKE_METRICS)"
fi
t0=$(date +%s)
docker run -d --name "$NAME" --network host -v "$home:/var/lib/trustsvc" \
  -e TRUSTSVC_LISTEN="0.0.0.0:$PORT" -e TRUSTSVC_METRICS_LISTEN="127.0.0.1:$METRICS" \
  "$IMAGE" >/dev/null || die "docker run"
status=
for _ in $(seq 1 150); do
  status=$(docker inspect --format '{{.State.Health.Status}}' "$NAME" 2>/dev/null)
  running=$(docker inspect --format '{{.State.Running}}' "$NAME" 2>/dev/null)
  [ "$status" = healthy ] && break
  [ "$running" = true ] || break
  sleep 1
done
if [ "$status" = healthy ]; then
  pass "HEALTHCHECK (grpc.health.v1 over mTLS) healthy after $(( $(date +%s) - t0 )) s"
else
  die "container not healthy (status '$status', running $(docker inspect --format '{{.State.Running}}' "$NAME"))"
fi

uid=$(docker exec "$NAME" id -u)
[ -n "$uid" ] && [ "$uid" != 0 ] && pass "runs as non-root (uid $uid)" || fail "container user is uid '$uid'"
owner=$(stat -c %u "$home/tls/ca.pem" 2>/dev/null)
[ "$owner" = 10001 ] && pass "state written to the home volume as uid 10001" || fail "home volume files owned by '$owner'"

# --- 7. a real client call from the host ---------------------------------------------------------------------
PY=$REPO/.venv/bin/python
[ -x "$PY" ] || PY=python3
if "$PY" - "$home" "127.0.0.1:$PORT" <<'PYEOF'
import base64
import json
import sys

from trustsvc.client import Client, token_pb2

home, target = sys.argv[1], sys.argv[2]
ok = True


def check(name, cond, detail=""):
    global ok
    print(("PASS " if cond else "FAIL ") + name + (f" ({detail})" if detail else ""))
    ok = ok and bool(cond)


with Client.from_home(home, target, "demo-client", server_name="localhost", timeout=20) as c:
    check("client: grpc.health.v1 SERVING from the host", c.check_health() == "SERVING")
    data = "电子证照 docker smoke".encode()
    signed = c.sign_data("default", data)
    check("client: SignData(default)", len(signed.signature) > 0,
          f"{signed.algorithm}, {len(signed.signature)} bytes")
    good = c.verify_signed_data(data, signed.signature, certificate=signed.certificate)
    bad = c.verify_signed_data(data + b"!", signed.signature, certificate=signed.certificate)
    check("client: VerifySignedData valid, tampered data rejected", good.valid and not bad.valid,
          f"valid={good.valid}, tampered={bad.valid and 'valid' or bad.reason}")
    # and once more on the host, outside the container, with the certificate's public key
    from trustsvc.algorithms.signer import Verifier
    from trustsvc.pki.certificate import Certificate
    try:
        Verifier(Certificate.load(signed.certificate).public_key).verify(data, signed.signature)
        check("host: the daemon's SM2 signature verifies with trustsvc on the host", True)
    except Exception as exc:  # noqa: BLE001
        check("host: the daemon's SM2 signature verifies with trustsvc on the host", False, repr(exc))
    issued = c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(
        subject="110101199001011234", audience=["portal"], scopes=["licence.read"], ttl_seconds=300))
    header = json.loads(base64.urlsafe_b64decode(issued.token.split(".")[0] + "=="))
    ver = c.call(c.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=issued.token, audience="portal"))
    check("client: IssueToken + VerifyToken", ver.result.valid and ver.claims["sub"] == "110101199001011234",
          f"token {issued.token_id}, JWS alg {header['alg']}")
sys.exit(0 if ok else 1)
PYEOF
then :; else failures=$((failures + 1)); fi

# --- 8. stop ------------------------------------------------------------------------------------------------
t0=$(date +%s)
docker stop -t 30 "$NAME" >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] && pass "docker stop: exit code 0 after $(( $(date +%s) - t0 )) s" || fail "docker stop: exit code $code"
docker logs "$NAME" 2>&1 | tail -3 | sed 's/^/    /'
docker rm "$NAME" >/dev/null 2>&1
[ "${TRUSTSVC_SMOKE_KEEP:-0}" = 1 ] || rm -rf "$home"

# --- 9. as plainly as an operator would: no bind mount (Docker's own volume gets the image's home, uid 10001) --
t0=$(date +%s)
docker run -d --name "$NAME" --network host \
  -e TRUSTSVC_LISTEN="0.0.0.0:$PORT" -e TRUSTSVC_METRICS_LISTEN="127.0.0.1:$METRICS" "$IMAGE" >/dev/null \
  || die "docker run (anonymous volume)"
status=
for _ in $(seq 1 150); do
  status=$(docker inspect --format '{{.State.Health.Status}}' "$NAME" 2>/dev/null)
  [ "$status" = healthy ] && break
  [ "$(docker inspect --format '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ] || break
  sleep 1
done
[ "$status" = healthy ] && pass "with an anonymous volume: healthy after $(( $(date +%s) - t0 )) s" \
  || fail "with an anonymous volume: status '$status'"
docker stop -t 30 "$NAME" >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] && pass "with an anonymous volume: docker stop exit code 0" || fail "anonymous volume: exit code $code"
docker rm -v "$NAME" >/dev/null 2>&1
finish
