"""`general_settings.json_logs: true`: every log line of `toolhub serve` is one JSON object."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import httpx2
import yaml

from hub.ops.logs import JsonFormatter
from tests.support.servers import toolhub_process


def test_a_record_becomes_one_json_line_with_its_extra_fields_and_traceback() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord("toolhub", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    record.access = {"status": 500}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed == {"time": parsed["time"], "level": "ERROR", "logger": "toolhub", "message": "failed x",
                      "access": {"status": 500}, "exc_info": parsed["exc_info"]}  # fmt: skip
    assert parsed["time"].endswith("Z") and "ValueError: bad" in parsed["exc_info"]


def test_serve_with_json_logs_writes_only_json_lines_including_the_access_log(tmp_path: Path) -> None:
    config = {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_base": "http://127.0.0.1:9"}}],
        "general_settings": {"json_logs": True, "database_url": f"sqlite:///{tmp_path / 'hub.db'}"},
        "litellm_settings": {"success_callback": ["langfuse"]},  # a warning at start: "is ignored"
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with toolhub_process(path, args=("--log-level", "info")) as (url, proc):
        answer = httpx2.get(f"{url}/v1/models/nope", headers={"x-request-id": "req-json-1"})
        proc.terminate()
        proc.wait(20)
        assert proc.stderr is not None
        lines = [line for line in proc.stderr.read().decode().splitlines() if line.strip()]
    assert answer.status_code == 404
    records = [json.loads(line) for line in lines]  # every line parses
    access = [r["access"] for r in records if r["logger"] == "toolhub.access"]
    assert [(a["status"], a["request_id"], a["path"]) for a in access] == [(404, "req-json-1", "/v1/models/nope")]
    assert any("success_callback" in r["message"] for r in records)
    assert any(r["logger"].startswith("uvicorn") for r in records)
