"""The one error the config loader raises (`hub.config` re-exports it)."""

from __future__ import annotations


class ConfigError(Exception):
    """The config cannot be served; `path` names the offending key, e.g. `model_list[2].litellm_params.model`
    (empty when the file itself cannot be read: the message then names the file, and the line when known)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
