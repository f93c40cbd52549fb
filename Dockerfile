# trustsvc daemon: multi-stage build, non-root, SoftHSM2 inside for the demo, grpc.health.v1 health check.
# BASE_IMAGE: a Debian-based Python 3.11 image with pip (both stages). The default is the real one; where Docker
# Hub cannot be reached, scripts/docker-smoke.sh builds a stand-in from Debian bookworm (see docs/docker.md).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
# gcc builds trustsvc's SM2 signing extension (_sm2native.c, into the wheel) and gmalglib (an sdist); it is needed
# here, not in the final image. googleapis-common-protos: trustsvc.codegen compiles against google/rpc/*.proto.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir --upgrade pip wheel grpcio-tools googleapis-common-protos
COPY pyproject.toml README.md ./
COPY trustsvc ./trustsvc
COPY cli ./cli
COPY proto ./proto
# generate trustsvc/_generated from proto/ at build time (never checked in); the wheel carries it.
# The SM2 extension is optional in pyproject.toml (a failed compile only warns), so the build fails here
# if the trustsvc wheel came out without it.
RUN python -m trustsvc.codegen \
    && pip wheel --no-cache-dir --wheel-dir /wheels . \
    && python -c "import sys, zipfile, glob; w = glob.glob('/wheels/trustsvc-*.whl'); \
names = zipfile.ZipFile(w[0]).namelist(); \
sys.exit(0 if any(n.startswith('trustsvc/algorithms/_sm2native') and n.endswith('.so') for n in names) \
else 'the trustsvc wheel has no trustsvc/algorithms/_sm2native*.so')" \
    && python -c "import sys, zipfile, glob; w = glob.glob('/wheels/trustsvc-*.whl'); \
sys.exit(0 if 'trustsvc/_generated/STAMP' in zipfile.ZipFile(w[0]).namelist() else 'no _generated/STAMP in the wheel')"
# Installed here into a venv that the final stage copies whole: no wheels layer left behind in the image,
# no pip or compiler needed there (both stages have the same base, so the venv's python link holds).
RUN python -m venv --without-pip /opt/trustsvc/venv \
    && pip --python /opt/trustsvc/venv/bin/python install --no-cache-dir --no-index --find-links /wheels trustsvc

FROM ${BASE_IMAGE}
# fonts-wqy-zenhei: the CJK font seal pictures and PDF seal text are drawn with (the embedded default
# renders a demo seal at start-up and fails with NO_CJK_FONT without it)
RUN apt-get update && apt-get install -y --no-install-recommends softhsm2 opensc fonts-wqy-zenhei \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 trustsvc \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/trustsvc --create-home --shell /usr/sbin/nologin trustsvc \
    && chmod 0700 /var/lib/trustsvc
COPY --from=build /opt/trustsvc/venv /opt/trustsvc/venv
ENV PATH=/opt/trustsvc/venv/bin:$PATH
RUN python -c "import trustsvc.algorithms._sm2native, trustsvc.client, trustsvc.server"
COPY deploy/trustsvc.toml /etc/trustsvc/trustsvc.toml
# SM2 vendor profiles and the SoftHSM2 set-up script (`trustsvc hsm init-dev DIR` for a demo token)
COPY hsm/profiles /opt/trustsvc/hsm/profiles
COPY hsm/setup-softhsm.sh /opt/trustsvc/hsm/setup-softhsm.sh
USER 10001:10001
ENV TRUSTSVC_HOME=/var/lib/trustsvc \
    TRUSTSVC_HSM_DIR=/opt/trustsvc/hsm \
    TRUSTSVC_HSM_PROFILES=/opt/trustsvc/hsm/profiles \
    SOFTHSM2_CONF=/var/lib/trustsvc/softhsm2.conf \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/trustsvc"]
EXPOSE 50051 9464
# The health check asks grpc.health.v1 over mTLS with the admin certificate the first start writes under
# $TRUSTSVC_HOME/tls, on the port of $TRUSTSVC_LISTEN when that overrides the config's 0.0.0.0:50051.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 CMD python -c "\
import os, sys; from trustsvc.client import Client; \
port = os.environ.get('TRUSTSVC_LISTEN', ':50051').rpartition(':')[2]; \
c = Client.from_home(os.environ['TRUSTSVC_HOME'], '127.0.0.1:' + port, 'admin', server_name='localhost', timeout=8, retries=0); \
sys.exit(0 if c.check_health() == 'SERVING' else 1)"
ENTRYPOINT ["trustsvc", "serve", "--config", "/etc/trustsvc/trustsvc.toml"]
