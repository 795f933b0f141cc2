// The generated inference client against a live Python server: calls, an application
// error, a token sink the page implements receiving [post]s in order, and references
// released by dispose() and by the connection's end, checked on the server itself.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApplicationError, ErrorCode, Zone, cast, pageZone } from "./canopy-runtime.js";
import { finish_reason, generation_options, i_inference_service } from "./inference.js";
import { i_probe } from "./probe.js";
import { eventually, rejection, serverUrl } from "./helpers.mjs";

/** A token sink: records every callback, in the order they arrive. */
function recorder() {
  const events = [];
  return {
    events,
    on_token(token) {
      events.push(["token", token]);
    },
    on_finish(reason, tokens) {
      events.push(["finish", reason, tokens]);
    },
  };
}

async function service(zone = pageZone()) {
  const svc = await zone.connect(serverUrl("INFERENCE"), i_inference_service);
  return { svc, probe: await cast(svc, i_probe) };
}

test("list_models and an application error", async () => {
  const { svc, probe } = await service();
  try {
    assert.deepEqual(await svc.list_models(), ["echo", "tiny-1"]);
    const e = await rejection(svc.create_session("no-such-model"));
    assert.ok(e instanceof ApplicationError);
    assert.equal(e.code, 1);
    assert.equal(e.codeName, "ApplicationError");
    assert.match(e.message, /no model 'no-such-model'/);
    assert.equal(await probe.live_sessions(pageZone().id), 0);
  } finally {
    probe.dispose();
    await svc.connection.close();
  }
});

test("generate streams [post] tokens into the page's sink in order, then on_finish", async () => {
  const { svc, probe } = await service();
  const zone = pageZone();
  try {
    const session = await svc.create_session("tiny-1");
    const sink = recorder();
    await session.generate("Tell me about foxes", { max_tokens: 6 }, sink);
    const words = ["the", "quick", "brown", "fox", "jumps", "over"];
    assert.deepEqual(sink.events, [...words.map((w) => ["token", w]), ["finish", finish_reason.max_tokens, 6]]);

    // No limit given: the IDL default (512) lets the model finish.
    const all = recorder();
    await session.generate("again", generation_options.create(), all);
    assert.equal(all.events.length, 10);
    assert.deepEqual(all.events.at(-1), ["finish", "complete", 9]);

    // The server held the sinks through optimistic references only, and gave them back.
    await eventually(() => zone.exported().size === 0, "the server released the sinks");
    session.dispose();
  } finally {
    probe.dispose();
    await svc.connection.close();
  }
});

test("dispose() releases the session: the server destroys it", async () => {
  const { svc, probe } = await service();
  const me = pageZone().id;
  try {
    const session = await svc.create_session("tiny-1");
    assert.equal(await probe.live_sessions(me), 1);
    assert.equal(await probe.held_by(me), 2); // the root and the session
    session.dispose();
    // The release travels on the same link as the next call, and is handled first.
    assert.equal(await probe.live_sessions(me), 0);
    assert.equal(await probe.held_by(me), 1);
    const e = await rejection(session.generate("gone", {}, recorder()));
    assert.equal(e.code, ErrorCode.OBJECT_GONE);
    // Two proxies of one object hold one reference between them; the last dispose gives it back.
    const twice = await svc.create_session("echo");
    const again = await cast(twice, twice.constructor);
    twice.dispose();
    assert.equal(await probe.live_sessions(me), 1);
    again.dispose();
    assert.equal(await probe.live_sessions(me), 0);
  } finally {
    probe.dispose();
    await svc.connection.close();
  }
});

test("closing the socket releases everything the page held", async () => {
  const watcher = await service();
  try {
    for (const ending of ["close", "abort"]) {
      const zone = new Zone();
      const { svc } = await service(zone);
      const session = await svc.create_session("tiny-1");
      const sink = recorder();
      await session.generate("before the end", { max_tokens: 2 }, sink);
      assert.equal(await watcher.probe.live_sessions(zone.id), 1);
      assert.equal(await watcher.probe.linked(zone.id), true);

      const pending = rejection(session.generate("never answered", { max_tokens: 1 }, sink));
      if (ending === "close") await svc.connection.close();
      else svc.connection.abort("the test pulls the plug");
      const e = await pending;
      assert.ok([ErrorCode.CALL_CANCELLED, ErrorCode.TRANSPORT_ERROR].includes(e.code), e.message);
      assert.equal((await svc.connection.closed).clean, ending === "close");

      await eventually(async () => !(await watcher.probe.linked(zone.id)), `${ending}: the server dropped the link`);
      // The last call may still be running on the server; the session goes when it ends.
      await eventually(async () => (await watcher.probe.live_sessions(zone.id)) === 0, `${ending}: the session died`);
      assert.equal(await watcher.probe.held_by(zone.id), 0);
      // The page's side is settled too: nothing exported, nothing held, proxies dead.
      assert.equal(zone.exported().size, 0);
      assert.deepEqual(zone.imported(), []);
      assert.equal(session.disposed, true);
      assert.equal((await rejection(session.cancel())).code, ErrorCode.OBJECT_GONE);
    }
  } finally {
    watcher.probe.dispose();
    await watcher.svc.connection.close();
  }
});

test("connect refuses a root that does not implement the interface", async () => {
  const { i_calculator } = await import("./calculator.js");
  const zone = new Zone();
  const e = await rejection(zone.connect(serverUrl("INFERENCE"), i_calculator));
  assert.equal(e.code, ErrorCode.INVALID_CAST);
  assert.match(e.message, /does not implement calculator::v1::i_calculator/);
  assert.equal(zone.links.size, 0);
});
