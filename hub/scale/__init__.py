"""Scaling out: the crash journal of usage records, `toolhub serve --workers N` and its supervisor."""
