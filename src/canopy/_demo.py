"""``canopy demo``: the IDL walkthrough's inference service, running across zones.

The service lives in a child zone and the token sink in the host: every call,
post and reference crosses the wire layer, exactly as it would between
processes. The same implementation classes run under the blocking runtime
and under asyncio.
"""

from __future__ import annotations

import asyncio
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import canopy
from canopy import _loops, telemetry
from canopy.codegen import load_python, write_python
from canopy.idl import Interface, Model, compile_file, compile_text, fingerprint
from canopy.idl._printer import as_written, type_text
from canopy.runtime import AsyncZone, Zone
from canopy.telemetry.recorder import Recorder

EXAMPLES = Path(str(resources.files("canopy") / "examples"))
MODELS = {"tiny-1": "the quick brown fox jumps over the lazy dog", "echo": ""}


def run(output: Path | None, trace: Path | None = None) -> None:
    """The console demo; ``trace``: also record the walkthrough (parts 2 and 3) and
    write its sequence diagrams and animated page there."""
    model = compile_file(EXAMPLES / "inference.idl")
    inference: Any = load_python(model).inference
    out = output or Path(tempfile.mkdtemp(prefix="canopy-demo-"))
    written = write_python(model, out)

    _title("1. The contract: inference.idl")
    _summary(model)
    print(f"  generated Python: {', '.join(str(p.relative_to(out)) for p in written)} in {out}")

    if trace is None:
        walkthrough(inference)
    else:
        recorder = record(inference)
        _title("The walkthrough, recorded")
        for path in recorder.write(trace):
            print(f"  wrote {path}")

    _title("4. An IDL error, as the compiler reports it")
    try:
        compile_text(
            "interface i_feed\n{\n    [post] error_code push(int value, [out] int& ack);\n};\n",
            filename="feed.idl",
        )
    except canopy.IdlError as e:
        print(e.format())


def record(inference: Any) -> Recorder:
    """The walkthrough with a recorder attached: every zone, link, call, reply, post
    and reference it makes."""
    with telemetry.observing(Recorder()) as recorder:
        walkthrough(inference)
    return recorder


def walkthrough(inference: Any) -> None:
    """Parts 2 and 3: the service in a child zone, the sink in the host, blocking and
    then under asyncio, with the same implementation classes."""
    service_cls, sink_cls = _implementations(inference)

    _title("2. The walkthrough, blocking: the service in a child zone, the sink in the host")
    host = Zone("host")
    service = host.child("inference", lambda zone: service_cls(), inference.i_inference_service)
    print(f"host zone {host.id:#x} holds {service!r}")
    print(f"list_models() -> {service.list_models()}")
    session = service.create_session("tiny-1")
    print(f"create_session('tiny-1') -> {session!r}")
    sink = sink_cls(label="stream")
    options = inference.generation_options(max_tokens=6)
    print("generate(..., max_tokens=6) streams tokens back through [post] on_token:")
    session.generate("Tell me about foxes", options, sink)
    print(f"  generate returned; the sink saw {sink.tokens}")

    print("\nA second run cancels from inside the token callback (a call back into the service):")
    canceller = sink_cls(label="cancel", cancel_after=3, session=session)
    session.generate("Tell me again", inference.generation_options(), canceller)
    print(f"  the sink saw {canceller.tokens} and finish reason {canceller.reason}")
    del canceller

    print("\nDropping the last reference to the session:")
    del session
    host.collect()
    print(f"host imports {len(host.imported())} object(s): the service root only")

    _title("3. The same classes under asyncio")
    _loops.run(_async_walkthrough(inference, service_cls, sink_cls))


async def _async_walkthrough(inference: Any, service_cls: Any, sink_cls: Any) -> None:
    async with AsyncZone("async-host") as host:
        service = await host.child(
            "inference", lambda zone: service_cls(), inference.i_inference_service
        )
        print(f"await list_models() -> {await service.list_models()}")
        session = await service.create_session("tiny-1")
        sink = sink_cls(label="async")
        await session.generate(
            "foxes, asynchronously", inference.generation_options(max_tokens=4), sink
        )
        await asyncio.sleep(0)
        print(f"  the sink saw {sink.tokens}, finish reason {sink.reason}")
        del session
        host.collect()


def _implementations(
    inference: Any, *, models: dict[str, str] = MODELS, token_delay: float = 0.0
) -> tuple[type[Any], type[Any]]:
    """The service and the sink; ``models`` maps a model id to the words it generates,
    ``token_delay`` is the seconds generate waits before each token (the web page shows
    them arriving, and has time to cancel)."""
    finish = inference.finish_reason

    class Session(inference.i_session):  # type: ignore[misc]
        def __init__(self, model_id: str) -> None:
            self.words = models[model_id].split()
            self.cancelled = False

        async def generate(self, prompt: str, options: Any, sink: Any) -> None:
            self.cancelled = False
            limit = options.max_tokens if options.max_tokens is not None else len(self.words)
            count, reason = 0, finish.complete
            for word in self.words:
                if self.cancelled:
                    reason = finish.cancelled
                    break
                if count == limit:
                    reason = finish.max_tokens
                    break
                if token_delay:
                    await asyncio.sleep(token_delay)
                    if self.cancelled:
                        reason = finish.cancelled
                        break
                if sink is not None:  # a caller with no sink (an MCP client) gets none
                    sink.on_token(word)  # a post: no reply is awaited
                count += 1
            if sink is not None:
                await sink.on_finish(reason, count)  # a call: the caller confirms

        def cancel(self) -> None:
            self.cancelled = True

        def __del__(self) -> None:
            print("  [inference zone] session destroyed: its last reference was released")

    class Service(inference.i_inference_service):  # type: ignore[misc]
        def list_models(self) -> list[str]:
            return sorted(models)

        def create_session(self, model_id: str) -> Any:
            if model_id not in models:
                raise canopy.ApplicationError(f"no model {model_id!r}", code=1)
            return Session(model_id)

    class Sink(inference.i_token_sink):  # type: ignore[misc]
        def __init__(self, label: str, cancel_after: int = 0, session: Any = None) -> None:
            self.label = label
            self.tokens: list[str] = []
            self.reason: Any = None
            self.cancel_after = cancel_after
            self.session = session

        def on_token(self, token: str) -> None:
            self.tokens.append(token)
            print(f"  [host] token {len(self.tokens)}: {token!r}")
            if self.cancel_after and len(self.tokens) == self.cancel_after:
                self.session.cancel()

        def on_finish(self, reason: Any, tokens_generated: int) -> None:
            self.reason = finish(reason).name
            print(f"  [host] finished: {self.reason} after {tokens_generated} tokens")

    return Service, Sink


def _title(text: str) -> None:
    print(f"\n{text}\n{'=' * len(text)}")


def _summary(model: Model) -> None:
    for d in model.walk():
        if isinstance(d, Interface):
            print(f"  interface {d.qualified_name}  id {fingerprint(model, d):#018x}")
            for m in d.methods:
                ins = ", ".join(f"{p.name}: {type_text(p.type, as_written)}" for p in m.inputs)
                outs = ", ".join(type_text(p.type, as_written) for p in m.outputs)
                post = " [post]" if m.is_post else ""
                print(f"      #{m.id} {m.name}({ins}) -> ({outs}){post}")


def inference_service() -> Any:
    """The demo's inference service, for ``canopy serve canopy._demo:inference_service``."""
    service, _ = _implementations(canopy.load_idl(EXAMPLES / "inference.idl").inference)
    return service()
