"""The loopback helpers hand out ports that no other process can take: held sockets, not `free_port()` guesses."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx2
import pytest

from tests.support.servers import (
    announced_port,
    inherited_socket,
    refused_port,
    refusing_port,
    stop,
    wait_until_serving,
)

CHILD_HTTP = """
import http.server, socket, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"child")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket = socket.socket(fileno=int(sys.argv[1]))
server.serve_forever()
"""


def test_a_refused_port_refuses_connections_while_held() -> None:
    with refused_port() as port, pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_no_other_socket_can_bind_a_refused_port_while_held() -> None:
    with refused_port() as port, socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            intruder.bind(("127.0.0.1", port))


def test_the_refusing_port_refuses_connections_for_the_whole_run() -> None:
    assert refusing_port() == refusing_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", refusing_port()), timeout=2)


def test_a_child_serves_on_the_inherited_socket_it_was_handed() -> None:
    with inherited_socket() as (sock, port):
        proc = subprocess.Popen([sys.executable, "-c", CHILD_HTTP, str(sock.fileno())], pass_fds=(sock.fileno(),),
                                stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", proc)
        answer = httpx2.get(f"http://127.0.0.1:{port}/")
    finally:
        stop(proc)
    assert answer.text == "child"


def test_rebinding_a_port_another_process_took_raises_instead_of_sharing_it() -> None:
    with inherited_socket() as (_sock, port), pytest.raises(OSError), inherited_socket(port):
        pass


def test_a_child_that_binds_port_0_itself_announces_its_port() -> None:
    announce = (
        "import sys; sys.stderr.write('noise\\nINFO:     Uvicorn running on http://127.0.0.1:43210 (Press CTRL+C)\\n')"
    )
    proc = subprocess.Popen([sys.executable, "-c", announce], stderr=subprocess.PIPE)
    try:
        assert announced_port(proc) == 43210
    finally:
        stop(proc)


def test_a_child_that_exits_without_announcing_a_port_is_an_error() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stderr.write('address in use\\n')"],
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        with pytest.raises(RuntimeError) as failed:
            announced_port(proc, timeout=10)
    finally:
        stop(proc)
    assert "address in use" in str(failed.value)
