"""The Redis URL built from `cache_params` host, port and password: the password reaches Redis as written."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import parse_url

from hub.config import parse_config

MODEL = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_base": "http://x/v1"}}


def redis_url(password: str) -> str:
    params: dict[str, Any] = {"type": "redis", "host": "127.0.0.1", "port": 6380, "password": password}
    settings = parse_config({"model_list": [MODEL], "litellm_settings": {"cache": True, "cache_params": params}}, {})
    assert settings.cache is not None and settings.cache.redis_url is not None
    return settings.cache.redis_url


@pytest.mark.parametrize("password", ["pw", "a/b#c?d@e:f", "100%25sure", "sp ace+plus"])
def test_a_cache_password_with_url_characters_reaches_redis_unchanged(password: str) -> None:
    parsed = parse_url(redis_url(password))
    assert [parsed.get(k) for k in ("password", "host", "port", "db")] == [password, "127.0.0.1", 6380, 0]
