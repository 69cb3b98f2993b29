"""Response caching: keys, a local LRU or Redis store, per-request controls, in-flight collapsing, SSE replay."""
