"""USD amounts the API shows are rounded to 10 significant digits: costs like 12 x $0.1 + 7 x $0.2 are
2.6000000000000005 in binary floating point, and their sums 7.800000000000002 (20,064 requests of $0.30 summed
6019.2000000022), which /key/info, /spend/logs and /spend/daily showed as they were."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from hub.accounts.spend import usd
from hub.config import parse_config
from hub.server import build_app
from tests.keys.conftest import MASTER_KEY, config_dict, sdk
from tests.support.servers import serve_app

USER: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway_url(upstream: str, database_url: str) -> Iterator[str]:
    raw = config_dict(upstream, database_url)
    dime = {**raw["model_list"][0], "model_name": "dime"}
    dime["litellm_params"] = {**dime["litellm_params"], "input_cost_per_token": 0.1, "output_cost_per_token": 0.2}
    raw["model_list"].append(dime)
    with serve_app(build_app(parse_config(raw, {}))) as url:
        yield url


def test_spend_is_shown_without_floating_point_noise(gateway_url: str) -> None:
    with httpx2.Client(base_url=gateway_url, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as admin:
        key = admin.post("/key/generate", json={"models": ["dime"]}).json()["key"]
        with sdk(gateway_url, key) as client:
            costs = [
                client.chat.completions.with_raw_response.create(model="dime", messages=USER).headers["x-toolhub-cost"]
                for _ in range(3)
            ]
        assert costs == ["2.6"] * 3
        assert admin.get("/key/info", params={"key": key}).json()["info"]["spend"] == 7.8
        logs = admin.get("/spend/logs", params={"api_key": key}).json()["data"]
        assert [log["spend"] for log in logs] == [2.6] * 3
        daily = admin.get("/spend/daily", params={"group_by": "model"}).json()["data"]
        assert [(d["model"], d["spend"]) for d in daily] == [("dime", 7.8)]


def test_usd_keeps_ten_significant_digits_whatever_the_size() -> None:
    sums = (6019.2000000022, 23757.1199999694, 2.6000000000000005, 0.0)  # noise past the 10th digit goes
    assert [usd(x) for x in sums] == [6019.2, 23757.12, 2.6, 0.0]
    small_and_large = (1.2345678912345e-7, 3.3e-05, 123456789.123456)  # 10 digits kept, at any size
    assert [usd(x) for x in small_and_large] == [1.234567891e-7, 3.3e-05, 123456789.1]
