"""The router: deployment selection, retries, cooldowns, fallbacks and deployment health (LiteLLM semantics)."""
