// The generated calculator client against a live Python server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCode, RpcError, connect } from "./canopy-runtime.js";
import { i_calculator } from "./calculator.js";
import { rejection, serverUrl } from "./helpers.mjs";

test("add answers over the WebSocket, in JSON", async () => {
  const calc = await connect(serverUrl("CALCULATOR"), i_calculator);
  try {
    assert.equal(await calc.add(2, 3), 5);
    assert.equal(await calc.add(-7, 2_000_000_000), 1_999_999_993);
    const results = await Promise.all([1, 2, 3, 4].map((n) => calc.add(n, n)));
    assert.deepEqual(results, [2, 4, 6, 8]);
  } finally {
    await calc.connection.close();
  }
});

test("an argument outside its IDL type is refused before anything is sent", async () => {
  const calc = await connect(serverUrl("CALCULATOR"), i_calculator);
  try {
    const e = await rejection(calc.add(2 ** 31, 1));
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, ErrorCode.INVALID_DATA);
    assert.equal(e.codeName, "INVALID_DATA");
    assert.match(e.message, /\$\.a/);
    assert.equal(await calc.add(1, 1), 2); // the link is still usable
  } finally {
    await calc.connection.close();
  }
});

test("a disposed proxy cannot call", async () => {
  const calc = await connect(serverUrl("CALCULATOR"), i_calculator);
  calc.dispose();
  const e = await rejection(calc.add(1, 2));
  assert.equal(e.code, ErrorCode.OBJECT_GONE);
  await calc.connection.close();
  assert.deepEqual(await calc.connection.closed, { clean: true, reason: "" });
});
