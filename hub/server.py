"""Assembles the full server: the gateway app plus the layers that plug into its lifespan."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from hub.accounts import keys_api, spend_api
from hub.accounts.accounting import accounting_extension
from hub.api import embeddings
from hub.api.messages.endpoint import ROUTES as MESSAGES_ROUTES
from hub.api.responses.endpoint import ROUTES as RESPONSES_ROUTES
from hub.api.responses.retention import responses_retention
from hub.app import Extension, create_app
from hub.catalog.service import CatalogSettings, catalog_extension
from hub.config import Config
from hub.mcp.http import mcp_extension, mcp_routes
from hub.metrics import metrics_endpoint, metrics_sync
from hub.shared.kinds import shared_extension
from hub.ui import ROUTES as UI_ROUTES, ui_extension


def build_app(config: Config) -> Starlette:
    """The app `toolhub serve` runs."""
    extensions: list[Extension] = []
    routes: list[BaseRoute] = []
    # Keys, budgets, rate limits, usage storage, metrics; first, so later layers see its auth and usage sink.
    extensions.append(accounting_extension())
    extensions.append(ui_extension())  # folds new spend logs into the console's rollup (hub/storage/rollup.py)
    routes += [*keys_api.ROUTES, *spend_api.ROUTES, Route("/metrics", metrics_endpoint, methods=["GET"])]
    extensions.append(metrics_sync())  # under --workers: this worker's records into the shared metrics files
    extensions.append(shared_extension())  # with redis_url: conversation state other replicas can continue
    extensions.append(mcp_extension())  # MCP hub: upstream sessions, /mcp, /mcp/<server>, /sse, /mcp/tools/*
    extensions.append(catalog_extension(_catalog_settings))  # tool search and result handles (after hub and store)
    routes += mcp_routes()
    routes += MESSAGES_ROUTES  # /v1/messages: the Anthropic Messages API over the chat pipeline (hub/api/)
    routes += embeddings.ROUTES  # /v1/embeddings for openai/, compatible and gemini/ deployments
    extensions.append(responses_retention)  # deletes stored responses older than responses_retention_period
    routes += RESPONSES_ROUTES  # /v1/responses: the OpenAI Responses API over the chat pipeline (hub/api/)
    routes += UI_ROUTES  # the admin console, /ui: pages over the same API
    return create_app(config, extensions=extensions, routes=routes)


def _catalog_settings(config: Config) -> CatalogSettings:
    return CatalogSettings(config.tool_exposure, config.tool_exposure_threshold, config.always_expose,
                           config.max_tool_result_chars, config.tool_result_ttl_seconds)  # fmt: skip
