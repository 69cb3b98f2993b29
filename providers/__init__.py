"""LLM provider adapters: one module per upstream wire API behind `providers.base.Provider`."""
