"""``canopy describe`` and ``canopy call`` against a real ``canopy serve`` process serving
the inference demo (the README's command), over TCP and over TLS, each CLI run a
subprocess of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from test_serve import urls

TESTS = Path(__file__).parent
SRC = str(Path(__import__("canopy").__file__).parent.parent)
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join([SRC, str(TESTS)])}


def serve(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "canopy", "serve", "canopy._demo:inference_service"]
    return subprocess.Popen(
        [*command, *args],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canopy", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    where = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    chain, ca_pem = where / "server.pem", where / "ca.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(chain)
    ca.cert_pem.write_to_path(ca_pem)
    return {"chain": str(chain), "ca": str(ca_pem)}


@pytest.fixture(scope="module")
def server(certs: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(tcp URL, tls URL) of one server process, killed by its PID at the end."""
    process = serve(
        "--listen",
        "tcp://127.0.0.1:0",
        "--listen",
        "tls://127.0.0.1:0",
        "--tls-cert",
        certs["chain"],
    )
    try:
        tcp, tls = urls(process, 2)
        yield tcp, tls
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        assert process.stdout is not None
        process.stdout.close()


def test_describe_prints_interfaces_and_methods(server: tuple[str, str]) -> None:
    result = cli("describe", server[0])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "interface inference::v1::i_inference_service" in out
    assert "i_inference_service.list_models() -> (model_ids: [string])" in out
    assert "i_inference_service.create_session(model_id: string) -> (session: " in out


def test_describe_as_json(server: tuple[str, str]) -> None:
    result = cli("describe", server[0], "--json")
    assert result.returncode == 0, result.stderr
    (service,) = json.loads(result.stdout)["interfaces"]
    names = [m["name"] for m in service["methods"]]
    assert names == ["list_models", "create_session"]
    assert service["methods"][1]["inputs"]["required"] == ["model_id"]


def test_call_prints_the_result_as_json(server: tuple[str, str]) -> None:
    result = cli("call", server[0], "i_inference_service.list_models")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"model_ids": ["echo", "tiny-1"]}
    made = cli("call", server[0], "i_inference_service.create_session", '{"model_id": "echo"}')
    assert made.returncode == 0, made.stderr
    assert set(json.loads(made.stdout)["session"]) == {"zone", "object", "interface", "kind"}


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (['{"model_id": "nope"}'], "ApplicationError (1)", "no model 'nope'"),
        (['{"model_id": 7}'], "INVALID_DATA (-4)", "7 is not of type 'string'"),
        (["{}"], "INVALID_DATA (-4)", "'model_id' is a required property"),
    ],
)
def test_errors_print_the_code_and_message(
    server: tuple[str, str], args: list[str], code: str, text: str
) -> None:
    result = cli("call", server[0], "i_inference_service.create_session", *args)
    assert result.returncode == 1
    assert f"canopy: {code}: " in result.stderr and text in result.stderr
    assert result.stdout == ""


def test_an_unknown_method_and_bad_json(server: tuple[str, str]) -> None:
    unknown = cli("call", server[0], "i_inference_service.nope")
    assert unknown.returncode == 1 and "INVALID_METHOD_ID" in unknown.stderr
    bad = cli("call", server[0], "i_inference_service.list_models", "{not json")
    assert bad.returncode == 2 and "not JSON" in bad.stderr


def test_over_tls_with_the_ca(server: tuple[str, str], certs: dict[str, str]) -> None:
    result = cli("call", server[1], "i_inference_service.list_models", "--tls-ca", certs["ca"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"model_ids": ["echo", "tiny-1"]}
    unverified = cli("describe", server[1])  # the system's CAs do not know this one
    assert unverified.returncode == 1 and "TRANSPORT_ERROR" in unverified.stderr
