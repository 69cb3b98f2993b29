"""The MCP hub: supervised upstream sessions aggregated into one catalog, served over HTTP, SSE and stdio."""
