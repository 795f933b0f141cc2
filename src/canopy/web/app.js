// The demo page: one connection to the server's root object, used as the inference
// service and, cast, as the calculator. The page implements the token sink itself.
import { cast, connect, pageZone } from "/canopy-runtime.js";
import { i_calculator } from "/calculator.js";
import { i_inference_service } from "/inference.js";

const $ = (id) => document.getElementById(id);
const page = { service: null, calc: null, session: null, generating: false };

function log(text) {
  const item = document.createElement("li");
  item.textContent = text;
  $("log").append(item);
  $("log").scrollTop = $("log").scrollHeight;
}

function failure(e) {
  return e && e.codeName ? `${e.codeName}: ${e.message}` : String(e && e.message ? e.message : e);
}

function setStatus(text, state) {
  $("status").textContent = text;
  if (state) document.body.dataset.state = state;
}

/** Enable what may be used now, from the page's state. */
function refresh() {
  const open = document.body.dataset.state === "ready";
  const has = page.session !== null;
  $("calc-add").disabled = !open;
  $("models").disabled = !open || page.generating;
  $("create-session").disabled = !open || page.generating;
  $("release-session").disabled = !open || !has || page.generating;
  $("generate").disabled = !open || !has || page.generating;
  $("cancel").disabled = !open || !page.generating;
}

async function start() {
  const url = `ws://${location.host}/canopy`;
  try {
    page.service = await connect(url, i_inference_service, {
      onError: (e) => log(`a callback failed: ${failure(e)}`),
    });
    page.calc = await cast(page.service, i_calculator);
    const connection = page.service.connection;
    connection.closed.then(({ clean, reason }) => {
      page.session = null;
      page.generating = false;
      setStatus(`The connection closed${clean ? "" : " abruptly"}${reason ? `: ${reason}` : ""}.`, "closed");
      refresh();
    });
    const models = await page.service.list_models();
    log(`list_models() → ${JSON.stringify(models)}`);
    for (const id of models) $("models").append(new Option(id, id));
    $("models").value = models.includes("story-1") ? "story-1" : models[0];
    setStatus(
      `Connected to zone ${connection.peerZone.toString(16)} at ${url}; ` +
        `this page is zone ${pageZone().id.toString(16)}.`,
      "ready",
    );
  } catch (e) {
    setStatus(`Could not connect to ${url}: ${failure(e)}`, "closed");
  }
  refresh();
}

$("calc").addEventListener("submit", async (event) => {
  event.preventDefault();
  const a = Number($("calc-a").value);
  const b = Number($("calc-b").value);
  const out = $("calc-result");
  try {
    const sum = await page.calc.add(a, b);
    out.textContent = `${a} + ${b} = ${sum}`;
    out.classList.remove("error");
    log(`add(${a}, ${b}) → ${sum}`);
  } catch (e) {
    out.textContent = failure(e);
    out.classList.add("error");
    log(`add(${a}, ${b}) failed: ${failure(e)}`);
  }
});

$("create-session").addEventListener("click", async () => {
  const model = $("models").value;
  try {
    const session = await page.service.create_session(model);
    page.session?.dispose();
    page.session = session;
    $("session").textContent = `A session on ${model}: the server keeps it while this page holds it.`;
    log(`create_session(${JSON.stringify(model)}) → a session`);
  } catch (e) {
    $("session").textContent = failure(e);
    log(`create_session(${JSON.stringify(model)}) failed: ${failure(e)}`);
  }
  refresh();
});

$("release-session").addEventListener("click", () => {
  page.session?.dispose();
  page.session = null;
  $("session").textContent = "No session: dispose() released it and the server destroyed it.";
  log("session.dispose(): the reference went back to the server");
  refresh();
});

$("generate").addEventListener("click", async () => {
  const tokens = $("tokens");
  const finish = $("finish");
  tokens.replaceChildren();
  tokens.dataset.count = "0";
  finish.textContent = "";
  finish.classList.remove("error");
  delete finish.dataset.reason;
  const sink = {
    on_token(token) {
      const span = document.createElement("span");
      span.className = "token";
      span.textContent = token;
      tokens.append(span);
      tokens.dataset.count = String(tokens.children.length);
      return 0;
    },
    on_finish(reason, generated) {
      finish.textContent = `on_finish(${reason}, ${generated})`;
      finish.dataset.reason = reason;
      log(`on_finish(${reason}, ${generated}) from the server`);
      return 0;
    },
  };
  const prompt = $("prompt").value;
  const max = Number($("max-tokens").value);
  page.generating = true;
  refresh();
  log(`generate(${JSON.stringify(prompt)}, {max_tokens: ${max}}, sink)`);
  try {
    await page.session.generate(prompt, { max_tokens: max }, sink);
  } catch (e) {
    finish.textContent = failure(e);
    finish.classList.add("error");
    log(`generate failed: ${failure(e)}`);
  }
  page.generating = false;
  refresh();
});

$("cancel").addEventListener("click", async () => {
  $("cancel").disabled = true;
  try {
    await page.session.cancel();
    log("cancel(): the server stops before its next token");
  } catch (e) {
    log(`cancel failed: ${failure(e)}`);
  }
});

start();
