"""A stored key becomes the Principal the app filters by: models, MCP servers and tools (both name forms)."""

from __future__ import annotations

import pytest

from hub.accounts.keys import principal_for, token_hash
from hub.accounts.spend import parse_duration, period_start
from hub.storage import KeyRow


def test_a_keys_scopes_become_the_principals_and_empty_lists_allow_everything() -> None:
    row = KeyRow("h" * 64, "sk-...abcd", 0, 0, key_alias="a", models=["text"], mcp_servers=["time", "git"],
                 mcp_tools=["time/get_current_time", "git/*"])  # fmt: skip
    p = principal_for(row)
    assert (p.key_id, p.alias, p.is_master) == ("h" * 64, "a", False)
    assert p.may_use_model("text") and not p.may_use_model("json")
    assert p.may_use_tool("time", "get_current_time") and not p.may_use_tool("time", "convert_time")
    assert p.may_use_tool("git", "git_log") and not p.may_use_tool("fetch", "fetch")
    open_key = principal_for(KeyRow("h" * 64, "sk-...abcd", 0, 0, models=[], mcp_servers=[]))
    assert open_key.models is None and open_key.may_use_tool("any", "tool")


def test_durations_follow_litellm_and_periods_align_on_creation() -> None:
    assert [parse_duration(d) for d in ("30s", "15m", "24h", "30d", "1mo")] == [30, 900, 86400, 2592000, 2592000]
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("30 days")
    assert period_start(1000.0, 100.0, 1250.0) == 1200.0
    assert period_start(1000.0, None, 1250.0) == 0.0


def test_keys_are_looked_up_by_hash_whether_given_raw_or_hashed() -> None:
    digest = token_hash("sk-abc")
    assert len(digest) == 64 and token_hash(digest) == digest
