"""Large tool catalogs and large tool results (issue 19).

- `hub.catalog.text`: tokens for search (snake/camel case split, light stemming, a few synonyms).
- `hub.catalog.index`: `ToolIndex`, a BM25F index over tool names, descriptions and arguments, updated in place.
- `hub.catalog.meta`: the meta-tools (`hub__search_tools`, ...) as stable MCP and OpenAI definitions, and `exposure()`.
- `hub.catalog.dispatch`: `handle_meta_call`, shared by the MCP server, REST and the tool loop.
- `hub.catalog.results`: result handles, stored tool results read back in parts or by grep.
"""
