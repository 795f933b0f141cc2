"""TLS as a stream layer over any inner stream (a socket, a WebSocket, compression,
TLS itself): the contexts canopy uses, a sans-I/O core over ``ssl.SSLObject``, and
thin blocking and asyncio drivers that move its bytes to and from the inner stream.

Theory of operation. ``TlsConnection`` holds the protocol: it is fed ciphertext
(``receive_data``), drained of ciphertext (``data_to_send``) and asked for
plaintext (``read``); it never touches a stream, a thread or a clock. The drivers:

* ``TlsStream`` guards the core with ``_lock``, which is held only while the core
  runs, never while waiting on the inner stream, so a thread may send while
  another is blocked receiving. Ciphertext leaves in the order the core produced
  it because only the holder of ``_send_lock`` drains and sends it; a thread that
  finds that lock taken leaves its output queued, and whoever releases the lock
  looks again before going.
* ``AsyncTlsStream`` needs no core lock (one thread); an ``asyncio.Lock`` keeps
  the ciphertext in order the same way.

End of stream: ``receive`` gives ``b""`` once the peer's close_notify arrives or
the inner stream ends. An inner stream ending without close_notify (a truncation)
also counts as the end: canopy's framing above notices a message cut short, and
many peers close without it. ``close`` queues close_notify and sends it if no send
is in progress, for at most ``CLOSE_NOTIFY_TIMEOUT`` seconds, then closes the
inner stream; it never raises.

Timeouts: ``Stream`` has none, so a blocking handshake is bounded by a timer that
closes the inner stream (which wakes a blocked ``receive``); asyncio uses
``asyncio.timeout``. Either way a handshake that fails or times out closes the
inner stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import ssl
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from canopy.streams._base import RECEIVE_SIZE, AsyncStream, Deadline, Stream

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a handshake may take by default."""

CLOSE_NOTIFY_TIMEOUT = 0.5
"""Seconds ``close`` waits to hand close_notify to the inner stream before closing it
regardless: the peer may have stopped reading."""

SEND_CHUNK = 64 * 1024
"""Plaintext encrypted per step of a ``send``: a large send is written out as it is
encrypted, not held whole as ciphertext first."""

Buffer = bytes | bytearray | memoryview
PathLike = str | os.PathLike[str]
_E = TypeVar("_E", bound=BaseException)


def client_context(
    *,
    cafile: PathLike | None = None,
    cadata: str | bytes | None = None,
    certfile: PathLike | None = None,
    keyfile: PathLike | None = None,
) -> ssl.SSLContext:
    """A context for connecting: it verifies the server's certificate and host name,
    against ``cafile``/``cadata`` (PEM) if given, else the system's trusted CAs.
    ``certfile`` (and ``keyfile``, unless the key is in ``certfile``) is this
    client's own certificate, for servers that require one. TLS 1.2 or later."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile, cadata=cadata)
    except (OSError, ValueError) as e:
        source = f"cafile={os.fspath(cafile)!r}" if cafile is not None else "cadata="
        raise _reworded(
            e, f"client_context: cannot load the CA certificates from {source}: {_what(e)}"
        ) from e
    _harden(context)
    if certfile is not None:
        _load_chain(context, certfile, keyfile, "client_context")
    elif keyfile is not None:
        raise ValueError("client_context: keyfile= needs certfile=, the certificate it is for")
    return context


def server_context(
    certfile: PathLike,
    keyfile: PathLike | None = None,
    *,
    client_cafile: PathLike | None = None,
    client_cadata: str | bytes | None = None,
) -> ssl.SSLContext:
    """A context for serving with ``certfile`` (the certificate chain, PEM) and
    ``keyfile`` (its key, unless it is in ``certfile``). With ``client_cafile`` or
    ``client_cadata``, every client must present a certificate that CA issued
    (mutual TLS); its identity shows in the stream's ``info["tls"]``. TLS 1.2 or
    later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context)
    # No session tickets: nothing here resumes sessions, and a ticket is a record a
    # client that never reads leaves unread, so closing its socket resets the
    # connection instead of ending it.
    context.num_tickets = 0
    _load_chain(context, certfile, keyfile, "server_context")
    if client_cafile is not None or client_cadata is not None:
        try:
            context.load_verify_locations(cafile=client_cafile, cadata=client_cadata)
        except (OSError, ValueError) as e:
            source = (
                f"client_cafile={os.fspath(client_cafile)!r}"
                if client_cafile is not None
                else "client_cadata="
            )
            raise _reworded(
                e,
                f"server_context: cannot load the client CA certificates from {source}: {_what(e)}",
            ) from e
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def wrap_client(
    stream: Stream,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
    timeout: float | None = HANDSHAKE_TIMEOUT,
) -> TlsStream:
    """``stream`` with TLS over it, as the client; the handshake is done on return.
    ``server_hostname`` is the name the server's certificate must be for (and the
    SNI sent). On failure or after ``timeout`` seconds the stream is closed."""
    try:
        tls = TlsStream(stream, TlsConnection(context, server_hostname=server_hostname))
    except BaseException:
        stream.close()
        raise
    tls._handshake(timeout)
    return tls


def wrap_server(
    stream: Stream, context: ssl.SSLContext, *, timeout: float | None = HANDSHAKE_TIMEOUT
) -> TlsStream:
    """``stream`` with TLS over it, as the server; the handshake is done on return.
    On failure or after ``timeout`` seconds the stream is closed."""
    try:
        tls = TlsStream(stream, TlsConnection(context, server_side=True))
    except BaseException:
        stream.close()
        raise
    tls._handshake(timeout)
    return tls


async def awrap_client(
    stream: AsyncStream,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
    timeout: float | None = HANDSHAKE_TIMEOUT,
) -> AsyncTlsStream:
    """``wrap_client`` for asyncio streams."""
    try:
        tls = AsyncTlsStream(stream, TlsConnection(context, server_hostname=server_hostname))
    except BaseException:
        await stream.close()
        raise
    await tls._handshake(timeout)
    return tls


async def awrap_server(
    stream: AsyncStream, context: ssl.SSLContext, *, timeout: float | None = HANDSHAKE_TIMEOUT
) -> AsyncTlsStream:
    """``wrap_server`` for asyncio streams."""
    try:
        tls = AsyncTlsStream(stream, TlsConnection(context, server_side=True))
    except BaseException:
        await stream.close()
        raise
    await tls._handshake(timeout)
    return tls


class TlsConnection:
    """The TLS protocol for one connection, without I/O: ``ssl.SSLObject`` over two
    memory buffers. Feed it what arrives from the peer, send the peer what
    ``data_to_send`` returns after every call, and read plaintext from ``read``.
    Not thread-safe."""

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
    ) -> None:
        if not server_side and server_hostname is None and context.check_hostname:
            raise ValueError(
                "a TLS client that verifies host names needs server_hostname=, the name "
                "the server's certificate is for (or a context with check_hostname=False)"
            )
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=None if server_side else server_hostname,
        )
        self.server_side = server_side
        self._hostname = server_hostname
        self._pending_error: ssl.SSLError | None = None
        self.handshake_done = False
        self.ended = False
        """The peer's data has ended: ``read`` gives ``b""`` from now on."""
        self.close_notify_received = False
        """The end was the peer's close_notify, not the inner stream ending."""
        self._close_notify_sent = False

    def receive_data(self, data: bytes) -> None:
        """Ciphertext from the peer; ``b""`` when the inner stream has ended."""
        if self._incoming.eof:
            return
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def data_to_send(self) -> bytes:
        """The ciphertext to send to the peer now (often ``b""``)."""
        return self._outgoing.read()

    @property
    def wants_to_send(self) -> bool:
        return self._outgoing.pending > 0

    def do_handshake(self) -> bool:
        """Advance the handshake with what was fed; ``True`` once it is complete.
        Send ``data_to_send`` whatever the answer."""
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as e:
            raise self._explain(e) from e
        self.handshake_done = True
        return True

    def read(self, max_bytes: int = RECEIVE_SIZE) -> bytes | None:
        """Up to ``max_bytes`` of plaintext; ``b""`` at end of stream; ``None`` when
        more ciphertext must be fed first (also after records that carry no data,
        such as TLS 1.3 session tickets)."""
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        if self.ended:
            return b""
        parts: list[bytes] = []
        size = 0
        while size < max_bytes:
            try:
                part = self._ssl.read(max_bytes - size)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.ended = self.close_notify_received = True
                break
            except ssl.SSLEOFError:
                self.ended = True  # truncated: see the module's notes on end of stream
                break
            except ssl.SSLError as e:
                failure = self._explain(e)
                if not parts:
                    raise failure from e
                self._pending_error = failure  # after the plaintext that came before it
                break
            if not part:  # how SSLObject reports close_notify, usually
                self.ended = self.close_notify_received = True
                break
            parts.append(part)
            size += len(part)
        if parts:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        return b"" if self.ended else None

    def write(self, data: Buffer) -> None:
        """Encrypt ``data``; its ciphertext is then in ``data_to_send``."""
        view = memoryview(data).cast("B")
        while view:
            try:
                written = self._ssl.write(view)
            except ssl.SSLWantReadError:
                raise ssl.SSLError(
                    ssl.SSL_ERROR_WANT_READ,
                    "the TLS peer asked for a renegotiation, which canopy does not support",
                ) from None
            except ssl.SSLError as e:
                raise self._explain(e) from e
            view = view[written:]

    def close_notify(self) -> None:
        """Queue close_notify, which tells the peer no more data follows; once only,
        and never an error: the connection is going away regardless."""
        if not self.handshake_done or self._close_notify_sent:
            return
        self._close_notify_sent = True
        # unwrap() queues close_notify, then wants the peer's in return (SSLWantReadError),
        # which nothing here waits for.
        with contextlib.suppress(ssl.SSLError):
            self._ssl.unwrap()

    def describe(self) -> dict[str, Any]:
        """``info["tls"]``: the version and cipher agreed, the peer's certificate as
        ``getpeercert()`` gives it and the identity it names; both ``None`` when the
        peer sent no certificate or it was not verified (an unverified name proves
        nothing)."""
        cipher = self._ssl.cipher()
        certificate = self._ssl.getpeercert() or None
        return {
            "version": self._ssl.version(),
            "cipher": cipher[0] if cipher is not None else None,
            "peer_certificate": certificate,
            "peer_identity": peer_identity(certificate),
        }

    def _explain(self, error: ssl.SSLError) -> ssl.SSLError:
        """``error`` reworded to say what failed and what to change."""
        stage = "stream" if self.handshake_done else "handshake"
        peer = "the client" if self.server_side else "the server"
        if isinstance(error, ssl.SSLCertVerificationError):
            detail = f"certificate verify failed: {error.verify_message.rstrip('.')}"
            advice = self._verify_advice(error.verify_code)
        else:
            detail = str(error.reason or error).replace("_", " ").lower()
            advice = self._alert_advice(error)
        message = f"TLS {stage} with {peer} failed: {detail}"
        if advice:
            message += f"; {advice}"
        return _reworded(error, message)

    def _verify_advice(self, code: int) -> str:
        if self.server_side:
            return {
                18: "the client's certificate is self-signed: issue it from the CA given "
                "as client_cafile=",
                19: "the client's certificate was not issued by the CA given as client_cafile=",
                20: "the client's certificate was not issued by the CA given as client_cafile=",
                21: "the client's certificate was not issued by the CA given as client_cafile=",
                10: "the client's certificate has expired (or this host's clock is wrong)",
                9: "the client's certificate is not valid yet (or this host's clock is wrong)",
            }.get(code, "")
        trust = (
            "trust the CA that issued it: client_context(cafile=<the CA's PEM file>) "
            "or client_context(cadata=<PEM text>)"
        )
        return {
            62: f"the certificate is not for {self._hostname!r}: connect with a host name it "
            "is for, or pass server_hostname= with one",
            64: f"the certificate is not for the address {self._hostname!r}: connect with a "
            "name or address it is for, or pass server_hostname= with one",
            18: f"the server's certificate is self-signed: {trust}",
            19: f"the server's certificate was not issued by a trusted CA: {trust}",
            20: f"the server's certificate was not issued by a trusted CA: {trust}",
            21: f"the server's certificate was not issued by a trusted CA: {trust}",
            10: "the server's certificate has expired (or this host's clock is wrong)",
            9: "the server's certificate is not valid yet (or this host's clock is wrong)",
        }.get(code, "")

    def _alert_advice(self, error: ssl.SSLError) -> str:
        reason = error.reason or ""
        if isinstance(error, ssl.SSLEOFError):
            return (
                "the peer closed the connection: it may not speak TLS, or it refused this "
                "side's certificate or TLS version"
            )
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return (
                "this server requires a client certificate (server_context(client_cafile=)); "
                "the client must pass client_context(certfile=, keyfile=)"
            )
        if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
            return (
                "the server requires a client certificate: pass client_context(certfile=, "
                "keyfile=) with one issued by the CA it trusts"
            )
        if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE" and not self.server_side:
            return (
                "the server refused the handshake: if it requires a client certificate, pass "
                "client_context(certfile=, keyfile=); otherwise it shares no cipher or version"
            )
        if "ALERT_UNKNOWN_CA" in reason or ("ALERT" in reason and "CERTIFICATE" in reason):
            if self.server_side:
                return (
                    "the client rejected this server's certificate: the client must trust "
                    "its CA (client_context(cafile=)) and connect with a name it is for"
                )
            return (
                "the server rejected this client's certificate: it must be issued by the "
                "CA the server trusts (its client_cafile=)"
            )
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST"):
            return "the peer is not speaking TLS: check the URL's scheme and port"
        if reason in ("UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION"):
            return "no TLS version in common: canopy needs TLS 1.2 or later"
        if reason == "NO_SHARED_CIPHER":
            return "no cipher in common"
        return ""


class TlsStream:
    """A blocking stream with TLS over an inner ``Stream``; made by ``wrap_client`` and
    ``wrap_server``. ``info`` is the inner stream's with ``tls`` added: ``version``,
    ``cipher``, ``peer_certificate`` and ``peer_identity``."""

    def __init__(self, inner: Stream, connection: TlsConnection) -> None:
        self._inner = inner
        self._core = connection
        self._lock = threading.Lock()  # the core; never held while waiting on the inner stream
        self._send_lock = threading.Lock()  # sending ciphertext, in the order it was made
        self._closed = False
        self._info: dict[str, Any] = dict(inner.info)

    def __repr__(self) -> str:
        return f"<TlsStream over {self._inner!r}{' closed' if self._closed else ''}>"

    @property
    def info(self) -> dict[str, Any]:
        return self._info

    def send(self, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        with self._send_lock:
            for start in range(0, max(len(view), 1), SEND_CHUNK):
                with self._lock:
                    if self._closed:
                        raise OSError(errno.EBADF, "send on a closed TLS stream")
                    self._core.write(view[start : start + SEND_CHUNK])
                self._send_queued()
        self._flush(wait=False)

    def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        while True:
            with self._lock:
                if self._closed:
                    return b""
                data = self._core.read(max_bytes)
                reply = self._core.wants_to_send  # a post-handshake record may want one
            if reply:
                self._flush(wait=False)
            if data is not None:
                return data
            try:
                incoming = self._inner.receive(RECEIVE_SIZE)
            except OSError:
                if self._closed:
                    return b""  # closed by another thread while this one waited
                raise
            with self._lock:
                self._core.receive_data(incoming)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._core.close_notify()
        # A send in progress may be blocked on a peer that stopped reading: closing the
        # inner stream below wakes it, and close_notify is skipped.
        if self._send_lock.acquire(blocking=False):
            with self._lock:
                queued = self._core.wants_to_send
            deadline = Deadline(CLOSE_NOTIFY_TIMEOUT if queued else None, self._inner.close)
            try:
                with contextlib.suppress(OSError):
                    self._send_queued()
            finally:
                deadline.stop()
                self._send_lock.release()
        with contextlib.suppress(OSError):
            self._inner.close()

    def _handshake(self, timeout: float | None) -> None:
        deadline = Deadline(timeout, self._inner.close)
        try:
            try:
                while True:
                    with self._lock:
                        done = self._core.do_handshake()
                    self._flush(wait=True)
                    if done:
                        break
                    incoming = self._inner.receive(RECEIVE_SIZE)
                    with self._lock:
                        self._core.receive_data(incoming)
            except ssl.SSLError:
                with contextlib.suppress(OSError):
                    self._flush(wait=True)  # the alert telling the peer why
                raise
        except BaseException as e:
            in_time = not deadline.stop()
            with contextlib.suppress(OSError):
                self._inner.close()
            if not in_time and isinstance(e, Exception):
                raise _timed_out(self._core, timeout) from e
            raise
        if deadline.stop():
            raise _timed_out(self._core, timeout)
        self._info["tls"] = self._core.describe()

    def _send_queued(self) -> None:
        """Send all the ciphertext queued; the caller holds ``_send_lock``."""
        while True:
            with self._lock:
                out = self._core.data_to_send()
            if not out:
                return
            self._inner.send(out)

    def _flush(self, *, wait: bool) -> None:
        """Send the queued ciphertext, or leave it to the thread sending now."""
        while self._send_lock.acquire(blocking=wait):
            try:
                self._send_queued()
            finally:
                self._send_lock.release()
            with self._lock:
                if not self._core.wants_to_send:
                    return
            # Queued by a thread that found the lock taken before it was released.


class AsyncTlsStream:
    """An asyncio stream with TLS over an inner ``AsyncStream``; made by
    ``awrap_client`` and ``awrap_server``. ``info`` as for ``TlsStream``."""

    def __init__(self, inner: AsyncStream, connection: TlsConnection) -> None:
        self._inner = inner
        self._core = connection
        self._send_lock = asyncio.Lock()  # sending ciphertext, in the order it was made
        self._closed = False
        self._info: dict[str, Any] = dict(inner.info)

    def __repr__(self) -> str:
        return f"<AsyncTlsStream over {self._inner!r}{' closed' if self._closed else ''}>"

    @property
    def info(self) -> dict[str, Any]:
        return self._info

    async def send(self, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        async with self._send_lock:
            for start in range(0, max(len(view), 1), SEND_CHUNK):
                if self._closed:
                    raise OSError(errno.EBADF, "send on a closed TLS stream")
                self._core.write(view[start : start + SEND_CHUNK])
                await self._send_queued()

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        while True:
            if self._closed:
                return b""
            data = self._core.read(max_bytes)
            # If a send holds the lock, it sends this reply too before letting go.
            if self._core.wants_to_send and not self._send_lock.locked():
                async with self._send_lock:
                    await self._send_queued()
            if data is not None:
                return data
            try:
                incoming = await self._inner.receive(RECEIVE_SIZE)
            except OSError:
                if self._closed:
                    return b""
                raise
            self._core.receive_data(incoming)

    def abort(self) -> None:
        """Drop what waits to be written, in the stream beneath when it can drop its own
        (a socket's transport does): a peer that does not read would otherwise keep the
        connection, and those bytes, for as long as it likes."""
        drop = getattr(self._inner, "abort", None)
        if drop is not None:
            drop()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._core.close_notify()
        try:
            if not self._send_lock.locked():
                with contextlib.suppress(OSError, TimeoutError):
                    async with self._send_lock, asyncio.timeout(CLOSE_NOTIFY_TIMEOUT):
                        await self._send_queued()
        finally:
            with contextlib.suppress(OSError):
                await self._inner.close()

    async def _handshake(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                try:
                    while True:
                        done = self._core.do_handshake()
                        async with self._send_lock:
                            await self._send_queued()
                        if done:
                            break
                        self._core.receive_data(await self._inner.receive(RECEIVE_SIZE))
                except ssl.SSLError:
                    with contextlib.suppress(OSError):
                        async with self._send_lock:
                            await self._send_queued()  # the alert telling the peer why
                    raise
        except TimeoutError as e:
            with contextlib.suppress(OSError):
                await self._inner.close()
            raise _timed_out(self._core, timeout) from e
        except BaseException:
            with contextlib.suppress(OSError):
                await self._inner.close()
            raise
        self._info["tls"] = self._core.describe()

    async def _send_queued(self) -> None:
        """Send all the ciphertext queued; the caller holds ``_send_lock``."""
        while out := self._core.data_to_send():
            await self._inner.send(out)


def peer_identity(certificate: Mapping[str, Any] | None) -> str | None:
    """The name a verified certificate proves: its subject's commonName, else its first
    DNS or IP subjectAltName; ``None`` without one."""
    if not certificate:
        return None
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    for kind, value in certificate.get("subjectAltName", ()):
        if kind in ("DNS", "IP Address"):
            return str(value)
    return None


def _timed_out(core: TlsConnection, timeout: float | None) -> TimeoutError:
    if core.server_side:
        what = "the client did not complete the TLS handshake"
        hint = "a client that connects and sends nothing is cut off"
    else:
        what = "the server did not complete the TLS handshake"
        hint = "is it serving TLS at this address?"
    return TimeoutError(f"{what} within {timeout:g} s ({hint}); the connection is closed")


def _harden(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Renegotiation is a TLS 1.2 feature with a history of attacks, and a sans-I/O write
    # cannot wait for the reads it would need.
    context.options |= ssl.OP_NO_RENEGOTIATION


def _load_chain(
    context: ssl.SSLContext, certfile: PathLike, keyfile: PathLike | None, where: str
) -> None:
    try:
        context.load_cert_chain(certfile, keyfile)
    except OSError as e:
        key = f" and keyfile={os.fspath(keyfile)!r}" if keyfile is not None else ""
        raise _reworded(
            e,
            f"{where}: cannot load the certificate from certfile={os.fspath(certfile)!r}{key}: "
            f"{_what(e)}; give PEM files with the certificate chain and its private key "
            "(in certfile, or in keyfile=)",
        ) from e


def _what(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return error.reason.replace("_", " ").lower()
    if isinstance(error, OSError) and error.strerror:
        # OpenSSL's own words, without where in CPython they were raised
        return re.sub(r" \(_ssl\.c:\d+\)$", "", error.strerror)
    return str(error)


def _reworded(error: _E, message: str) -> _E:
    """An error of ``error``'s type saying ``message``, keeping the attributes code may
    test (``errno``, ``reason``, ``verify_code``...)."""
    if not isinstance(error, OSError):
        return type(error)(message)
    new = type(error)(error.errno, message)
    for name in ("library", "reason", "verify_code", "verify_message"):
        if hasattr(error, name):
            with contextlib.suppress(AttributeError):
                setattr(new, name, getattr(error, name))
    return new


__all__ = [
    "CLOSE_NOTIFY_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "AsyncTlsStream",
    "TlsConnection",
    "TlsStream",
    "awrap_client",
    "awrap_server",
    "client_context",
    "peer_identity",
    "server_context",
    "wrap_client",
    "wrap_server",
]
