# cliproxy as a container: `docker compose up -d` (compose.yaml), or see "Running as a service" in README.md.
#
# Inside the container the proxy listens on every interface (CLIPROXY_HOST), port 8317 (CLIPROXY_PORT);
# publish it on the host with care (compose.yaml binds it to 127.0.0.1). It runs as an unprivileged
# user; three volumes keep what must survive the container:
#   /etc/cliproxy      config.yaml (written with a random client key and a hashed management secret
#                      on the first start, keys printed to the log; management writes go here too)
#   /var/lib/cliproxy  auth-dir for OAuth logins and the usage database (set `auth-dir: /var/lib/cliproxy/auths`)
#   /var/log/cliproxy  `logging-to-file` and request logs (WRITABLE_PATH)

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cliproxy ./cliproxy
RUN python -m venv /opt/cliproxy \
 && /opt/cliproxy/bin/pip install --no-cache-dir --no-compile . \
 && /opt/cliproxy/bin/python -m compileall -q /opt/cliproxy

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/cliproxy --shell /usr/sbin/nologin cliproxy \
 && mkdir -p /etc/cliproxy /var/lib/cliproxy/auths /var/log/cliproxy \
 && chown cliproxy:cliproxy /etc/cliproxy /var/lib/cliproxy /var/lib/cliproxy/auths /var/log/cliproxy \
 && chmod 0700 /etc/cliproxy /var/lib/cliproxy /var/lib/cliproxy/auths
COPY --from=build /opt/cliproxy /opt/cliproxy
ENV PATH=/opt/cliproxy/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLIPROXY_HOST=0.0.0.0 \
    CLIPROXY_PORT=8317 \
    WRITABLE_PATH=/var/log/cliproxy
USER cliproxy
WORKDIR /var/lib/cliproxy
VOLUME ["/etc/cliproxy", "/var/lib/cliproxy", "/var/log/cliproxy"]
EXPOSE 8317
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['CLIPROXY_PORT'] + '/healthz', timeout=4)"]
ENTRYPOINT ["cliproxy", "--config", "/etc/cliproxy/config.yaml"]
