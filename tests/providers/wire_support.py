"""A scripted HTTP/1.1 upstream on a loopback socket for the `providers._wire` tests: each connection is served by
a handler the test writes, which reads requests with `read_request` and writes raw answer bytes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from providers._wire import Pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    head: bytes
    body: bytes

    def field(self, name: str) -> str | None:
        """The value of a header field of the request (case-insensitive name)."""
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.decode().lower() == name.lower():
                return value.strip().decode()
        return None


@dataclass
class Upstream:
    url: str
    connections: int = 0
    requests: list[Request] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    request = Request(head, b"")
    length = request.field("content-length")
    if length:
        request.body = await reader.readexactly(int(length))
    return request


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A handler that reads the request and then nothing more is sent: it waits until the client gives up."""
    await read_request(reader)
    await reader.read()


def answer(body: bytes, *fields: str, status: str = "200 OK") -> bytes:
    """A whole answer with a content-length, plus header `fields` ("Name: value")."""
    head = "".join(f"{f}\r\n" for f in (f"Content-Length: {len(body)}", *fields))
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


@contextlib.asynccontextmanager
async def upstream(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    """Serve `handler` on 127.0.0.1 (over TLS with `tls`); counts connections. Handlers end when the test does."""
    served = Upstream("")
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away first
        except asyncio.CancelledError:
            pass  # the test is over (a cancelled handler task would be logged as an error by asyncio's streams)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    served.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield served
    finally:
        for task in tasks:
            task.cancel()
        server.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def keep_answering(*answers: bytes, record: Upstream | None = None) -> Handler:
    """A handler answering the requests of a connection with `answers` in turn, the last one for every later one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while True:
            request = await read_request(reader)
            if record is not None:
                record.requests.append(request)
            writer.write(answers[min(n, len(answers) - 1)])
            await writer.drain()
            n += 1

    return handler


@contextlib.asynccontextmanager
async def unaccepting() -> AsyncIterator[int]:
    """A loopback port whose listener never accepts and whose backlog is full: a connect there waits (the kernel
    drops the SYN), as towards a blackholed address."""
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    queued: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(2):  # the first fills the backlog; the second makes sure it is full
            sock = socket.socket()
            sock.setblocking(False)
            queued.append(sock)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 0.2)
        yield port
    finally:
        for sock in queued:
            sock.close()
        listener.close()


@dataclass
class Certificates:
    server: ssl.SSLContext
    ca_pem: str


def certificates(tmp: Path, *, names: tuple[str, ...] = ("127.0.0.1",)) -> Certificates:
    """A test CA and a server certificate it signed for `names` (IP addresses or DNS names)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "toolhub test CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
    leaf = (
        _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]), ca_name, key.public_key(), now)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp / "leaf.pem").write_bytes(
        leaf.public_bytes(pem) + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "leaf.pem")
    return Certificates(server, ca.public_bytes(pem).decode())


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)  # fmt: skip


async def fetch(pool: Pool, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """(status, whole body) of a POST of `body` to `url` through `pool` (a GET when `body` is None)."""
    response = await pool.request("POST" if body is not None else "GET", url, {}, body, total=5)
    try:
        return response.status, await response.read()
    finally:
        response.close()
