"""TLS for tests: a throwaway PKI, and a Kafka SSL / SASL_SSL listener on loopback.

`make_pki(directory)` writes a CA, a second unrelated CA, a server certificate
for localhost and 127.0.0.1, and a client certificate with its key both plain
and encrypted, all PEM, made with `cryptography`.

`KafkaTlsListener` is what a Kafka broker's SSL or SASL_SSL listener does, in
front of a plaintext broker (tansu 0.6.0 has no TLS listener: its `--cert` and
`--key` flags are parsed and ignored). It terminates TLS with the server
certificate, optionally requires a client certificate signed by a given CA
(mutual TLS), and optionally requires SASL first: it answers SaslHandshake and
SaslAuthenticate itself, PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802,
RFC 7677) against a user table, then pipes the connection to the broker.
It runs its own event loop on a thread, so it can outlive a test's loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import socket
import ssl
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SASL_MECHANISMS", "KafkaTlsListener", "Pki", "issue_server_certificate", "make_pki"]

_PrivateKey = ec.EllipticCurvePrivateKey


# -- certificates ---------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files `make_pki` wrote."""

    ca: Path
    ca_key: Path
    other_ca: Path  # a CA that signed nothing the listeners present
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    key_password: str


def make_pki(directory: Path) -> Pki:
    """Write a CA, a server and a client certificate (and an unrelated CA) to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _self_signed_ca("statement-monitor test CA")
    _, other_cert = _self_signed_ca("an unrelated CA")
    client_key = _new_key()
    client_cert = _issue(
        client_key,
        "statement-monitor client",
        ca_cert,
        ca_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    password = 'k3y-pässword-"quoted"'
    pki = Pki(
        ca=_write(directory / "ca.pem", _cert_pem(ca_cert)),
        ca_key=_write(directory / "ca.key", _key_pem(ca_key)),
        other_ca=_write(directory / "other-ca.pem", _cert_pem(other_cert)),
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=_write(directory / "client.pem", _cert_pem(client_cert)),
        client_key=_write(directory / "client.key", _key_pem(client_key)),
        client_key_encrypted=_write(
            directory / "client.encrypted.key", _key_pem(client_key, password)
        ),
        key_password=password,
    )
    issue_server_certificate(pki, ("localhost", "127.0.0.1"), pki.server_cert, pki.server_key)
    return pki


def issue_server_certificate(
    pki: Pki, names: tuple[str, ...], cert_path: Path, key_path: Path
) -> tuple[Path, Path]:
    """A server certificate from the test CA for `names` (DNS names or IP addresses)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, _PrivateKey)
    key = _new_key()
    cert = _issue(
        key, names[0], ca_cert, ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH, names=names
    )
    return _write(cert_path, _cert_pem(cert)), _write(key_path, _key_pem(key))


def _new_key() -> _PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _self_signed_ca(common_name: str) -> tuple[_PrivateKey, x509.Certificate]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    key: _PrivateKey,
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: _PrivateKey,
    *,
    usage: x509.ObjectIdentifier,
    names: tuple[str, ...] = (),
) -> x509.Certificate:
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: _PrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- the listener -----------------------------------------------------------------

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

_API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 18, 17, 36
_UNSUPPORTED_SASL_MECHANISM, _SASL_AUTHENTICATION_FAILED = 33, 58


class KafkaTlsListener:
    """A Kafka SSL or SASL_SSL listener on 127.0.0.1 in front of a plaintext broker.

    `port` is known once constructed, so the broker can advertise it before it
    starts. `users` (name → password) turns SASL on; `client_cafile` requires
    a client certificate signed by that CA.
    """

    def __init__(
        self,
        *,
        certfile: Path,
        keyfile: Path,
        client_cafile: Path | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.upstream_port = 0
        self._context = _server_context(certfile, keyfile, client_cafile)
        self._users = dict(users) if users is not None else None
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, upstream_port: int) -> None:
        """Listen, and pipe each accepted connection to 127.0.0.1:`upstream_port`."""
        self.upstream_port = upstream_port
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, sock=self._socket)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        connections = asyncio.all_tasks() - {asyncio.current_task()}
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _TlsStream(reader, writer, self._context)
        try:
            async with asyncio.timeout(5):
                if not await client.handshake():
                    return
            broker = _Stream(*await asyncio.open_connection("127.0.0.1", self.upstream_port))
            try:
                if self._users is None or await _SaslGate(self._users).admit(client, broker):
                    await asyncio.gather(_pipe(client, broker), _pipe(broker, client))
            finally:
                broker.close()
        except (OSError, EOFError, TimeoutError):
            pass  # either side went away: so does the connection
        finally:
            client.close()


def _server_context(certfile: Path, keyfile: Path, client_cafile: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    if client_cafile is not None:
        context.load_verify_locations(cafile=client_cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Stream:
    """One side of a piped connection, plain TCP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()

    async def read(self) -> bytes:
        """The next bytes, b"" at the end."""
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            return data
        return await self._read()

    async def readexactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            data = await self._read()
            if not data:
                raise asyncio.IncompleteReadError(bytes(self._buffer), size)
            self._buffer += data
        data, self._buffer = bytes(self._buffer[:size]), self._buffer[size:]
        return data

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()

    async def _read(self) -> bytes:
        return await self._reader.read(65536)


class _TlsStream(_Stream):
    """The client side: TLS done by hand over memory buffers.

    asyncio's own TLS server drops the alert of a refused handshake (no client
    certificate, an unknown CA); a broker sends it, and clients report it.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> None:
        super().__init__(reader, writer)
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def handshake(self) -> bool:
        """True once TLS is up; False, after sending the alert, when it was refused."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._receive():
                    return False
                continue
            except ssl.SSLError:
                await self._flush()  # the alert that says why
                return False
            await self._flush()
            return True

    async def write(self, data: bytes) -> None:
        self._tls.write(data)
        await self._flush()

    async def _read(self) -> bytes:
        while True:
            try:
                data = self._tls.read(65536)
            except ssl.SSLWantReadError:
                if not await self._receive():
                    return b""
                continue
            except ssl.SSLZeroReturnError:
                return b""
            await self._flush()  # TLS 1.3 may answer a key update
            return data

    async def _receive(self) -> bool:
        data = await self._reader.read(65536)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def _flush(self) -> None:
        if pending := self._outgoing.read():
            self._writer.write(pending)
            await self._writer.drain()


async def _pipe(source: _Stream, target: _Stream) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read():
            await target.write(data)
    target.close()  # one side is done: so is the connection


# -- SASL -------------------------------------------------------------------------


class _SaslFailed(Exception):
    """The client's credentials were refused."""


class _SaslGate:
    """The SASL exchange a broker runs before any other request but ApiVersions."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self._session: _PlainSession | _ScramSession | None = None

    async def admit(self, client: _Stream, broker: _Stream) -> bool:
        """True once the client authenticated; False when it failed or skipped SASL."""
        while True:
            frame = await _read_frame(client)
            api_key, version, correlation_id = struct.unpack_from(">hhi", frame)
            body = _body_offset(frame)
            if api_key == _API_VERSIONS:  # the broker's own answer, as a real listener gives
                await broker.write(_framed(frame))
                await client.write(_framed(await _read_frame(broker)))
            elif api_key == _SASL_HANDSHAKE:
                mechanism, _ = _read_string(frame, body)
                await client.write(_response(correlation_id, self._handshake(mechanism)))
            elif api_key == _SASL_AUTHENTICATE and self._session is not None:
                token = _read_bytes(frame, body)
                reply, done = self._authenticate(token, version)
                await client.write(_response(correlation_id, reply))
                if done is not None:
                    return done
            else:
                return False  # a broker closes a connection that skips authentication

    def _handshake(self, mechanism: str) -> bytes:
        if mechanism == "PLAIN":
            self._session = _PlainSession(self._users)
        elif mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            self._session = _ScramSession(self._users, mechanism)
        error = 0 if self._session is not None else _UNSUPPORTED_SASL_MECHANISM
        names = b"".join(_string(m) for m in SASL_MECHANISMS)
        return struct.pack(">hi", error, len(SASL_MECHANISMS)) + names

    def _authenticate(self, token: bytes, version: int) -> tuple[bytes, bool | None]:
        """The SaslAuthenticate response, and True/False when the exchange is over."""
        assert self._session is not None
        lifetime = struct.pack(">q", 0) if version >= 1 else b""
        try:
            reply, finished = self._session.step(token)
        except _SaslFailed as exc:
            body = struct.pack(">h", _SASL_AUTHENTICATION_FAILED) + _string(str(exc))
            return body + _bytes(b"") + lifetime, False
        return struct.pack(">hh", 0, -1) + _bytes(reply) + lifetime, (True if finished else None)


class _PlainSession:
    """RFC 4616: one message, `authzid NUL authcid NUL password`."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users

    def step(self, token: bytes) -> tuple[bytes, bool]:
        try:
            _authzid, user, password = token.decode().split("\0")
        except ValueError:
            raise _SaslFailed("malformed PLAIN message") from None
        expected = self._users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise _SaslFailed("Authentication failed: invalid username or password")
        return b"", True


class _ScramSession:
    """The server side of RFC 5802 SCRAM without channel binding, as Kafka runs it."""

    ITERATIONS = 4096

    def __init__(self, users: Mapping[str, str], mechanism: str) -> None:
        self._users = users
        self._hash = "sha256" if mechanism == "SCRAM-SHA-256" else "sha512"
        self._salt = os.urandom(16)
        self._first_bare = self._server_first = self._nonce = ""
        self._stored_key = self._server_key = b""

    def step(self, token: bytes) -> tuple[bytes, bool]:
        if not self._server_first:
            return self._first(token.decode()).encode(), False
        return self._final(token.decode()).encode(), True

    def _first(self, client_first: str) -> str:
        gs2, _, self._first_bare = client_first.partition(",,")  # "n,," then "n=user,r=nonce"
        attributes = _scram_attributes(self._first_bare)
        user = attributes.get("n", "").replace("=2C", ",").replace("=3D", "=")
        password = self._users.get(user)
        if gs2 not in ("n", "y") or password is None or "r" not in attributes:
            raise _SaslFailed("Authentication failed: invalid username or password")
        salted = hashlib.pbkdf2_hmac(self._hash, password.encode(), self._salt, self.ITERATIONS)
        client_key = self._hmac(salted, b"Client Key")
        self._stored_key = hashlib.new(self._hash, client_key).digest()
        self._server_key = self._hmac(salted, b"Server Key")
        self._nonce = attributes["r"] + base64.b64encode(os.urandom(18)).decode()
        salt = base64.b64encode(self._salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={self.ITERATIONS}"
        return self._server_first

    def _final(self, client_final: str) -> str:
        without_proof, _, proof = client_final.rpartition(",p=")
        if _scram_attributes(without_proof).get("r") != self._nonce:
            raise _SaslFailed("Authentication failed: nonce mismatch")
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        signature = self._hmac(self._stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=False))
        if not hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), self._stored_key):
            raise _SaslFailed("Authentication failed: invalid username or password")
        verifier = base64.b64encode(self._hmac(self._server_key, auth_message)).decode()
        return f"v={verifier}"

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()


def _scram_attributes(message: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in message.split(",") if "=" in part)


# -- Kafka framing (request header v1, non-flexible bodies) ------------------------


async def _read_frame(stream: _Stream) -> bytes:
    (size,) = struct.unpack(">i", await stream.readexactly(4))
    return await stream.readexactly(size)


def _framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _response(correlation_id: int, body: bytes) -> bytes:
    return _framed(struct.pack(">i", correlation_id) + body)


def _body_offset(frame: bytes) -> int:
    client_id_length: int = struct.unpack_from(">h", frame, 8)[0]
    return 10 + max(client_id_length, 0)


def _read_string(frame: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">h", frame, offset)
    start = offset + 2
    return frame[start : start + length].decode(), start + length


def _read_bytes(frame: bytes, offset: int) -> bytes:
    (length,) = struct.unpack_from(">i", frame, offset)
    return frame[offset + 4 : offset + 4 + max(length, 0)]


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _bytes(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data
