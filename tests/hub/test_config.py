"""Loading LiteLLM-format configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import ConfigError, load_config, parse_config

LITELLM_CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      rpm: 60
      temperature: 0.2
      custom_llm_provider: openai
    model_info:
      id: my-id
  - model_name: gpt-4o
    litellm_params:
      model: gpt-4o
      api_base: https://eu.example/v1
      api_key: sk-inline
  - model_name: local-llama
    litellm_params:
      model: ollama_chat/llama3.1
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 2
litellm_settings:
  drop_params: false
  success_callback: ["langfuse"]
general_settings:
  master_key: os.environ/MASTER
  database_url: os.environ/DATABASE_URL
  alerting: ["slack"]
"""


def test_a_litellm_config_loads_with_secrets_resolved_and_unknown_keys_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(LITELLM_CONFIG)
    config = load_config(
        path, {"OPENAI_API_KEY": "sk-real", "MASTER": "sk-master", "DATABASE_URL": "postgresql://db/x"}
    )
    first, second = config.models["gpt-4o"]
    assert (first.deployment.provider, first.deployment.model, first.deployment.api_key) == (
        "openai",
        "gpt-4o",
        "sk-real",
    )
    assert first.deployment.params == {"temperature": 0.2}
    assert (first.deployment.max_retries, config.router.num_retries) == (0, 2)  # retries are the router's
    assert first.deployment.drop_params is False
    assert first.rpm == 60
    assert second.deployment.api_base == "https://eu.example/v1"
    llama = config.models["local-llama"][0].deployment
    assert (llama.provider, llama.model, llama.api_base) == ("ollama_chat", "llama3.1", "http://localhost:11434/v1")
    assert config.master_key == "sk-master"
    assert config.database_url == "postgresql://db/x"
    assert config.ignored == (
        "general_settings.alerting",
        "litellm_settings.success_callback",
        "model_list[0].litellm_params.custom_llm_provider",
        "model_list[0].model_info.id",
    )


def test_a_model_whose_key_variable_is_unset_is_kept_and_marked() -> None:
    raw = {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "anthropic/claude", "api_key": "os.environ/K"}}]
    }
    route = parse_config(raw, {}).models["m"][0]
    assert route.missing_env == ("K",)
    assert route.deployment.api_key is None


def test_environment_variables_section_fills_references_but_the_real_environment_wins() -> None:
    raw = {
        "environment_variables": {"A": "from-file", "B": "from-file"},
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/x", "api_key": "os.environ/A"}},
            {"model_name": "b", "litellm_params": {"model": "openai/x", "api_key": "os.environ/B"}},
        ],
    }
    config = parse_config(raw, {"B": "from-env"})
    assert config.models["a"][0].deployment.api_key == "from-file"
    assert config.models["b"][0].deployment.api_key == "from-env"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ([1, 2], ""),
        ({"model_list": [{"litellm_params": {"model": "openai/x"}}]}, "model_list[0].model_name"),
        (
            {"model_list": [{"model_name": "a", "litellm_params": {"model": "nope/x"}}]},
            "model_list[0].litellm_params.model",
        ),
        (
            {"model_list": [{"model_name": "a", "litellm_params": {"model": "hosted_vllm/x"}}]},
            "model_list[0].litellm_params.api_base",
        ),
        (
            {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x", "max_retries": -1}}]},
            "model_list[0].litellm_params.max_retries",
        ),
        (
            {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x"}, "mcp_servers": ["db"]}]},
            "model_list[0].mcp_servers",
        ),
        ({"general_settings": {"max_request_size_mb": "big"}}, "general_settings.max_request_size_mb"),
        ({"general_settings": {"master_key": "os.environ/UNSET_MASTER"}}, "general_settings.master_key"),
        ({"general_settings": {"database_url": "os.environ/UNSET_DB"}}, "general_settings.database_url"),
        ({"general_settings": {"redis_url": "os.environ/UNSET_REDIS"}}, "general_settings.redis_url"),
    ],
)
def test_invalid_configs_fail_with_the_path_of_the_offending_key(raw: object, path: str) -> None:
    with pytest.raises(ConfigError) as exc_info:
        parse_config(raw, {})
    assert exc_info.value.path == path


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc_info:
        load_config(tmp_path / "absent.yaml")
    assert "cannot read config file" in exc_info.value.message


def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    config = load_config(path, {})
    assert dict(config.models) == {}
    assert config.master_key is None


def test_stream_timeout_applies_to_streams_and_timeout_to_whole_calls() -> None:
    raw = {
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/x", "timeout": 600, "stream_timeout": 5}}
        ]
    }
    deployment = parse_config(raw, {}).models["a"][0].deployment
    assert (deployment.read_timeout(False), deployment.read_timeout(True)) == (600, 5)


def test_database_url_falls_back_to_the_environment() -> None:
    assert parse_config({}, {"DATABASE_URL": "postgresql://db/y"}).database_url == "postgresql://db/y"
    assert parse_config({}, {}).database_url is None


def test_mcp_settings_come_from_general_settings() -> None:
    config = parse_config(
        {"general_settings": {"mcp_tool_separator": "-", "mcp_allowed_hosts": ["hub.example.com"]}}, {}
    )
    assert (config.mcp_tool_separator, config.mcp_allowed_hosts) == ("-", ("hub.example.com",))
    with pytest.raises(ConfigError) as exc_info:
        parse_config({"general_settings": {"mcp_tool_separator": "::"}}, {})
    assert exc_info.value.path == "general_settings.mcp_tool_separator"


@pytest.mark.parametrize(
    ("api_base", "says"),
    [
        ("ollama:8000/v1", "must be an http:// or https:// URL"),
        ("ftp://files.example/v1", "must be an http:// or https:// URL"),
        ("http://127.0.0.1:99999/v1", "not a valid URL"),
        ("https://sk-secret@/v1", "must be an http:// or https:// URL"),
        ("http://api.example/v1\x00", "contains a control character"),
    ],
)
def test_an_api_base_the_client_cannot_call_fails_at_load_without_echoing_it(api_base: str, says: str) -> None:
    model = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k", "api_base": api_base}}
    with pytest.raises(ConfigError) as exc_info:
        parse_config({"model_list": [model]}, {})
    assert exc_info.value.path == "model_list[0].litellm_params.api_base"
    assert says in exc_info.value.message
    assert api_base not in exc_info.value.message


def test_a_usual_api_base_loads() -> None:
    model = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k",
                                                   "api_base": "http://[::1]:8000/v1"}}  # fmt: skip
    assert parse_config({"model_list": [model]}, {}).models["m"][0].deployment.api_base == "http://[::1]:8000/v1"


def test_an_api_base_quoted_with_spaces_around_it_loads_without_them() -> None:
    model = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k",
                                                   "api_base": "http://localhost:11434/v1 "}}  # fmt: skip
    assert parse_config({"model_list": [model]}, {}).models["m"][0].deployment.api_base == "http://localhost:11434/v1"


def model(litellm_params: dict[str, object], **entry: object) -> dict[str, object]:
    return {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", **litellm_params}, **entry}]}


def test_model_info_keys_toolhub_does_not_read_are_named_one_by_one() -> None:
    info = {"id": "abc", "mode": "chat", "tool_loop_trace": "reasoning", "base_model": "gpt-4o", "max_tokens": 9}
    config = parse_config(model({}, model_info=info), {})
    assert config.ignored == ("model_list[0].model_info.id", "model_list[0].model_info.base_model",
                              "model_list[0].model_info.max_tokens")  # fmt: skip
    assert config.models["m"][0].tool_loop_trace == "reasoning"


def test_prices_in_model_info_are_charged_as_litellm_does_and_litellm_params_win() -> None:
    info = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "cache_read_input_token_cost": 1e-7}
    route = parse_config(model({"output_cost_per_token": 3e-6}, model_info=info), {}).models["m"][0]
    assert (route.input_cost_per_token, route.output_cost_per_token, route.cache_read_input_token_cost) == (
        1e-6, 3e-6, 1e-7
    )  # fmt: skip
    assert parse_config(model({}, model_info=info), {}).ignored == ()


@pytest.mark.parametrize("price", ["cheap", -1, float("nan"), True])
def test_a_price_in_model_info_that_is_no_price_fails_at_its_path(price: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(model({}, model_info={"input_cost_per_token": price}), {})
    assert caught.value.path == "model_list[0].model_info.input_cost_per_token"
    assert "a number of dollars, 0 or more" in caught.value.message


def test_a_required_value_from_an_unset_variable_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "os.environ/UNSET_MODEL_X"}}]}, {})
    assert caught.value.path == "model_list[0].litellm_params.model"
    assert caught.value.message == "environment variable UNSET_MODEL_X is not set, and this key needs a value"


@pytest.mark.parametrize("reference", ["os.environ/", "os.environ/  "])
def test_an_environment_reference_without_a_name_is_refused(reference: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(model({"api_key": reference}), {})
    assert caught.value.path == "model_list[0].litellm_params.api_key"
    assert caught.value.message == f"{reference!r} names no environment variable: write os.environ/NAME"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("notaurl", "must be an http:// or https:// URL with a host (for example http://localhost:3000/mcp)"),
        ("ws://127.0.0.1/mcp", "must be an http:// or https:// URL"),
        ("http://127.0.0.1:99999/mcp", "not a valid URL"),
        ("http://[::1/mcp", "not a valid URL"),
    ],
)
def test_an_mcp_url_the_client_cannot_call_fails_at_load(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"mcp_servers": {"a": {"transport": "http", "url": url}}}, {})
    assert caught.value.path == "mcp_servers.a.url"
    assert says in caught.value.message


def test_an_mcp_url_from_an_unset_variable_leaves_the_server_unavailable() -> None:
    config = parse_config({"mcp_servers": {"a": {"transport": "http", "url": "os.environ/UNSET_MCP_URL"}}}, {})
    assert config.mcp_servers["a"].missing_env == ("UNSET_MCP_URL",)
