// Shared by the JavaScript client's node tests. tests/codegen/test_js_client.py copies
// these files next to the modules it generates and runs them against live servers.

/** The URL of a server the Python test started, from the environment. */
export function serverUrl(name) {
  const url = process.env[`CANOPY_${name}_URL`];
  if (!url) throw new Error(`CANOPY_${name}_URL is not set: run these tests from pytest`);
  return url;
}

/** Poll `check` until it returns true: at most `tries` times, `delay` ms apart. */
export async function eventually(check, what, { tries = 50, delay = 100 } = {}) {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  throw new Error(`still not true after ${tries * delay} ms: ${what}`);
}

/** The error `promise` rejects with (fails if it resolves). */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail, and it succeeded");
}
