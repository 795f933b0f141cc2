// The generated client against the behaviour suite's Python service: every IDL type
// through the JSON encoding, error domains, several results, posts in order, objects
// passed both ways, casts, and 64-bit ids.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ApplicationError, ErrorCode, RpcError, cast, connect, pageZone } from "./canopy-runtime.js";
import { calc_error, colour, i_gadget, i_listener, i_test, i_widget, matrix } from "./behaviour.js";
import { rejection, serverUrl } from "./helpers.mjs";

let svc;

before(async () => {
  svc = await connect(serverUrl("BEHAVIOUR"), i_test);
});

after(async () => {
  await svc.connection.close();
});

function sample() {
  return {
    flag: true,
    i8: -128,
    u8: 255,
    i16: -32768,
    u16: 65535,
    i32: -2147483648,
    u32: 4294967295,
    i64: -(2n ** 63n),
    u64: 2n ** 64n - 1n,
    f: 1.5,
    d: -0.1,
    text: "caf\u00e9 \u{1F98A} \"quoted\"",
    raw: new Uint8Array([0, 1, 254, 255]),
    ints: [1, -2, 3],
    nested: [["a"], [], ["b", "c"]],
    points: new Map([["origin", { x: 0, y: 0 }], ["__proto__", { x: 1, y: -1 }]]),
    ids: new Set([3n, -1n, 2n ** 62n]),
    triple: [1, 2, 3],
    maybe: null,
    nullable_point: { x: 5, y: 6 },
    choice: { index: 1, value: 2n ** 53n + 1n },
    shade: colour.blue,
  };
}

test("every type makes the round trip through the server", async () => {
  const value = sample();
  assert.deepEqual(await svc.echo(value), value);
  const other = { ...sample(), maybe: "here", nullable_point: null, choice: { index: 2, value: "s" } };
  assert.deepEqual(await svc.echo(other), other);
  // Defaults: fields left out take their IDL defaults (shade = green).
  const { shade, ...rest } = sample();
  assert.equal((await svc.echo(rest)).shade, "green");
});

test("values that do not fit are refused with the path to the field", async () => {
  const cases = [
    [{ ...sample(), u8: 256 }, /\.u8/],
    [{ ...sample(), i64: 1.5 }, /\.i64/],
    [{ ...sample(), shade: "purple" }, /\.shade/],
    [{ ...sample(), triple: [1, 2] }, /\.triple/],
    [{ ...sample(), choice: { index: 3, value: 1 } }, /\.choice/],
    [{ ...sample(), points: new Map([["p", { x: "1" }]]) }, /\.points\["p"\]\.x/],
  ];
  for (const [value, path] of cases) {
    const e = await rejection(svc.echo(value));
    assert.equal(e.code, ErrorCode.INVALID_DATA, e.message);
    assert.match(e.message, path);
  }
});

test("errors: an IDL error domain's name, and an implementation's exception", async () => {
  const e = await rejection(svc.checked_divide(1, 0));
  assert.ok(e instanceof ApplicationError);
  assert.equal(e.code, calc_error.DIVIDE_BY_ZERO);
  assert.equal(e.codeName, "DIVIDE_BY_ZERO");
  assert.equal(e.domain, "behaviour::calc_error");
  assert.match(e.message, /cannot divide 1 by zero/);
  assert.equal(await svc.checked_divide(7, 2), 3);

  const failed = await rejection(svc.fail("boom"));
  assert.ok(failed instanceof RpcError);
  assert.equal(failed.code, ErrorCode.EXCEPTION);
  assert.equal(failed.codeName, "EXCEPTION");
  assert.equal(failed.message, "ValueError: boom");
});

test("several [out] parameters arrive as one object", async () => {
  assert.deepEqual(await svc.divmod(7n, 2n), { quotient: 3n, remainder: 1n });
  assert.deepEqual(await svc.swap("a", "b"), { first: "b", second: "a" });
});

test("[post]s arrive in the order they were sent", async () => {
  for (let i = 0; i < 50; i++) svc.record(`v${i}`, i);
  const recorded = await svc.recorded();
  assert.deepEqual(recorded.slice(-50), Array.from({ length: 50 }, (_, i) => `${i}:v${i}`));
});

test("objects both ways: proxies, the page's own objects, casts", async () => {
  const widget = await svc.make_widget("w1");
  assert.ok(widget instanceof i_widget);
  assert.equal(await widget.name(), "w1");
  const same = await svc.echo_back(widget); // a proxy passed back to its owner, and back again
  assert.ok(same instanceof i_widget && same !== widget);
  widget.dispose();
  assert.equal(await same.name(), "w1"); // the two proxies held one reference, not two
  same.dispose();

  const mine = { name: () => "from the page" };
  assert.equal(await svc.widget_name(mine), "from the page"); // the server calls the page
  assert.equal(await svc.echo_back(mine), mine); // the page's own object comes back as itself

  const holder = await svc.give(2);
  assert.equal(holder.count, 2);
  assert.deepEqual(await Promise.all([holder.widget, ...holder.spares].map((w) => w.name())), ["given", "spare0", "spare1"]);
  for (const w of [holder.widget, ...holder.spares]) w.dispose();

  const gadget = await svc.make_gadget();
  const asGadget = await cast(gadget, i_gadget);
  assert.equal(await asGadget.serial(), 42n);
  const e = await rejection(cast(gadget, i_listener));
  assert.equal(e.code, ErrorCode.INVALID_CAST);
  gadget.dispose();
  asGadget.dispose();
});

test("a listener the page implements gets [post]s in order, then the call", async () => {
  const seen = [];
  const listener = {
    async notify(message, seq) {
      // Earlier posts take longer: run at once, they would finish in reverse.
      await new Promise((resolve) => setTimeout(resolve, 2 * (8 - seq)));
      seen.push([message, seq]);
    },
    done(count) {
      seen.push(["done", count]);
    },
  };
  await svc.listen(listener, 8);
  assert.deepEqual(seen, [...Array.from({ length: 8 }, (_, i) => [`m${i}`, i]), ["done", 8]]);
});

test("the server sees the page's 64-bit zone id", async () => {
  const who = await svc.who();
  assert.equal(typeof who.zone, "bigint");
  assert.equal(who.zone, pageZone().id);
  assert.equal(who.method, "behaviour::i_test::who");
});

test("a struct type makes values with the IDL defaults", () => {
  assert.deepEqual(matrix.fields.map((f) => f.name).slice(0, 3), ["flag", "i8", "u8"]);
  const made = matrix.create({ flag: true });
  assert.equal(made.shade, "green");
  assert.equal(made.flag, true);
  assert.equal(made.maybe, null);
});
