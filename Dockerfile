# trustsvc daemon: multi-stage build, non-root, SoftHSM2 inside for the demo, grpc.health.v1 health check.
FROM python:3.11-slim AS build
WORKDIR /src
# gcc builds trustsvc's SM2 signing extension (_sm2native.c, into the wheel) and gmalglib (an sdist); it is needed
# here, not in the final image
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir --upgrade pip wheel grpcio-tools
COPY pyproject.toml README.md ./
COPY trustsvc ./trustsvc
COPY cli ./cli
COPY proto ./proto
# generate trustsvc/_generated from proto/ at build time (never checked in); the wheel carries it
RUN python -m trustsvc.codegen && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# fonts-wqy-zenhei: the CJK font seal pictures and PDF seal text are drawn with (the embedded default
# renders a demo seal at start-up and fails with NO_CJK_FONT without it)
RUN apt-get update && apt-get install -y --no-install-recommends softhsm2 opensc fonts-wqy-zenhei \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/trustsvc --create-home trustsvc
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY deploy/trustsvc.toml /etc/trustsvc/trustsvc.toml
# SM2 vendor profiles and the SoftHSM2 set-up script (`trustsvc hsm init-dev DIR` for a demo token)
COPY hsm/profiles /opt/trustsvc/hsm/profiles
COPY hsm/setup-softhsm.sh /opt/trustsvc/hsm/setup-softhsm.sh
USER trustsvc
ENV TRUSTSVC_HOME=/var/lib/trustsvc \
    TRUSTSVC_HSM_DIR=/opt/trustsvc/hsm \
    TRUSTSVC_HSM_PROFILES=/opt/trustsvc/hsm/profiles \
    SOFTHSM2_CONF=/var/lib/trustsvc/softhsm2.conf
VOLUME ["/var/lib/trustsvc"]
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD python -c "\
import sys; from trustsvc.client import Client; \
c = Client.from_home('/var/lib/trustsvc', '127.0.0.1:50051', 'admin', server_name='localhost', timeout=4, retries=0); \
sys.exit(0 if c.check_health() == 'SERVING' else 1)"
ENTRYPOINT ["trustsvc", "serve", "--config", "/etc/trustsvc/trustsvc.toml"]
