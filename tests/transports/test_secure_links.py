"""Links over TLS as a server uses them: mutual TLS with the client's identity visible to
the implementation, refusals that close only the refused connection, and a transform
that decides whom to serve."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

import canopy
from behaviour import TestService as Service
from behaviour import b
from canopy.runtime import close
from canopy.streams import Stream, tls


class Identities:
    def __init__(self, where: Path) -> None:
        self.ca = trustme.CA()
        self.where = where
        self.ca_pem = str(where / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_pem)
        server = self.ca.issue_cert("localhost", "127.0.0.1")
        self.server_pem = self.pem("server", server)

    def pem(self, name: str, cert: trustme.LeafCert) -> str:
        path = str(self.where / f"{name}.pem")
        cert.private_key_and_cert_chain_pem.write_to_path(path)
        return path

    def server(self, *, mutual: bool) -> ssl.SSLContext:
        return tls.server_context(self.server_pem, client_cafile=self.ca_pem if mutual else None)

    def client(self, name: str | None = None) -> ssl.SSLContext:
        if name is None:
            return tls.client_context(cafile=self.ca_pem)
        pem = self.pem(name, self.ca.issue_cert(f"{name}@example.com", common_name=name))
        return tls.client_context(cafile=self.ca_pem, certfile=pem)


@pytest.fixture
def ids(tmp_path: Path) -> Iterator[Identities]:
    yield Identities(tmp_path)


class WhoAmI(Service):
    async def who(self) -> tuple[int, str, str]:
        me = canopy.caller()
        return me.zone, me.method, str(me.info["tls"]["peer_identity"])


def test_mutual_tls_names_the_client_to_the_implementation(ids: Identities) -> None:
    with canopy.Zone("service") as service, canopy.Zone("alice") as alice:
        server = service.serve(
            "tls://127.0.0.1:0", lambda z: WhoAmI(), b.i_test, tls=ids.server(mutual=True)
        )
        root = alice.connect(server.url, b.i_test, tls=ids.client("alice"))
        zone, method, identity = root.who()
        assert (zone, method, identity) == (alice.id, "behaviour::i_test::who", "alice")
        close(root)


def test_a_client_without_a_certificate_is_refused_and_others_go_on(ids: Identities) -> None:
    with canopy.Zone("service") as service, canopy.Zone("bob") as bob:
        server = service.serve(
            "tls://127.0.0.1:0", lambda z: WhoAmI(), b.i_test, tls=ids.server(mutual=True)
        )
        with canopy.Zone("anonymous") as anonymous, pytest.raises(canopy.TransportError):
            anonymous.connect(server.url, b.i_test, tls=ids.client(), timeout=5)
        root = bob.connect(server.url, b.i_test, tls=ids.client("bob"))
        assert root.who()[2] == "bob"
        close(root)


def test_an_untrusted_server_is_refused(ids: Identities) -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve(
            "tls://127.0.0.1:0", lambda z: Service(), b.i_test, tls=ids.server(mutual=False)
        )
        with pytest.raises(canopy.TransportError, match="certificate verify failed"):
            client.connect(server.url, b.i_test)  # the system's CAs do not know this one


def test_serving_tls_without_a_certificate_says_what_to_pass() -> None:
    with (
        canopy.Zone("service") as service,
        pytest.raises(ValueError, match=r"tls=canopy\.streams\.tls\.server_context"),
    ):
        service.serve("tls://127.0.0.1:0", lambda z: Service(), b.i_test)


def test_a_transform_decides_whom_to_serve(ids: Identities) -> None:
    seen: list[str] = []

    def only_alice(stream: Stream) -> Stream:
        identity = stream.info["tls"]["peer_identity"]
        seen.append(identity)
        if identity != "alice":
            raise PermissionError(f"{identity} is not served here")
        return stream

    with canopy.Zone("service") as service:
        server = service.serve(
            "tls://127.0.0.1:0",
            lambda z: WhoAmI(),
            b.i_test,
            tls=ids.server(mutual=True),
            transform=only_alice,
        )
        with canopy.Zone("mallory") as mallory, pytest.raises(canopy.TransportError):
            mallory.connect(server.url, b.i_test, tls=ids.client("mallory"), timeout=5)
        with canopy.Zone("alice") as alice:
            root = alice.connect(server.url, b.i_test, tls=ids.client("alice"))
            assert root.who()[2] == "alice"
            close(root)
    assert seen == ["mallory", "alice"]


def test_asyncio_mutual_tls_and_transform(ids: Identities) -> None:
    async def scenario() -> None:
        async def check(stream: Any) -> Any:
            if stream.info["tls"]["peer_identity"] != "carol":
                raise PermissionError("not carol")
            return stream

        async with canopy.AsyncZone("service") as service:
            server = await service.serve(
                "tls://127.0.0.1:0",
                lambda z: WhoAmI(),
                b.i_test,
                tls=ids.server(mutual=True),
                transform=check,
            )
            async with canopy.AsyncZone("carol") as carol:
                root = await carol.connect(server.url, b.i_test, tls=ids.client("carol"))
                assert (await root.who())[2] == "carol"
                close(root)
            async with canopy.AsyncZone("dave") as dave:
                with pytest.raises(canopy.TransportError):
                    await dave.connect(server.url, b.i_test, tls=ids.client("dave"), timeout=5)

    asyncio.run(asyncio.wait_for(scenario(), 20))
