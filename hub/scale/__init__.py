"""Scaling out: the crash journal of usage records (`journal`), `toolhub serve --workers N` and its supervisor
(`supervisor`), and the garbage-collector settings of a serving process (`tuned`). deploy/README.md tells the whole."""
