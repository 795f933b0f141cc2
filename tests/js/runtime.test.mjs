// The runtime's sans-I/O pieces, without a server: MessagePack, frames, JSON with
// 64-bit integers, and the typed JSON encoding of values.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ErrorCode,
  FrameReader,
  decodeMessage,
  encodeFrame,
  fromJson,
  packMessage,
  parseJson,
  stringifyJson,
  toJson,
  types as t,
  unpackMessage,
} from "./canopy-runtime.js";
import { generation_options } from "./inference.js";

test("MessagePack: every width of integer, strings, bins, arrays", () => {
  const values = [
    0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1,
    2n ** 64n - 1n, -(2n ** 63n), 1.5, -0.25, "", "x".repeat(31), "y".repeat(40), "\u00e9".repeat(200),
    true, false, null, new Uint8Array([1, 2, 3]), [1, [2, ["three"]]],
  ];
  for (const v of values) assert.deepEqual(unpackMessage(packMessage(v)), v);
  assert.deepEqual([...packMessage(2n ** 64n - 1n)], [0xcf, 255, 255, 255, 255, 255, 255, 255, 255]);
  assert.throws(() => unpackMessage(new Uint8Array([0x81, 0x01, 0x02])), /not part of a Canopy message/);
  assert.throws(() => unpackMessage(new Uint8Array([0x92, 0x01])), /truncated/);
});

test("messages: what Python Canopy writes decodes, and frames cut anywhere reassemble", () => {
  // msgspec's encoding of Hello((1,), (8,), 2**64 - 1) and Reply(3, 0), from Python.
  const hello = Uint8Array.from(Buffer.from("970191019108cfffffffffffffffff0000c2", "hex"));
  assert.deepEqual(decodeMessage(hello), {
    type: "Hello", versions: [1], encodings: [8], zone: 2n ** 64n - 1n, object: 0n, interface: 0n, quiet: false,
  });
  const reply = Uint8Array.from(Buffer.from("95060300c0a0", "hex"));
  assert.deepEqual(decodeMessage(reply), { type: "Reply", id: 3, code: 0, payload: null, message: "" });
  assert.throws(() => decodeMessage(packMessage([6, "three", 0])), /Reply.id/);
  assert.throws(() => decodeMessage(packMessage([99])), /unknown message tag/);

  const frames = [
    encodeFrame({ type: "Ping", nonce: 7 }),
    encodeFrame({ type: "Post", caller: 5n, zone: 6n, object: 1n, interface: 2n ** 63n, method: 1, encoding: 8, payload: new Uint8Array(300) }),
  ];
  const stream = new Uint8Array(frames[0].length + frames[1].length);
  stream.set(frames[0]);
  stream.set(frames[1], frames[0].length);
  const reader = new FrameReader(1 << 20);
  const got = [];
  for (let i = 0; i < stream.length; i += 7) got.push(...reader.push(stream.subarray(i, i + 7)));
  assert.deepEqual(got.map(decodeMessage).map((m) => m.type), ["Ping", "Post"]);
  assert.equal(got.map(decodeMessage)[1].interface, 2n ** 63n);
  const huge = new Uint8Array([255, 255, 255, 255]); // a length prefix of 4 GiB
  assert.throws(() => new FrameReader(1 << 20).push(huge), (e) => e.code === ErrorCode.LIMIT_EXCEEDED);
});

test("JSON: integers beyond 2**53 are exact both ways, and __proto__ is data", () => {
  const text = '{"zone":18446744073709551615,"small":5,"f":1.25,"neg":-9223372036854775808,"s":"12345678901234567"}';
  const v = parseJson(text);
  assert.equal(v.zone, 2n ** 64n - 1n);
  assert.equal(v.small, 5);
  assert.equal(v.neg, -(2n ** 63n));
  assert.equal(v.s, "12345678901234567");
  assert.equal(stringifyJson(v), text);
  const polluted = parseJson('{"__proto__":{"x":1},"n":12345678901234567890}');
  assert.equal(Object.getPrototypeOf(polluted), Object.prototype);
  assert.deepEqual(Object.keys(polluted), ["__proto__", "n"]);
  assert.throws(() => parseJson("[".repeat(100) + "1" + "]".repeat(100) + " 12345678901234567", 64), /nested deeper/);
});

test("typed JSON: defaults, omitted optionals, and refusals naming the field", () => {
  assert.equal(toJson(generation_options, {}), '{"max_tokens":512,"temperature":0.7}');
  assert.equal(toJson(generation_options, { max_tokens: null, stop_sequences: ["."] }), '{"max_tokens":null,"temperature":0.7,"stop_sequences":["."]}');
  assert.deepEqual(fromJson(generation_options, "{}"), { max_tokens: 512, temperature: 0.7, stop_sequences: null });
  const e = (() => {
    try {
      toJson(generation_options, { stop_sequences: ["a", 5] });
    } catch (x) {
      return x;
    }
  })();
  assert.equal(e.code, ErrorCode.INVALID_DATA);
  assert.match(e.message, /\$\.stop_sequences\[1\]/);
  assert.equal(toJson(t.double, NaN), '"NaN"');
  assert.equal(fromJson(t.double, '"-Infinity"'), -Infinity);
  assert.equal(toJson(t.bytes(), new Uint8Array([255, 0, 1])), '"/wAB"');
  assert.deepEqual(fromJson(t.bytes(), '"/wAB"'), new Uint8Array([255, 0, 1]));
  assert.throws(() => fromJson(t.bytes(), '"/wA"'), /base64/);
  assert.deepEqual(fromJson(t.map(t.int64, t.string), '[[1,"a"],[-2,"b"]]'), new Map([[1n, "a"], [-2n, "b"]]));
  assert.equal(toJson(t.set(t.int32), new Set([3, 1, 2])), "[1,2,3]");
  assert.deepEqual(fromJson(t.variant(t.int32, t.string), '{"1":"x"}'), { index: 1, value: "x" });
  assert.throws(() => fromJson(t.uint32, "-1"), /out of range/);
  assert.throws(() => toJson(t.int64, 2 ** 60), /not exact; pass a BigInt/);
});
