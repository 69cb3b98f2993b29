"""The address each worker of `serve --workers N` advertises (hub/scale/supervisor.py `worker_listener`, checked by
hub/cli.py before any worker starts): never 0.0.0.0 or `::`, and a loopback one in Redis is warned about."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import pytest
import yaml

from hub.cli import _check_replica_url  # pyright: ignore[reportPrivateUsage]
from hub.config import Config, ConfigError, load_config
from hub.scale.supervisor import UnspecifiedAddress, worker_listener
from tests.scale.support import MASTER


def _config(tmp_path: Path, replica_url: str, *, redis: bool = True) -> Config:
    general = {"master_key": MASTER, "database_url": f"sqlite:///{tmp_path}/t.db", "replica_url": replica_url}
    if redis:
        general["redis_url"] = "redis://127.0.0.1:6379/0"  # not dialled: the check only reads the config
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"general_settings": general}))
    return load_config(path)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("url", ["http://0.0.0.0:4000", "http://[::]:4000"])
def test_an_unspecified_address_is_neither_bound_nor_advertised(url: str) -> None:
    """Before: bound on every interface, and 0.0.0.0 advertised in Redis, where other replicas dialled themselves."""
    if "::" in url and not _has_ipv6_loopback():
        pytest.skip("no IPv6 on this machine")
    with pytest.raises(UnspecifiedAddress):
        sock, _ = worker_listener(url)
        sock.close()


@pytest.mark.parametrize("url", ["http://0.0.0.0:4000", "http://[::]:4000"])
def test_serve_workers_refuses_an_unspecified_replica_url_with_a_config_error(tmp_path: Path, url: str) -> None:
    if "::" in url and not _has_ipv6_loopback():
        pytest.skip("no IPv6 on this machine")
    with pytest.raises(ConfigError) as refused:
        _check_replica_url(_config(tmp_path, url))
    assert refused.value.path == "general_settings.replica_url"
    assert "unspecified address" in str(refused.value)


def test_a_loopback_replica_url_in_redis_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`localhost` resolves to 127.0.0.1, which replicas on other machines would dial as themselves."""
    with caplog.at_level(logging.WARNING, logger="toolhub"):
        _check_replica_url(_config(tmp_path, "http://localhost:4000"))
    assert any("loopback" in record.getMessage() for record in caplog.records)


def test_a_loopback_replica_url_without_redis_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="toolhub"):
        _check_replica_url(_config(tmp_path, "http://127.0.0.1:4000", redis=False))
    mine = [r for r in caplog.records if r.thread == threading.get_ident()]  # not session fixtures' hubs' records
    assert not [record for record in mine if record.levelno >= logging.WARNING]
