"""Credentials and query strings in MCP upstream URLs (and headers configured for them) stay out of what callers and
logs see: `/health/readiness`, REST `/mcp/tools/list`, the "is down" warning, httpx2's request lines under
`toolhub serve`, and `toolhub check-config`. The upstream is real: a server on 127.0.0.1 that answers 404."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from starlette.applications import Starlette

from hub.mcp.redact import MASK, hide_urls, redact
from tests.support.servers import ROOT, serve_app, toolhub_process

MASTER_KEY = "sk-url-secrets-master"
SECRETS = ("S3CRETPW", "Q_SECRET", "LIVE_PW", "LIVE_Q", "HDR_SECRET", "APIPW", "API_Q")


@pytest.fixture
def not_found() -> Iterator[str]:
    """An HTTP server that answers 404 to every request: "http://127.0.0.1:PORT"."""
    with serve_app(Starlette()) as url:
        yield url


def servers(base: str) -> dict[str, Any]:
    host = base.removeprefix("http://")
    return {
        "s": {"transport": "sse", "url": f"http://user:S3CRETPW@{host}/sse?apikey=Q_SECRET"},
        "h": {
            "transport": "http",
            "url": f"http://user:LIVE_PW@{host}/mcp/echo?token=LIVE_Q",
            "headers": {"Authorization": "Bearer HDR_SECRET"},
        },
    }


def leaks(surfaces: dict[str, str]) -> dict[str, list[str]]:
    """Which secrets each surface shows."""
    found = {name: [s for s in SECRETS if s in text] for name, text in surfaces.items()}
    return {name: secrets for name, secrets in found.items() if secrets}


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def both_down(url: str) -> dict[str, Any]:
    """`/health/readiness` once both upstreams have failed (bounded wait)."""
    deadline = time.monotonic() + 30
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx2.get(f"{url}/health/readiness").json()
        if body.get("mcp") == {"s": "down", "h": "down"}:
            return body
        time.sleep(0.1)
    raise AssertionError(f"the upstreams were not both down within 30 s: {body}")


def test_serve_shows_upstream_urls_without_credentials_query_or_headers(tmp_path: Path, not_found: str) -> None:
    config = {"general_settings": {"master_key": MASTER_KEY}, "mcp_servers": servers(not_found)}
    with toolhub_process(write_config(tmp_path, config)) as (url, proc):
        readiness = both_down(url)
        listed = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log = proc.stderr.read().decode() if proc.stderr else ""
    down = [line for line in log.splitlines() if "is down:" in line]
    requests = [line for line in log.splitlines() if "HTTP Request:" in line]
    errors = {entry["name"]: entry["error"] for entry in readiness["degraded"]}
    surfaces = {"readiness": str(readiness), "list": str(listed["servers"]), "down": "\n".join(down)}
    assert leaks({**surfaces, "httpx2": "\n".join(requests), "log": log}) == {}
    host = not_found.removeprefix("http://")
    assert f"for url 'http://{host}/sse'" in errors["s"]  # the error still names the upstream, shown safely
    assert f"for url 'http://{host}/sse'" in listed["servers"]["s"]["detail"]
    assert {line.split("MCP server ")[1].split(" ")[0] for line in down} == {"s", "h"}


def test_check_config_prints_urls_without_credentials_or_query(tmp_path: Path, not_found: str) -> None:
    model = {"model": "openai/x", "api_key": "sk-x", "api_base": "http://u:APIPW@127.0.0.1:9/v1?key=API_Q"}
    zapier = {"transport": "http", "url": f"{not_found}/api/mcp/s/{TOKEN}/mcp"}  # the key in the path
    config = {"model_list": [{"model_name": "a", "litellm_params": model}],
              "mcp_servers": {**servers(not_found), "z": zapier}}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "hub", "check-config", str(write_config(tmp_path, config))],
                            cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert leaks({"stdout": result.stdout, "stderr": result.stderr}) == {}
    host = not_found.removeprefix("http://")
    assert f"  s (sse): http://{host}/sse\n" in result.stdout
    assert f"  h (http): http://{host}/mcp/echo\n" in result.stdout
    assert "  a -> openai/x at http://127.0.0.1:9/v1\n" in result.stdout
    assert f"  z (http): http://{host}/api/mcp/s/{MASK}/mcp\n" in result.stdout and TOKEN not in result.stdout


URL = "http://us%20er:p%40ss%20word@h:1/mcp?token=a%20b&key=LONGVALUE"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"for url '{URL}'", "for url 'http://h:1/mcp'"),
        ("for url 'http://us%20er:p%40ss%20word@h:1/mcp?token=a%20b&key=LONGVALUE'", "for url 'http://h:1/mcp'"),
        ("userinfo us er:p@ss word, query token=a b&key=LONGVALUE", f"userinfo {MASK}, query {MASK}"),
        ("password p@ss word, value LONGVALUE", f"password {MASK}, value {MASK}"),
        ("another https://me:pw@other:2/x?q=1 here", "another https://other:2/x?q=1 here"),
        ("[Errno 111] Connect call failed ('127.0.0.1', 1)", "[Errno 111] Connect call failed ('127.0.0.1', 1)"),
    ],
)
def test_an_error_text_loses_the_upstream_urls_secrets_in_any_form(text: str, shown: str) -> None:
    assert redact(text, URL) == shown


def test_a_log_line_shows_every_url_without_credentials_or_query() -> None:
    line = 'HTTP Request: POST http://user:LIVE_PW@127.0.0.1:18431/mcp/echo?token=LIVE_Q "HTTP/1.1 404 Not Found"'
    assert hide_urls(line) == 'HTTP Request: POST http://127.0.0.1:18431/mcp/echo "HTTP/1.1 404 Not Found"'


@pytest.mark.parametrize(
    ("url", "text", "shown"),
    [
        ("http://127.0.0.1:9/mcp?transport=http", "for url 'http://127.0.0.1:9/mcp' (http)", None),
        ("http://h:1/mcp?format=json", "content-type: application/json; json", None),
        ("http://h:1/mcp?v=2025", "protocol 2025-06-18", None),
        ("http://h:1/mcp?v=2025&key=SECRETVALUE", "at http://h:1/mcp?v=2025&key=SECRETVALUE: 2025-06-18",
         "at http://h:1/mcp: 2025-06-18"),
        ("http://h:1/mcp?key=SECRETVALUE", "key SECRETVALUE. NOTSECRETVALUE SECRETVALUE-2 SECRETVALUE://x",
         f"key {MASK}. NOTSECRETVALUE SECRETVALUE-2 SECRETVALUE://x"),
    ],
)  # fmt: skip
def test_a_short_query_value_or_one_inside_a_longer_token_is_left_where_it_stands_alone(
    url: str, text: str, shown: str | None
) -> None:
    assert redact(text, url) == (text if shown is None else shown)


TOKEN = "ODU5YjI2ZTEtNDg4ZC00YzQ1LWE0NDg="
UUID = "3f1c2a9e-8b7d-4c6e-9f1a-2b3c4d5e6f70"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://mcp.zapier.com/api/mcp/s/{TOKEN}/mcp", f"https://mcp.zapier.com/api/mcp/s/{MASK}/mcp"),
        (f"https://mcp.pipedream.net/{UUID}/github", f"https://mcp.pipedream.net/{MASK}/github"),
        ("https://x.io/@modelcontextprotocol/server-everything/sse", None),
        ("http://127.0.0.1:8080/mcp/v2025-06-18", None),
    ],
)
def test_a_path_segment_that_looks_like_a_key_is_masked_in_log_lines_and_names_are_kept(
    url: str, shown: str | None
) -> None:
    assert hide_urls(f"HTTP Request: POST {url} 200") == f"HTTP Request: POST {shown or url} 200"


def test_an_error_text_loses_a_key_in_the_upstreams_path_as_written_or_decoded() -> None:
    url = f"https://mcp.example/s/{TOKEN.replace('=', '%3D')}/mcp"
    text = f"for url '{url}': 401; key {TOKEN} refused"
    assert redact(text, url) == f"for url 'https://mcp.example/s/{MASK}/mcp': 401; key {MASK} refused"
