"""Built-in MCP tool servers; each subpackage runs standalone with `python -m tools.<name>`."""
