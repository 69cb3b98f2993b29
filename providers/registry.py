"""Which `litellm_params.model` prefixes the gateway serves, and how to build each provider.

Provider modules are imported lazily so that a broken or slow import in one never costs the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from providers._http import HttpPool
from providers.base import Provider


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """How to reach one kind of upstream."""

    module: str
    cls: str
    default_api_base: str | None
    """None: the config must give `api_base`."""
    key_env: str | None = None
    """The environment variable conventionally holding its key, named in error messages."""


_OPENAI = ("providers.openai", "OpenAIProvider")

PROVIDERS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec(*_OPENAI, "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "hosted_vllm": ProviderSpec(*_OPENAI, None),
    "vllm": ProviderSpec(*_OPENAI, None),
    "ollama": ProviderSpec(*_OPENAI, "http://localhost:11434/v1"),
    "ollama_chat": ProviderSpec(*_OPENAI, "http://localhost:11434/v1"),
    "openai_compatible": ProviderSpec(*_OPENAI, None),
    "anthropic": ProviderSpec(
        "providers.anthropic", "AnthropicProvider", "https://api.anthropic.com", "ANTHROPIC_API_KEY"
    ),
    "gemini": ProviderSpec(
        "providers.gemini", "GeminiProvider", "https://generativelanguage.googleapis.com", "GEMINI_API_KEY"
    ),
}


def split_model(model: str) -> tuple[str, str]:
    """`"anthropic/claude-x"` -> `("anthropic", "claude-x")`; a bare name is an OpenAI model, as in LiteLLM."""
    prefix, sep, name = model.partition("/")
    if not sep:
        return "openai", model
    return prefix, name


def build_provider(kind: str, pool: HttpPool) -> Provider:
    """Instantiate the provider class serving `kind` (a key of `PROVIDERS`).

    Raises:
        KeyError: unknown kind.
        ImportError: the provider module or class is not available.
    """
    spec = PROVIDERS[kind]
    module = importlib.import_module(spec.module)
    cls = getattr(module, spec.cls, None)
    if cls is None:
        raise ImportError(f"{spec.module} has no {spec.cls}")
    return cls(pool)


def provider_family(kind: str) -> str:
    """The provider class key shared by aliases: all OpenAI-compatible kinds share one provider instance."""
    spec = PROVIDERS[kind]
    return f"{spec.module}:{spec.cls}"
