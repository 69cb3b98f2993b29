"""One gateway over the OpenAI, Anthropic and Gemini fakes on loopback, for the inbound-API tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e import gemini_support
from tests.e2e.anthropic_conftest import anthropic_config
from tests.e2e.conftest import gateway_config as openai_config
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY, FakeAnthropic
from tests.fakes.gemini_upstream import API_KEY as GEMINI_KEY, FakeGemini
from tests.fakes.openai_upstream import API_KEY as OPENAI_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-responses-test"


class Fakes:
    """The three fake upstreams, each with the bodies it received."""

    def __init__(self) -> None:
        self.openai = FakeOpenAI()
        self.anthropic = FakeAnthropic()
        self.gemini = FakeGemini()


def combined_config(openai_url: str, anthropic_url: str, gemini_url: str, database: str) -> dict[str, Any]:
    models = [
        *openai_config(openai_url)["model_list"],
        *anthropic_config(anthropic_url)["model_list"],
        *gemini_support.gateway_config(gemini_url)["model_list"],
    ]
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY, "database_url": database}}


@pytest.fixture(scope="module")
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture(scope="module")
def gateway_url(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = f"sqlite:///{tmp_path_factory.mktemp('responses') / 'toolhub.db'}"
    env = {"FAKE_OPENAI_KEY": OPENAI_KEY, "FAKE_ANTHROPIC_KEY": ANTHROPIC_KEY, "FAKE_GEMINI_KEY": GEMINI_KEY}
    with serve_app(fakes.openai.app) as o, serve_app(fakes.anthropic.app) as a, serve_app(fakes.gemini.app) as g:
        with serve_app(build_app(parse_config(combined_config(o, a, g, database), env))) as url:
            yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c
