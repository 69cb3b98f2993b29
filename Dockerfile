# Toolhub: gateway + MCP hub, and the built-in tool servers (python -m tools.postgres_db).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY hub ./hub
COPY providers ./providers
COPY tools ./tools
# tini as PID 1: it forwards signals and reaps what a dead worker's MCP stdio servers leave (the `--workers`
# supervisor reaps only its own workers).
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
RUN pip install . && useradd --create-home --uid 10001 toolhub && mkdir -p /data && chown toolhub /data
USER toolhub
WORKDIR /data

# The config is not part of the image: mount one here (docker-compose.yml mounts configs/config.docker.yaml).
ENV TOOLHUB_CONFIG=/etc/toolhub/config.yaml
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/health/liveliness', timeout=2)"
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["toolhub", "serve", "--host", "0.0.0.0", "--port", "4000", "--forwarded-allow-ips", "*"]
