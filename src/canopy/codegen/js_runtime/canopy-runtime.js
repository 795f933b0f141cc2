// canopy-runtime.js: the one runtime file every module of `canopy generate --js` imports.
//
// It makes the page a Canopy zone of its own, linked to a server over a WebSocket:
// the wire protocol (length-prefixed MessagePack frames, the Hello/Welcome handshake),
// the JSON encoding of values, the zone's two tables (the objects it exports to its
// peers and the remote objects it holds), proxies, and errors. No dependencies: a
// browser, or Node with a global WebSocket, is enough.
//
// Theory of operation, and the rules the peer relies on (they are Python Canopy's):
//
// - Zone ids are random 64-bit numbers (BigInt), so that no two pages collide; object
//   ids are counted from 1 in each zone; interface ids are the fingerprints the
//   generator embeds; method ids are 1-based declaration order.
// - A remote object is held with at most one reference of each kind (shared,
//   optimistic) per zone, whatever the number of proxies: every proxy is a handle
//   that counts, the first one of a kind holds the reference and the last one to be
//   disposed gives it back (Release). A reference the peer sends beyond the one
//   held is given back at once.
// - An exported object (an implementation the page passed to the server) is counted
//   per holding zone and kind. A shared reference keeps it in the table; an
//   optimistic one does not (WeakRef), as in every Canopy zone. The arguments of a
//   call in flight keep their objects alive until its reply.
// - Calls and posts from the peer run in arrival order: a post's promise is awaited
//   before the next message starts, a call starts in order and runs on, so that it
//   can call back.
// - When the link ends, pending calls fail, the peer's references to the page's
//   objects are dropped and the page's proxies into the peer are dead.

// ---------------------------------------------------------------- errors

/** The framework's error codes (negative), as Canopy numbers them. */
export const ErrorCode = Object.freeze({
  OK: 0,
  OUT_OF_MEMORY: -1,
  NEED_MORE_MEMORY: -2,
  SECURITY_ERROR: -3,
  INVALID_DATA: -4,
  TRANSPORT_ERROR: -5,
  INVALID_METHOD_ID: -6,
  INVALID_INTERFACE_ID: -7,
  INVALID_CAST: -8,
  ZONE_NOT_SUPPORTED: -9,
  ZONE_NOT_INITIALISED: -10,
  ZONE_NOT_FOUND: -11,
  OBJECT_NOT_FOUND: -12,
  INVALID_VERSION: -13,
  EXCEPTION: -14,
  PROXY_DESERIALISATION_ERROR: -15,
  STUB_DESERIALISATION_ERROR: -16,
  INCOMPATIBLE_SERIALISATION: -17,
  REFERENCE_COUNT_ERROR: -18,
  OBJECT_GONE: -19,
  CALL_TIMEOUT: -20,
  CALL_CANCELLED: -21,
  PROTOCOL_ERROR: -22,
  LIMIT_EXCEEDED: -23,
  UNAUTHORISED: -24,
});

const CODE_NAMES = new Map(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** Every error a Canopy call raises: `code` is never 0, `codeName` names it. */
export class CanopyError extends Error {
  constructor(message, code, codeName, domain = "") {
    super(message || codeName);
    this.name = new.target.name;
    this.code = code;
    this.codeName = codeName;
    this.domain = domain;
  }
}

/** A framework error (negative code): the call could not be carried out. */
export class RpcError extends CanopyError {
  constructor(code, message = "") {
    super(message, code, CODE_NAMES.get(code) ?? String(code));
  }
}

/**
 * An application error (positive code): the implementation refused. `codeName` is the
 * value's name when the method returns an IDL error domain, else "ApplicationError".
 */
export class ApplicationError extends CanopyError {
  constructor(code, message = "", codeName = "ApplicationError", domain = "") {
    super(message, code, codeName, domain);
  }
}

/** The error a reply's `code` and `message` stand for; `method` names error domains. */
export function errorFromCode(code, message = "", method = null) {
  if (code < 0) return new RpcError(code, message);
  const raises = method?.raises;
  const name = raises?.codes.get(code);
  if (name !== undefined) return new ApplicationError(code, message, name, raises.name);
  return new ApplicationError(code, message);
}

function invalid(message) {
  return new RpcError(ErrorCode.INVALID_DATA, message);
}

// ---------------------------------------------------------------- MessagePack

// Messages are MessagePack arrays of integers, strings, booleans, nil and, for
// payloads, bin: that subset is all this codec reads or writes. Integers beyond
// Number.MAX_SAFE_INTEGER are BigInts in both directions.

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

class Writer {
  constructor(size = 64) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.pos = 0;
  }

  reserve(n) {
    if (this.pos + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(b) {
    this.reserve(1);
    this.bytes[this.pos++] = b;
  }

  head(marker, n, size) {
    this.reserve(1 + size);
    this.bytes[this.pos++] = marker;
    if (size === 1) this.view.setUint8(this.pos, n);
    else if (size === 2) this.view.setUint16(this.pos, n);
    else this.view.setUint32(this.pos, n);
    this.pos += size;
  }

  raw(data) {
    this.reserve(data.length);
    this.bytes.set(data, this.pos);
    this.pos += data.length;
  }

  done() {
    return this.bytes.subarray(0, this.pos);
  }
}

function packInt(w, v) {
  if (v >= 0) {
    if (v < 0x80) w.u8(v);
    else if (v <= 0xff) w.head(0xcc, v, 1);
    else if (v <= 0xffff) w.head(0xcd, v, 2);
    else if (v <= 0xffffffff) w.head(0xce, v, 4);
    else packBig(w, BigInt(v));
  } else if (v >= -32) w.u8(v & 0xff);
  else if (v >= -0x80) w.head(0xd0, v & 0xff, 1);
  else if (v >= -0x8000) w.head(0xd1, v & 0xffff, 2);
  else if (v >= -0x80000000) w.head(0xd2, v >>> 0, 4);
  else packBig(w, BigInt(v));
}

function packBig(w, v) {
  if (v >= -0x80000000n && v <= 0xffffffffn) {
    packInt(w, Number(v));
    return;
  }
  w.reserve(9);
  if (v >= 0n) {
    if (v >= 1n << 64n) throw new RangeError(`${v} does not fit in 64 bits`);
    w.bytes[w.pos++] = 0xcf;
    w.view.setBigUint64(w.pos, v);
  } else {
    if (v < -(1n << 63n)) throw new RangeError(`${v} does not fit in 64 bits`);
    w.bytes[w.pos++] = 0xd3;
    w.view.setBigInt64(w.pos, v);
  }
  w.pos += 8;
}

function pack(w, v) {
  if (v === null || v === undefined) w.u8(0xc0);
  else if (v === false) w.u8(0xc2);
  else if (v === true) w.u8(0xc3);
  else if (typeof v === "number") {
    if (Number.isSafeInteger(v)) packInt(w, v);
    else {
      w.reserve(9);
      w.bytes[w.pos++] = 0xcb;
      w.view.setFloat64(w.pos, v);
      w.pos += 8;
    }
  } else if (typeof v === "bigint") packBig(w, v);
  else if (typeof v === "string") {
    const data = utf8.encode(v);
    if (data.length < 32) w.u8(0xa0 | data.length);
    else if (data.length <= 0xff) w.head(0xd9, data.length, 1);
    else if (data.length <= 0xffff) w.head(0xda, data.length, 2);
    else w.head(0xdb, data.length, 4);
    w.raw(data);
  } else if (v instanceof Uint8Array) {
    if (v.length <= 0xff) w.head(0xc4, v.length, 1);
    else if (v.length <= 0xffff) w.head(0xc5, v.length, 2);
    else w.head(0xc6, v.length, 4);
    w.raw(v);
  } else if (Array.isArray(v)) {
    if (v.length < 16) w.u8(0x90 | v.length);
    else if (v.length <= 0xffff) w.head(0xdc, v.length, 2);
    else w.head(0xdd, v.length, 4);
    for (const item of v) pack(w, item);
  } else {
    throw new TypeError(`MessagePack: cannot write ${typeof v}`);
  }
}

/** `value` as MessagePack bytes (the subset Canopy's messages use). */
export function packMessage(value) {
  const w = new Writer();
  pack(w, value);
  return w.done();
}

const MAX_NESTING = 8; // messages nest an array of ids at most: deeper is not a message

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) throw new Error("truncated MessagePack");
  }

  take(n) {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  size(n) {
    this.need(n);
    const v =
      n === 1 ? this.view.getUint8(this.pos) : n === 2 ? this.view.getUint16(this.pos) : this.view.getUint32(this.pos);
    this.pos += n;
    return v;
  }

  big(signed) {
    this.need(8);
    const v = signed ? this.view.getBigInt64(this.pos) : this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
  }

  value(depth) {
    this.need(1);
    const m = this.bytes[this.pos++];
    if (m < 0x80) return m;
    if (m >= 0xe0) return m - 0x100;
    if ((m & 0xf0) === 0x90) return this.array(m & 0x0f, depth);
    if ((m & 0xe0) === 0xa0) return utf8Strict.decode(this.take(m & 0x1f));
    const v = this.view;
    switch (m) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
      case 0xc5:
      case 0xc6:
        return this.take(this.size(1 << (m - 0xc4)));
      case 0xca: {
        this.need(4);
        const f = v.getFloat32(this.pos);
        this.pos += 4;
        return f;
      }
      case 0xcb: {
        this.need(8);
        const f = v.getFloat64(this.pos);
        this.pos += 8;
        return f;
      }
      case 0xcc:
        return this.size(1);
      case 0xcd:
        return this.size(2);
      case 0xce:
        return this.size(4);
      case 0xcf:
        return this.big(false);
      case 0xd0: {
        this.need(1);
        return v.getInt8(this.pos++);
      }
      case 0xd1: {
        this.need(2);
        const i = v.getInt16(this.pos);
        this.pos += 2;
        return i;
      }
      case 0xd2: {
        this.need(4);
        const i = v.getInt32(this.pos);
        this.pos += 4;
        return i;
      }
      case 0xd3:
        return this.big(true);
      case 0xd9:
      case 0xda:
      case 0xdb:
        return utf8Strict.decode(this.take(this.size(1 << (m - 0xd9))));
      case 0xdc:
        return this.array(this.size(2), depth);
      case 0xdd:
        return this.array(this.size(4), depth);
      default:
        throw new Error(`MessagePack type 0x${m.toString(16)} is not part of a Canopy message`);
    }
  }

  array(n, depth) {
    if (depth >= MAX_NESTING) throw new Error("MessagePack nested too deeply");
    if (n > this.bytes.length - this.pos) throw new Error("truncated MessagePack");
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }
}

/** The value MessagePack `bytes` hold; throws on anything else (trailing bytes included). */
export function unpackMessage(bytes) {
  const r = new Reader(bytes);
  const value = r.value(0);
  if (r.pos !== bytes.length) throw new Error("trailing bytes after the MessagePack value");
  return value;
}

// ---------------------------------------------------------------- messages

/** Protocol versions this runtime speaks, and the JSON encoding's number. */
export const PROTOCOL_VERSION = 1;
export const JSON_ENCODING = 8;
const SHARED = 0;
const OPTIMISTIC = 1;

// One row per message: its tag, its name, and its fields in order, each with a kind.
// "id" is a 64-bit id normalised to BigInt (zones, objects, interfaces); "u" an
// unsigned integer, "i" a signed one, "b" a boolean, "s" a string, "p" a payload
// (bin, or nil), "a" an array of unsigned integers. Fields after `required` may be
// missing (they take `defaults`), as in msgspec's array-like structs; extra trailing
// items are ignored, as msgspec ignores them.
const SCHEMAS = [
  [1, "Hello", ["versions:a", "encodings:a", "zone:id", "object:id", "interface:id", "quiet:b"], 3],
  [2, "Welcome", ["version:u", "encoding:u", "zone:id", "object:id", "interface:id", "accepts:a"], 3],
  [3, "Refuse", ["code:i", "message:s"], 2],
  [
    4,
    "Call",
    ["id:u", "caller:id", "zone:id", "object:id", "interface:id", "method:u", "encoding:u", "payload:p", "tag:u", "timeout_ms:u"],
    8,
  ],
  [5, "Post", ["caller:id", "zone:id", "object:id", "interface:id", "method:u", "encoding:u", "payload:p", "tag:u"], 7],
  [6, "Reply", ["id:u", "code:i", "payload:p", "message:s"], 2],
  [7, "TryCast", ["id:u", "caller:id", "zone:id", "object:id", "interface:id"], 5],
  [8, "AddRef", ["id:u", "caller:id", "zone:id", "object:id", "kind:u", "requester:id"], 6],
  [9, "Release", ["caller:id", "zone:id", "object:id", "kind:u"], 4],
  [10, "ObjectReleased", ["zone:id", "object:id", "holder:id"], 3],
  [11, "TransportDown", ["zones:a"], 1],
  [12, "GetSchema", ["id:u", "caller:id", "zone:id", "object:id", "deprecated:b"], 4],
  [13, "NewZoneId", ["id:u"], 1],
  [14, "Close", [], 0],
  [15, "CloseAck", [], 0],
  [16, "Cancel", ["id:u"], 1],
  [17, "Ping", ["nonce:u"], 1],
  [18, "Pong", ["nonce:u"], 1],
];
const DEFAULTS = { id: 0n, u: 0, i: 0, b: false, s: "", p: null, a: [] };
const MESSAGES = new Map();
const TAGS = {};
for (const [tag, name, fields, required] of SCHEMAS) {
  const parsed = fields.map((f) => f.split(":"));
  MESSAGES.set(tag, { name, fields: parsed, required });
  TAGS[name] = tag;
}

function isUint(v) {
  return (typeof v === "number" && Number.isInteger(v) && v >= 0) || (typeof v === "bigint" && v >= 0n);
}

function field(kind, v) {
  switch (kind) {
    case "id":
      if (isUint(v)) return BigInt(v);
      break;
    case "u":
      if (isUint(v)) return v;
      break;
    case "i":
      if (typeof v === "number" ? Number.isInteger(v) : typeof v === "bigint") return v;
      break;
    case "b":
      if (typeof v === "boolean") return v;
      break;
    case "s":
      if (typeof v === "string") return v;
      break;
    case "p":
      if (v === null || v instanceof Uint8Array) return v;
      break;
    case "a":
      if (Array.isArray(v) && v.every(isUint)) return v;
      break;
  }
  return undefined;
}

/** A frame's bytes as a message object (`{type: "Call", id, caller, ...}`); throws if it does not fit. */
export function decodeMessage(frame) {
  const items = unpackMessage(frame);
  if (!Array.isArray(items) || items.length === 0) throw new Error("a message is a non-empty array");
  const schema = MESSAGES.get(items[0]);
  if (schema === undefined) throw new Error(`unknown message tag ${items[0]}`);
  if (items.length - 1 < schema.required) throw new Error(`${schema.name} is missing fields`);
  const message = { type: schema.name };
  schema.fields.forEach(([name, kind], i) => {
    const raw = items[i + 1];
    if (raw === undefined) {
      message[name] = kind === "a" ? [] : DEFAULTS[kind];
      return;
    }
    const value = field(kind, raw);
    if (value === undefined) throw new Error(`${schema.name}.${name} is not a valid ${kind}`);
    message[name] = value;
  });
  return message;
}

/** A message object as one frame: its 4-byte little-endian length, then MessagePack. */
export function encodeFrame(message) {
  const schema = MESSAGES.get(TAGS[message.type]);
  if (schema === undefined) throw new TypeError(`unknown message type ${message.type}`);
  const items = [TAGS[message.type]];
  for (const [name, kind] of schema.fields) {
    const v = message[name];
    items.push(v === undefined ? DEFAULTS[kind] : v);
  }
  const w = new Writer();
  w.pos = 4;
  pack(w, items);
  w.view.setUint32(0, w.pos - 4, true);
  return w.done();
}

/** Cuts a byte stream into frames; a WebSocket message may hold several, or part of one. */
export class FrameReader {
  constructor(maxFrameSize) {
    this.maxFrameSize = maxFrameSize;
    this.buffer = new Uint8Array(0);
  }

  /** The whole frames `chunk` completes; throws when a frame would exceed the limit. */
  push(chunk) {
    let data = chunk;
    if (this.buffer.length) {
      data = new Uint8Array(this.buffer.length + chunk.length);
      data.set(this.buffer);
      data.set(chunk, this.buffer.length);
    }
    const frames = [];
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let pos = 0;
    while (data.length - pos >= 4) {
      const size = view.getUint32(pos, true);
      if (size > this.maxFrameSize) {
        throw new RpcError(ErrorCode.LIMIT_EXCEEDED, `frame of ${size} bytes exceeds maxFrameSize ${this.maxFrameSize}`);
      }
      if (data.length - pos - 4 < size) break;
      frames.push(data.slice(pos + 4, pos + 4 + size));
      pos += 4 + size;
    }
    this.buffer = data.slice(pos);
    return frames;
  }
}

// ---------------------------------------------------------------- JSON with 64-bit integers

// JSON.parse turns integers beyond 2**53 into imprecise doubles, and zone and
// interface ids are such integers: text holding a run of 16 digits goes through a
// small parser that reads those integers as BigInts instead.

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class JsonParser {
  constructor(text, maxDepth) {
    this.text = text;
    this.pos = 0;
    this.maxDepth = maxDepth;
  }

  fail(what) {
    throw new SyntaxError(`${what} at position ${this.pos} of the JSON text`);
  }

  space() {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  value(depth) {
    this.space();
    const t = this.text;
    const c = t[this.pos];
    if (c === "{" || c === "[") {
      if (depth >= this.maxDepth) this.fail(`nested deeper than ${this.maxDepth}`);
      return c === "{" ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c === '"') return this.string();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (t.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(t);
    if (m === null) this.fail("unexpected character");
    this.pos += m[0].length;
    const n = Number(m[0]);
    if (!Number.isSafeInteger(n) && /^-?\d+$/.test(m[0])) return BigInt(m[0]);
    return n;
  }

  string() {
    const t = this.text;
    let end = this.pos + 1;
    for (;;) {
      end = t.indexOf('"', end);
      if (end < 0) this.fail("unterminated string");
      let backslashes = 0;
      while (t[end - 1 - backslashes] === "\\") backslashes++;
      if (backslashes % 2 === 0) break;
      end++;
    }
    const s = JSON.parse(t.slice(this.pos, end + 1)); // the escapes, as JSON defines them
    this.pos = end + 1;
    return s;
  }

  array(depth) {
    this.pos++;
    const out = [];
    this.space();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.space();
      const c = this.text[this.pos++];
      if (c === "]") return out;
      if (c !== ",") this.fail("expected , or ]");
    }
  }

  object(depth) {
    this.pos++;
    const out = {};
    this.space();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      this.space();
      if (this.text[this.pos] !== '"') this.fail("expected a key");
      const key = this.string();
      this.space();
      if (this.text[this.pos++] !== ":") this.fail("expected :");
      // defineProperty, as JSON.parse does: a key "__proto__" is data, not a prototype.
      Object.defineProperty(out, key, { value: this.value(depth), writable: true, enumerable: true, configurable: true });
      this.space();
      const c = this.text[this.pos++];
      if (c === "}") return out;
      if (c !== ",") this.fail("expected , or }");
    }
  }
}

/** Parse JSON text; integers beyond 2**53 become BigInts. */
export function parseJson(text, maxDepth = 64) {
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  const p = new JsonParser(text, maxDepth);
  const value = p.value(0);
  p.space();
  if (p.pos !== text.length) p.fail("trailing characters");
  return value;
}

/** JSON text of a plain value; BigInts are written as exact integers. */
export function stringifyJson(value) {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("JSON cannot hold NaN or Infinity");
      return JSON.stringify(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "true" : "false";
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value)) return `[${value.map(stringifyJson).join(",")}]`;
      if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
        throw new TypeError(`JSON holds plain objects only, not ${value.constructor?.name}`);
      }
      return `{${Object.keys(value)
        .map((k) => `${JSON.stringify(k)}:${stringifyJson(value[k])}`)
        .join(",")}}`;
    default:
      throw new TypeError(`JSON cannot hold a ${typeof value}`);
  }
}

// ---------------------------------------------------------------- types

// A type is a small descriptor the generated modules build (`types.uint32`,
// `types.list(types.string)`, a struct); `toJson` and `fromJson` walk a value
// along it, checking every field and naming the path of the first one that does
// not fit. The JSON shapes are those of Python Canopy's JSON profile.

const TYPE = Symbol("canopy.type");
const DOMAIN = Symbol("canopy.domain");

function int(width, lo, hi) {
  return { k: "int", width, lo, hi, big: typeof lo === "bigint" };
}

/** Builders of type descriptors, for generated modules. */
export const types = Object.freeze({
  bool: { k: "bool" },
  int8: int("int8", -0x80, 0x7f),
  uint8: int("uint8", 0, 0xff),
  int16: int("int16", -0x8000, 0x7fff),
  uint16: int("uint16", 0, 0xffff),
  int32: int("int32", -0x80000000, 0x7fffffff),
  uint32: int("uint32", 0, 0xffffffff),
  int64: int("int64", -(1n << 63n), (1n << 63n) - 1n),
  uint64: int("uint64", 0n, (1n << 64n) - 1n),
  int128: int("int128", -(1n << 127n), (1n << 127n) - 1n),
  uint128: int("uint128", 0n, (1n << 128n) - 1n),
  float: { k: "float", bits: 32 },
  double: { k: "float", bits: 64 },
  string: { k: "string" },
  json: { k: "json" },
  bytes: (min = null, max = null) => ({ k: "bytes", min, max }),
  list: (item, min = null, max = null) => ({ k: "list", item, min, max }),
  set: (item) => ({ k: "set", item }),
  map: (key, value) => ({ k: "map", key, value }),
  optional: (inner) => ({ k: "opt", inner }),
  variant: (...alternatives) => ({ k: "variant", alternatives }),
  /** `rpc::shared_ptr<I>`; `iface` is a function returning the interface's class. */
  shared: (iface) => ({ k: "ref", iface, kind: SHARED }),
  /** `rpc::optimistic_ptr<I>`. */
  optimistic: (iface) => ({ k: "ref", iface, kind: OPTIMISTIC }),
  /** An enum (or an error domain used as a value): its values travel as their names. */
  enumeration: (name, names) => ({ k: "enum", name, names: new Set(names) }),
  /** The descriptor of an `enumeration()` or `errors()` export. */
  of: (exported) => exported[TYPE],
});

/**
 * An enum as generated modules export it: a frozen object of its names.
 * `types.of(result)` is its type descriptor.
 */
export function enumeration(name, names) {
  const values = {};
  for (const n of names) values[n] = n;
  Object.defineProperty(values, TYPE, { value: types.enumeration(name, names) });
  return Object.freeze(values);
}

/** An IDL error domain: a frozen object of its codes by name (`calc_error.OVERFLOW === 1`). */
export function errors(name, codes) {
  const values = {};
  for (const [n, code] of Object.entries(codes)) values[n] = code;
  Object.defineProperty(values, TYPE, { value: types.enumeration(name, Object.keys(codes)) });
  Object.defineProperty(values, DOMAIN, {
    value: { name, codes: new Map(Object.entries(codes).map(([n, c]) => [c, n])) },
  });
  return Object.freeze(values);
}

/**
 * A struct type. `fields` is a function (the types it names may be defined later in
 * the module) returning `{name, type, default?, omit?}` records: `default` a function
 * making the IDL default, `omit` for an `rpc::optional` left out of the JSON when
 * null. A field with neither is required.
 */
export class StructType {
  #fields;
  #resolved = null;

  constructor(name, id, fields) {
    this.k = "struct";
    this.name = name;
    this.id = id;
    this.#fields = fields;
  }

  /** The fields, in order (the base struct's first). */
  get fields() {
    this.#resolved ??= this.#fields().map((f) => Object.freeze({ ...f }));
    return this.#resolved;
  }

  /** A value of this struct: `init`'s fields, and the IDL defaults of the others. */
  create(init = {}) {
    const out = {};
    for (const f of this.fields) {
      if (Object.hasOwn(init, f.name) && init[f.name] !== undefined) out[f.name] = init[f.name];
      else if (f.default) out[f.name] = f.default();
      else if (f.omit || f.type.k === "opt" || f.type.k === "ref") out[f.name] = null;
    }
    return out;
  }
}

/** A struct type for generated modules (see `StructType`). */
export function struct(name, id, fields) {
  return new StructType(name, id, fields);
}

// ---------------------------------------------------------------- values to JSON and back

class Invalid extends Error {
  constructor(message) {
    super(message);
    this.path = [];
  }
}

function at(exc, step) {
  if (exc instanceof Invalid) exc.path.push(step);
  return exc;
}

function kindOf(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof Uint8Array) return "Uint8Array";
  if (typeof v === "object") return v.constructor?.name ?? "object";
  return typeof v;
}

function checkLength(n, min, max) {
  if (min !== null && n < min) throw new Invalid(`expected a length >= ${min}, got ${n}`);
  if (max !== null && n > max) throw new Invalid(`expected a length <= ${max}, got ${n}`);
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(text) {
  if (!B64.test(text)) throw new Invalid("expected base64 (standard alphabet, padded)");
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Encoding walks: `refs` turns an interface value into `{zone, object, interface, kind}`. */
function encodeValue(t, v, refs) {
  switch (t.k) {
    case "int": {
      if (typeof v === "number" && Number.isInteger(v)) {
        if (t.big && !Number.isSafeInteger(v)) throw new Invalid(`${t.width}: ${v} is not exact; pass a BigInt`);
        if (v < t.lo || v > t.hi) throw new Invalid(`expected ${t.width}, got ${v}: out of range`);
        return String(v);
      }
      if (typeof v === "bigint") {
        if (v < BigInt(t.lo) || v > BigInt(t.hi)) throw new Invalid(`expected ${t.width}, got ${v}: out of range`);
        return v.toString();
      }
      throw new Invalid(`expected ${t.width}, got ${kindOf(v)}`);
    }
    case "float":
      if (typeof v !== "number") throw new Invalid(`expected a number, got ${kindOf(v)}`);
      if (Number.isNaN(v)) return '"NaN"';
      if (!Number.isFinite(v)) return v > 0 ? '"Infinity"' : '"-Infinity"';
      return Object.is(v, -0) ? "-0.0" : String(v);
    case "bool":
      if (typeof v !== "boolean") throw new Invalid(`expected a boolean, got ${kindOf(v)}`);
      return v ? "true" : "false";
    case "string":
      if (typeof v !== "string") throw new Invalid(`expected a string, got ${kindOf(v)}`);
      return JSON.stringify(v);
    case "bytes": {
      const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : v;
      if (!(bytes instanceof Uint8Array)) throw new Invalid(`expected a Uint8Array, got ${kindOf(v)}`);
      checkLength(bytes.length, t.min, t.max);
      return `"${toBase64(bytes)}"`;
    }
    case "list": {
      if (!Array.isArray(v)) throw new Invalid(`expected an array, got ${kindOf(v)}`);
      checkLength(v.length, t.min, t.max);
      return `[${v.map((item, i) => step(t.item, item, refs, `[${i}]`)).join(",")}]`;
    }
    case "set": {
      if (!(v instanceof Set) && !Array.isArray(v)) throw new Invalid(`expected a Set, got ${kindOf(v)}`);
      const items = [...v];
      if (items.every((x) => typeof x === "number" || typeof x === "bigint" || typeof x === "string")) {
        items.sort(compare); // the same set writes the same text
      }
      return `[${items.map((item, i) => step(t.item, item, refs, `[${i}]`)).join(",")}]`;
    }
    case "map": {
      let entries;
      if (v instanceof Map) entries = [...v];
      else if (v !== null && typeof v === "object" && !Array.isArray(v) && t.key.k === "string") {
        entries = Object.entries(v);
      } else throw new Invalid(`expected a Map, got ${kindOf(v)}`);
      if (t.key.k === "string") {
        return `{${entries
          .map(([k, x]) => `${encodeValue(t.key, k, refs)}:${step(t.value, x, refs, `[${JSON.stringify(k)}]`)}`)
          .join(",")}}`;
      }
      return `[${entries
        .map(([k, x], i) => `[${step(t.key, k, refs, `[${i}]`)},${step(t.value, x, refs, `[${i}]`)}]`)
        .join(",")}]`;
    }
    case "opt":
      return v === null || v === undefined ? "null" : encodeValue(t.inner, v, refs);
    case "variant": {
      if (v === null || typeof v !== "object" || !Number.isInteger(v.index) || !(v.index in t.alternatives)) {
        throw new Invalid(`expected a variant {index, value} with index 0..${t.alternatives.length - 1}`);
      }
      return `{"${v.index}":${step(t.alternatives[v.index], v.value, refs, `["${v.index}"]`)}}`;
    }
    case "enum":
      if (typeof v !== "string" || !t.names.has(v)) {
        throw new Invalid(`expected a name of ${t.name} (${[...t.names].join(", ")}), got ${JSON.stringify(v) ?? kindOf(v)}`);
      }
      return JSON.stringify(v);
    case "ref": {
      if (v === null || v === undefined) return "null";
      const r = refs(v, t);
      return `{"zone":${r.zone},"object":${r.object},"interface":${r.interface},"kind":${r.kind}}`;
    }
    case "json":
      try {
        return stringifyJson(v === undefined ? null : v);
      } catch (e) {
        throw new Invalid(e.message);
      }
    case "struct":
      return encodeStruct(t, v, refs);
  }
  throw new Invalid(`unknown type ${t.k}`);
}

function step(t, v, refs, where) {
  try {
    return encodeValue(t, v, refs);
  } catch (e) {
    throw at(e, where);
  }
}

function encodeStruct(t, v, refs) {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new Invalid(`expected ${t.name} (an object), got ${kindOf(v)}`);
  }
  const parts = [];
  for (const f of t.fields) {
    let x = Object.hasOwn(v, f.name) ? v[f.name] : undefined;
    if (x === undefined) {
      if (f.default) x = f.default();
      else if (f.omit) continue;
      else if (f.type.k === "opt" || f.type.k === "ref") x = null;
      else throw at(new Invalid(`missing required field ${f.name}`), `.${f.name}`);
    } else if (x === null && f.omit) continue;
    parts.push(`${JSON.stringify(f.name)}:${step(f.type, x, refs, `.${f.name}`)}`);
  }
  return `{${parts.join(",")}}`;
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Decoding walks: `refs` turns `{zone, object, interface, kind}` into a proxy or an object. */
function decodeValue(t, v, refs) {
  switch (t.k) {
    case "int": {
      const n = typeof v === "number" && Number.isInteger(v) ? v : typeof v === "bigint" ? v : null;
      if (n === null) throw new Invalid(`expected ${t.width}, got ${kindOf(v)}`);
      if (t.big) {
        const b = BigInt(n);
        if (b < t.lo || b > t.hi) throw new Invalid(`expected ${t.width}, got ${n}: out of range`);
        return b;
      }
      if (typeof n === "bigint" || n < t.lo || n > t.hi) throw new Invalid(`expected ${t.width}, got ${n}: out of range`);
      return n;
    }
    case "float":
      if (typeof v === "number") return v;
      if (typeof v === "bigint") return Number(v);
      if (v === "NaN") return NaN;
      if (v === "Infinity") return Infinity;
      if (v === "-Infinity") return -Infinity;
      throw new Invalid(`expected a number, got ${kindOf(v)}`);
    case "bool":
      if (typeof v !== "boolean") throw new Invalid(`expected a boolean, got ${kindOf(v)}`);
      return v;
    case "string":
      if (typeof v !== "string") throw new Invalid(`expected a string, got ${kindOf(v)}`);
      return v;
    case "bytes": {
      if (typeof v !== "string") throw new Invalid(`expected base64 bytes, got ${kindOf(v)}`);
      const bytes = fromBase64(v);
      checkLength(bytes.length, t.min, t.max);
      return bytes;
    }
    case "list": {
      if (!Array.isArray(v)) throw new Invalid(`expected an array, got ${kindOf(v)}`);
      checkLength(v.length, t.min, t.max);
      return v.map((item, i) => back(t.item, item, refs, `[${i}]`));
    }
    case "set":
      if (!Array.isArray(v)) throw new Invalid(`expected an array, got ${kindOf(v)}`);
      return new Set(v.map((item, i) => back(t.item, item, refs, `[${i}]`)));
    case "map": {
      const out = new Map();
      if (t.key.k === "string") {
        if (!isPlainObject(v)) throw new Invalid(`expected an object, got ${kindOf(v)}`);
        for (const k of Object.keys(v)) out.set(k, back(t.value, v[k], refs, `[${JSON.stringify(k)}]`));
        return out;
      }
      if (!Array.isArray(v)) throw new Invalid(`expected an array of [key, value] pairs, got ${kindOf(v)}`);
      v.forEach((pair, i) => {
        if (!Array.isArray(pair) || pair.length !== 2) throw at(new Invalid("expected a [key, value] pair"), `[${i}]`);
        out.set(back(t.key, pair[0], refs, `[${i}]`), back(t.value, pair[1], refs, `[${i}]`));
      });
      return out;
    }
    case "opt":
      return v === null ? null : decodeValue(t.inner, v, refs);
    case "variant": {
      const keys = isPlainObject(v) ? Object.keys(v) : [];
      if (keys.length !== 1 || !/^\d+$/.test(keys[0]) || !(Number(keys[0]) in t.alternatives)) {
        throw new Invalid(`expected a variant: an object with one key out of 0..${t.alternatives.length - 1}`);
      }
      const index = Number(keys[0]);
      return { index, value: back(t.alternatives[index], v[keys[0]], refs, `["${index}"]`) };
    }
    case "enum":
      if (typeof v !== "string" || !t.names.has(v)) {
        throw new Invalid(`expected a name of ${t.name} (${[...t.names].join(", ")}), got ${kindOf(v)}`);
      }
      return v;
    case "ref": {
      if (v === null) return null;
      if (!isPlainObject(v)) throw new Invalid(`expected an object reference, got ${kindOf(v)}`);
      const ref = {};
      for (const name of ["zone", "object", "interface", "kind"]) {
        const x = v[name] ?? (name === "kind" ? 0 : undefined);
        if (!isUint(x)) throw at(new Invalid(`expected an unsigned integer, got ${kindOf(x)}`), `.${name}`);
        ref[name] = name === "kind" ? Number(x) : BigInt(x);
      }
      return refs(ref, t);
    }
    case "json":
      return v;
    case "struct": {
      if (!isPlainObject(v)) throw new Invalid(`expected ${t.name} (an object), got ${kindOf(v)}`);
      const out = {};
      for (const f of t.fields) {
        if (Object.hasOwn(v, f.name)) out[f.name] = back(f.type, v[f.name], refs, `.${f.name}`);
        else if (f.default) out[f.name] = f.default();
        else if (f.omit) out[f.name] = null;
        else throw at(new Invalid(`missing required field ${f.name}`), `.${f.name}`);
      }
      return out;
    }
  }
  throw new Invalid(`unknown type ${t.k}`);
}

function back(t, v, refs, where) {
  try {
    return decodeValue(t, v, refs);
  } catch (e) {
    throw at(e, where);
  }
}

function failure(e, verb, name) {
  if (e instanceof Invalid) {
    const where = e.path.length ? ` - at $${e.path.reverse().join("")}` : "";
    return invalid(`cannot ${verb} ${name}: ${e.message}${where}`);
  }
  return e;
}

function noRefs() {
  throw new Invalid("an interface reference cannot travel here");
}

/** `value` as Canopy JSON text of type `t` (no interface references). */
export function toJson(t, value) {
  try {
    return encodeValue(t, value, noRefs);
  } catch (e) {
    throw failure(e, "encode", t.name ?? t.k);
  }
}

/** The value of type `t` Canopy JSON `text` holds (no interface references). */
export function fromJson(t, text) {
  let parsed;
  try {
    parsed = parseJson(text);
  } catch (e) {
    throw invalid(`cannot decode ${t.name ?? t.k}: ${e.message}`);
  }
  try {
    return decodeValue(t, parsed, noRefs);
  } catch (e) {
    throw failure(e, "decode", t.name ?? t.k);
  }
}

// ---------------------------------------------------------------- interfaces

const IFACE = Symbol("canopy.interface");
const PRIVATE = Symbol("canopy.private");

/**
 * Give a generated proxy class its interface: `id` (a BigInt fingerprint), `name`,
 * `bases` (a function returning base classes) and `methods` (a function returning
 * `method()` records). Names are resolved at the first call, so classes may refer to
 * classes defined later in the module.
 */
export function defineInterface(cls, { id, name, bases, methods }) {
  const info = { cls, id, name, _bases: bases, _methods: methods, resolved: null };
  Object.defineProperty(cls, IFACE, { value: info });
  Object.defineProperty(cls, "interfaceId", { value: id, enumerable: true });
  Object.defineProperty(cls, "interfaceName", { value: name, enumerable: true });
  return cls;
}

/**
 * A method of an interface: its id, IDL name, JavaScript name, whether it is a
 * `[post]`, its `[tag]`, its inputs and outputs as `[name, type]` pairs, and the
 * error domain it returns (an `errors()` export), if any.
 */
export function method(id, name, js, { post = false, tag = 0, inputs = [], outputs = [], raises = null } = {}) {
  return {
    id,
    name,
    js,
    post,
    tag,
    inputs,
    outputs,
    raises: raises?.[DOMAIN] ?? null,
    in: struct(`${name} [in]`, 0n, () => inputs.map(([n, type]) => ({ name: n, type }))),
    out: struct(`${name} [out]`, 0n, () => outputs.map(([n, type]) => ({ name: n, type }))),
  };
}

function describe(cls) {
  const info = cls?.[IFACE];
  if (info === undefined) throw new TypeError(`${cls?.name ?? cls} is not a generated Canopy interface`);
  if (info.resolved === null) {
    const bases = info._bases();
    const methods = new Map(info._methods().map((m) => [m.id, m]));
    // Every interface an object exported as `cls` implements: itself and its bases.
    const all = new Map([[info.id, info]]);
    for (const b of bases) for (const [id, i] of describe(b).all) all.set(id, i);
    info.resolved = { bases, methods, all };
  }
  return info.resolved;
}

function interfaceInfo(cls) {
  describe(cls);
  return cls[IFACE];
}

function methodOf(cls, id) {
  const m = describe(cls).methods.get(id);
  if (m === undefined) throw new TypeError(`${cls.name} has no method ${id}`);
  return m;
}

const declared = new WeakMap(); // implementation object -> interface classes it declares

/**
 * Declare the interfaces `obj` implements, so that the peer can cast it to any of
 * them; an object passed as an interface implements that interface (and its bases)
 * without this.
 */
export function implement(obj, ...classes) {
  const list = declared.get(obj) ?? [];
  for (const cls of classes) {
    interfaceInfo(cls);
    list.push(cls);
  }
  declared.set(obj, list);
  return obj;
}

// ---------------------------------------------------------------- proxies

const handles = new WeakMap(); // proxy -> {remote, kind, disposed}

// A proxy the page forgot to dispose gives its reference back when it is collected.
const collected =
  typeof FinalizationRegistry === "function" ? new FinalizationRegistry((held) => releaseHandle(held)) : null;

/**
 * Base of every generated proxy class: a handle on one reference to a remote object.
 * Each proxy a call returns is a handle of its own: dispose each once done with it
 * (or let a `using` declaration do so); closing the connection disposes them all.
 */
export class Proxy {
  constructor(token, remote, kind) {
    if (token !== PRIVATE) throw new TypeError("proxies come from calls and connect(), not from new");
    const held = { remote, kind, disposed: false };
    handles.set(this, held);
    remote.live[kind]++;
    collected?.register(this, held, held);
  }

  /** Give this proxy's reference back; further calls through it fail. */
  dispose() {
    const held = handles.get(this);
    if (held !== undefined && !held.disposed) {
      collected?.unregister(held);
      releaseHandle(held);
    }
  }

  /** The connection this proxy's object is reached through. */
  get connection() {
    return handles.get(this).remote.link;
  }

  /** Whether this proxy was disposed, or its object or connection is gone. */
  get disposed() {
    const held = handles.get(this);
    return held.disposed || held.remote.gone;
  }
}

if (typeof Symbol.dispose === "symbol") {
  Object.defineProperty(Proxy.prototype, Symbol.dispose, {
    value() {
      this.dispose();
    },
  });
}

function releaseHandle(held) {
  if (held.disposed) return;
  held.disposed = true;
  const { remote, kind } = held;
  remote.live[kind]--;
  remote.link.dropped(remote, kind);
}

function handleOf(proxy, m) {
  const held = handles.get(proxy);
  if (held === undefined) throw new TypeError(`${m.name}: not a Canopy proxy`);
  if (held.disposed) throw new RpcError(ErrorCode.OBJECT_GONE, `${m.name}: the proxy was disposed`);
  if (held.remote.gone) {
    throw new RpcError(ErrorCode.OBJECT_GONE, `${m.name}: the object or its connection is gone`);
  }
  return held;
}

/**
 * Call method `id` of interface `cls` through `proxy` (what generated methods do): a
 * promise of its result, or, for a `[post]`, undefined once it is sent.
 */
export function invoke(proxy, cls, id, args) {
  const m = methodOf(cls, id);
  if (m.post) {
    const held = handleOf(proxy, m); // a post that cannot be sent throws at once
    held.remote.link.post(held.remote, cls[IFACE].id, m, args);
    return undefined;
  }
  try {
    const held = handleOf(proxy, m);
    return held.remote.link.call(held.remote, cls[IFACE].id, m, args);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * `proxy` as interface `cls` of the same object: a new proxy (dispose it on its own),
 * or INVALID_CAST if the object does not implement it.
 */
export async function cast(proxy, cls) {
  const info = interfaceInfo(cls);
  const held = handleOf(proxy, { name: `cast to ${info.name}` });
  const remote = held.remote;
  if (!(proxy instanceof cls)) {
    const reply = await remote.link.request({
      type: "TryCast",
      caller: remote.link.zone.id,
      zone: remote.zone,
      object: remote.object,
      interface: info.id,
    });
    if (reply.code !== 0) {
      const e = errorFromCode(reply.code, reply.message);
      if (reply.code === ErrorCode.INVALID_CAST) e.message = `the object does not implement ${info.name}`;
      throw e;
    }
  }
  if (remote.gone) throw new RpcError(ErrorCode.OBJECT_GONE, "cast: the object or its connection is gone");
  return new cls(PRIVATE, remote, held.kind);
}

// ---------------------------------------------------------------- zones

function randomZoneId() {
  const words = new Uint32Array(2);
  for (;;) {
    crypto.getRandomValues(words);
    const id = (BigInt(words[0]) << 32n) | BigInt(words[1]);
    if (id !== 0n) return id;
  }
}

/**
 * The page as a Canopy zone: the objects it exports to its peers, the remote objects
 * it holds, its connections. Most pages need only the default zone `connect` uses.
 */
export class Zone {
  constructor({ id = null, maxExportedObjects = 100000 } = {}) {
    this.id = id === null ? randomZoneId() : BigInt(id);
    this.maxExportedObjects = maxExportedObjects;
    this.links = new Map(); // peer zone -> Connection
    this.stubs = new Map(); // object id -> stub
    this.stubOf = new WeakMap(); // object -> its stub, while it lives
    this.nextObject = 1n;
    this.held = new Map(); // peer zone -> how many of this zone's objects it holds
    this.died =
      typeof FinalizationRegistry === "function" ? new FinalizationRegistry((stub) => this.objectDied(stub)) : null;
  }

  /** Link to the server at `url` and return a proxy of its root object as `cls`. */
  async connect(url, cls, options = {}) {
    return Connection.open(this, url, cls, options);
  }

  /** Object id -> [[holding zone, shared, optimistic], ...]: for tests and tools. */
  exported() {
    const out = new Map();
    for (const [id, stub] of this.stubs) out.set(id, [...stub.holders].map(([z, [s, o]]) => [z, s, o]));
    return out;
  }

  /** [zone, object] of every remote object this zone holds a reference to. */
  imported() {
    const out = [];
    for (const link of this.links.values()) {
      for (const r of link.remotes.values()) if (r.held[0] || r.held[1] || r.live[0] || r.live[1]) out.push([r.zone, r.object]);
    }
    return out;
  }

  export(obj, cls) {
    if (obj === null || (typeof obj !== "object" && typeof obj !== "function")) {
      throw invalid(`cannot send ${kindOf(obj)} as ${cls.interfaceName}: pass an object implementing it`);
    }
    const info = interfaceInfo(cls);
    for (const i of describe(cls).all.values()) {
      for (const m of describe(i.cls).methods.values()) {
        if (typeof obj[m.js] !== "function") {
          throw invalid(`cannot send the object as ${info.name}: it has no method ${m.js}`);
        }
      }
    }
    let stub = this.stubOf.get(obj);
    if (stub === undefined || this.stubs.get(stub.id) !== stub) {
      stub = { id: this.nextObject++, weak: new WeakRef(obj), strong: null, interfaces: new Map(), holders: new Map() };
      for (const c of declared.get(obj) ?? []) for (const [id, i] of describe(c).all) stub.interfaces.set(id, i);
      this.stubs.set(stub.id, stub);
      this.stubOf.set(obj, stub);
      this.died?.register(obj, stub, stub);
    }
    for (const [id, i] of describe(cls).all) stub.interfaces.set(id, i);
    return stub;
  }

  target(stub) {
    return stub.strong ?? stub.weak.deref() ?? null;
  }

  grant(stub, zone, kind) {
    let counts = stub.holders.get(zone);
    if (counts === undefined) {
      const held = this.held.get(zone) ?? 0;
      if (held >= this.maxExportedObjects) {
        throw new RpcError(ErrorCode.LIMIT_EXCEEDED, `zone ${zone} already holds ${held} objects of this page`);
      }
      this.held.set(zone, held + 1);
      counts = [0, 0];
      stub.holders.set(zone, counts);
    }
    counts[kind]++;
    if (kind === SHARED) stub.strong = this.target(stub);
  }

  released(stub, zone, kind) {
    const counts = stub.holders.get(zone);
    if (counts === undefined || counts[kind] <= 0) return; // an optimistic release may come late
    counts[kind]--;
    if (counts[0] === 0 && counts[1] === 0) {
      stub.holders.delete(zone);
      const left = (this.held.get(zone) ?? 1) - 1;
      if (left > 0) this.held.set(zone, left);
      else this.held.delete(zone);
    }
    let shared = 0;
    for (const [s] of stub.holders.values()) shared += s;
    if (shared === 0) stub.strong = null;
    if (stub.holders.size === 0) this.forget(stub);
    else if (shared === 0 && stub.weak.deref() === undefined) this.objectDied(stub);
  }

  forget(stub) {
    if (this.stubs.get(stub.id) === stub) this.stubs.delete(stub.id);
    this.died?.unregister(stub);
  }

  /** The object behind `stub` is gone: its optimistic holders are told. */
  objectDied(stub) {
    if (this.stubs.get(stub.id) !== stub) return;
    this.forget(stub);
    for (const [zone, [, optimistic]] of stub.holders) {
      const left = (this.held.get(zone) ?? 1) - 1;
      if (left > 0) this.held.set(zone, left);
      else this.held.delete(zone);
      if (optimistic > 0) this.links.get(zone)?.send({ type: "ObjectReleased", zone: this.id, object: stub.id, holder: zone });
    }
    stub.holders.clear();
  }

  /** `zone` is unreachable: every reference it held to this zone's objects goes. */
  peerLost(zone) {
    for (const stub of [...this.stubs.values()]) {
      const counts = stub.holders.get(zone);
      if (counts === undefined) continue;
      while (counts[0] > 0 || counts[1] > 0) this.released(stub, zone, counts[0] > 0 ? SHARED : OPTIMISTIC);
    }
    this.held.delete(zone);
  }
}

let defaultZone = null;

/** The zone `connect` uses, made at its first use. */
export function pageZone() {
  defaultZone ??= new Zone();
  return defaultZone;
}

/**
 * Link the page's zone to the Canopy server at `url` (ws:// or wss://) and return a
 * proxy of its root object as interface `cls`. Dispose the proxy, or close its
 * `connection`, when done.
 */
export function connect(url, cls, options = {}) {
  return pageZone().connect(url, cls, options);
}

// ---------------------------------------------------------------- connections

const DEFAULTS_OPTIONS = {
  handshakeTimeout: 10000,
  callTimeout: 30000,
  closeTimeout: 1000,
  maxFrameSize: 16 * 1024 * 1024,
  maxCallsInFlight: 1024,
  maxDepth: 64,
  onError: (error) => console.error("canopy:", error),
};

function message(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * One link from the page's zone to a server's zone over a WebSocket. `closed` resolves
 * with `{clean, reason}` when it ends, however it ends.
 */
export class Connection {
  /** Open a link and return a proxy of the server's root as `cls` (see `connect`). */
  static async open(zone, url, cls, options = {}) {
    const info = interfaceInfo(cls);
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== "function") {
      throw new RpcError(ErrorCode.TRANSPORT_ERROR, "no WebSocket: pass options.WebSocket (Node 20 needs --experimental-websocket)");
    }
    const link = new Connection(zone, new WS(url), url, { ...DEFAULTS_OPTIONS, ...options });
    const welcome = await link.opened;
    if (welcome.object === 0n) {
      link.abort("the server offers no root object");
      throw new RpcError(ErrorCode.INVALID_CAST, `the server at ${url} offers no root object`);
    }
    if (welcome.interface !== info.id) {
      // The root was offered as another interface: ask whether it is this one too.
      const reply = await link
        .request({ type: "TryCast", caller: zone.id, zone: welcome.zone, object: welcome.object, interface: info.id })
        .catch((e) => e);
      if (reply.code !== 0) {
        await link.close(); // the server takes its root back
        if (reply instanceof Error && reply.code !== ErrorCode.INVALID_CAST) throw reply;
        throw new RpcError(ErrorCode.INVALID_CAST, `the root served at ${url} does not implement ${info.name}`);
      }
    }
    const remote = link.remote(welcome.zone, welcome.object);
    remote.held[SHARED] = true; // the server granted this zone one reference to its root
    const root = new cls(PRIVATE, remote, SHARED);
    return root;
  }

  constructor(zone, socket, url, options) {
    this.zone = zone;
    this.url = url;
    this.options = options;
    this.peer = 0n;
    this.state = "handshake"; // -> open -> closing -> closed
    this.remotes = new Map(); // "zone:object" -> remote object held through this link
    this.pending = new Map(); // request id -> {resolve, reject, ...}
    this.abandoned = new Map(); // calls that timed out -> their method: late replies are released
    this.inbox = []; // calls and posts waiting behind a post that is still running
    this.busy = false;
    this.inFlight = 0;
    this.nextId = 1;
    this.frames = new FrameReader(options.maxFrameSize);
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    let opened;
    this.opened = new Promise((resolve, reject) => (opened = { resolve, reject }));
    this.opened.catch(() => {}); // read by open(); never an unhandled rejection
    this._opened = opened;
    let ended;
    this.closed = new Promise((resolve) => (ended = resolve));
    this._ended = ended;
    this._timer = setTimeout(() => this.abort(`the handshake did not complete within ${options.handshakeTimeout} ms`), options.handshakeTimeout);
    socket.onopen = () => this.write({ type: "Hello", versions: [PROTOCOL_VERSION], encodings: [JSON_ENCODING], zone: zone.id });
    socket.onmessage = (event) => this.received(event.data);
    socket.onerror = () => {}; // a close event follows, and says more
    socket.onclose = (event) => {
      const clean = this.state === "closing";
      this.finish(clean, clean ? "" : `the WebSocket closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`);
    };
  }

  /** The zone at the other end. */
  get peerZone() {
    return this.peer;
  }

  // -- sending

  write(message) {
    if (this.socket.readyState !== 1) return false;
    this.socket.send(encodeFrame(message));
    return true;
  }

  send(message) {
    if (this.state !== "open") {
      throw new RpcError(ErrorCode.TRANSPORT_ERROR, `the connection to ${this.url} is ${this.state}`);
    }
    this.write(message);
  }

  /** Send a request (`id` filled in) and resolve with its Reply, or CALL_TIMEOUT. */
  request(message) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timeout = this.options.callTimeout;
      const expire = () => {
        this.pending.delete(id);
        reject(new RpcError(ErrorCode.CALL_TIMEOUT, `${message.type}: no reply within ${timeout} ms`));
      };
      const timer = timeout === null ? null : setTimeout(expire, timeout);
      this.pending.set(id, { resolve, reject, timer, reply: (r) => r });
      try {
        this.send({ ...message, id });
      } catch (e) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(e);
      }
    });
  }

  call(remote, iface, m, args) {
    return new Promise((resolve, reject) => {
      let payload;
      try {
        payload = this.encodePayload(m.in, m.name, "encode the arguments of", argsRecord(m, args));
      } catch (e) {
        reject(e);
        return;
      }
      const id = this.nextId++;
      const timeout = this.options.callTimeout;
      const entry = {
        resolve,
        reject,
        args, // the arguments' objects stay alive until the reply
        reply: (r) => this.result(m, r),
        timer: timeout === null ? null : setTimeout(() => this.expire(id, m, timeout), timeout),
      };
      this.pending.set(id, entry);
      try {
        this.send({
          type: "Call",
          id,
          caller: this.zone.id,
          zone: remote.zone,
          object: remote.object,
          interface: iface,
          method: m.id,
          encoding: JSON_ENCODING,
          payload,
          tag: m.tag,
          timeout_ms: 0,
        });
      } catch (e) {
        this.pending.delete(id);
        clearTimeout(entry.timer);
        reject(e);
      }
    });
  }

  post(remote, iface, m, args) {
    const payload = this.encodePayload(m.in, m.name, "encode the arguments of", argsRecord(m, args));
    this.send({
      type: "Post",
      caller: this.zone.id,
      zone: remote.zone,
      object: remote.object,
      interface: iface,
      method: m.id,
      encoding: JSON_ENCODING,
      payload,
      tag: m.tag,
    });
  }

  expire(id, m, timeout) {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.pending.delete(id);
    this.abandoned.set(id, m);
    if (this.state === "open") this.write({ type: "Cancel", id });
    entry.reject(new RpcError(ErrorCode.CALL_TIMEOUT, `${m.name}: no reply from zone ${this.peer} within ${timeout} ms`));
  }

  encodePayload(record, name, verb, value) {
    let text;
    try {
      text = encodeValue(record, value, (v, t) => this.referenceFor(v, t));
    } catch (e) {
      throw failure(e, verb, name);
    }
    return utf8.encode(text); // written as a MessagePack bin: the JSON payload
  }

  decodePayload(record, name, verb, payload, made) {
    if (!(payload instanceof Uint8Array)) {
      throw new RpcError(ErrorCode.INCOMPATIBLE_SERIALISATION, `cannot ${verb} ${name}: the payload is not JSON`);
    }
    let parsed;
    try {
      parsed = parseJson(utf8Strict.decode(payload), this.options.maxDepth);
    } catch (e) {
      throw invalid(`cannot ${verb} ${name}: ${message(e)}`);
    }
    try {
      return decodeValue(record, parsed, (ref, t) => this.objectFor(ref, t, made));
    } catch (e) {
      throw failure(e, verb, name);
    }
  }

  result(m, reply, made = []) {
    if (reply.code !== 0) throw errorFromCode(reply.code, reply.message, m);
    try {
      const out = this.decodePayload(m.out, m.name, "decode the results of", reply.payload, made);
      if (m.outputs.length === 0) return undefined;
      if (m.outputs.length === 1) return out[m.outputs[0][0]];
      return out;
    } catch (e) {
      for (const p of made) p.dispose();
      throw e;
    }
  }

  // -- references

  remote(zone, object) {
    const key = `${zone}:${object}`;
    let r = this.remotes.get(key);
    if (r === undefined || r.gone) {
      r = { zone, object, link: this, held: [false, false], live: [0, 0], gone: false, key };
      this.remotes.set(key, r);
    }
    return r;
  }

  /** What hands `value` to the peer as interface `t.iface()`. */
  referenceFor(value, t) {
    const cls = t.iface();
    const info = interfaceInfo(cls);
    if (value instanceof Proxy) {
      const held = handles.get(value);
      if (held.disposed || held.remote.gone) throw new Invalid("the proxy was disposed, or its object is gone");
      if (held.remote.zone !== this.peer) {
        throw new RpcError(ErrorCode.ZONE_NOT_SUPPORTED, "a proxy of one connection cannot be passed over another");
      }
      return { zone: held.remote.zone, object: held.remote.object, interface: info.id, kind: t.kind };
    }
    const stub = this.zone.export(value, cls);
    this.zone.grant(stub, this.peer, t.kind);
    return { zone: this.zone.id, object: stub.id, interface: info.id, kind: t.kind };
  }

  /** What a reference received from the peer stands for here: a proxy, or our own object. */
  objectFor(ref, t, made) {
    const cls = t.iface();
    if (ref.zone === this.zone.id) {
      const stub = this.zone.stubs.get(ref.object);
      const target = stub === undefined ? null : this.zone.target(stub);
      if (target === null) throw new RpcError(ErrorCode.OBJECT_GONE, `object ${ref.object} of this page no longer exists`);
      return target;
    }
    if (ref.zone !== this.peer) {
      throw new RpcError(ErrorCode.ZONE_NOT_SUPPORTED, `a reference to zone ${ref.zone}, which this connection does not reach`);
    }
    const kind = ref.kind === OPTIMISTIC ? OPTIMISTIC : SHARED;
    const remote = this.remote(ref.zone, ref.object);
    if (remote.held[kind]) {
      // One reference of each kind is enough: give the extra one back.
      this.write({ type: "Release", caller: this.zone.id, zone: ref.zone, object: ref.object, kind });
    } else remote.held[kind] = true;
    const proxy = new cls(PRIVATE, remote, kind);
    made.push(proxy);
    return proxy;
  }

  /** A proxy of `remote` was disposed: the last one of its kind gives the reference back. */
  dropped(remote, kind) {
    if (remote.live[kind] === 0 && remote.held[kind] && !remote.gone) {
      remote.held[kind] = false;
      if (this.state === "open") {
        this.write({ type: "Release", caller: this.zone.id, zone: remote.zone, object: remote.object, kind });
      }
    }
    if (!remote.live[0] && !remote.live[1] && !remote.held[0] && !remote.held[1] && this.remotes.get(remote.key) === remote) {
      this.remotes.delete(remote.key);
    }
  }

  // -- receiving

  received(data) {
    if (typeof data === "string") {
      this.abort("the server sent a text WebSocket message; Canopy carries binary messages only");
      return;
    }
    let frames;
    try {
      frames = this.frames.push(new Uint8Array(data));
    } catch (e) {
      this.abort(message(e));
      return;
    }
    for (const frame of frames) {
      if (this.state === "closed") return;
      let m;
      try {
        m = decodeMessage(frame);
      } catch (e) {
        this.abort(`malformed frame from the server: ${message(e)}`);
        return;
      }
      try {
        this.handle(m);
      } catch (e) {
        this.abort(`handling ${m.type} failed: ${message(e)}`);
        return;
      }
    }
  }

  handle(m) {
    if (this.state === "handshake") {
      this.handshake(m);
      return;
    }
    if (this.state === "closing" && m.type !== "Close" && m.type !== "CloseAck") {
      return; // this side said goodbye: its counts are settled, nothing more is answered
    }
    switch (m.type) {
      case "Reply":
        return this.reply(m);
      case "Call":
      case "Post":
        return this.dispatch(m);
      case "Release":
        if (m.caller === this.peer) {
          const stub = this.zone.stubs.get(m.object);
          if (stub !== undefined) this.zone.released(stub, m.caller, m.kind === OPTIMISTIC ? OPTIMISTIC : SHARED);
        }
        return;
      case "AddRef":
        return this.write({ type: "Reply", id: m.id, code: this.addRef(m) });
      case "TryCast": {
        const found = this.find(m.caller, m.object);
        const code = typeof found === "number" ? found : found.interfaces.has(m.interface) ? 0 : ErrorCode.INVALID_CAST;
        return this.write({ type: "Reply", id: m.id, code });
      }
      case "ObjectReleased": {
        const r = this.remotes.get(`${m.zone}:${m.object}`);
        if (r !== undefined) {
          r.gone = true;
          r.held[OPTIMISTIC] = false;
        }
        return;
      }
      case "TransportDown":
        for (const z of m.zones) if (BigInt(z) === this.peer) this.abort("the server's zone went down");
        return;
      case "GetSchema":
      case "NewZoneId":
        return this.write({
          type: "Reply",
          id: m.id,
          code: ErrorCode.ZONE_NOT_SUPPORTED,
          message: `${m.type} is not served by a JavaScript zone`,
        });
      case "Ping":
        return this.write({ type: "Pong", nonce: m.nonce });
      case "Close":
        if (this.state === "open") this.write({ type: "CloseAck" });
        this.state = "closing"; // the socket's end is now a clean one
        this.finish(true, "");
        return;
      case "CloseAck":
        this.finish(true, "");
        return;
      case "Cancel":
      case "Pong":
        return; // a JavaScript call cannot be stopped; a pong needs nothing
      default:
        this.abort(`${m.type} after the handshake`);
    }
  }

  handshake(m) {
    if (m.type === "Refuse") {
      const e = new RpcError(m.code, `the server refused the link: ${m.message}`);
      this._opened.reject(e);
      this.finish(false, e.message);
      return;
    }
    if (m.type !== "Welcome") {
      this.abort(`expected Welcome or Refuse, got ${m.type}`);
      return;
    }
    if (m.version !== PROTOCOL_VERSION || m.encoding !== JSON_ENCODING) {
      this.abort(`the server chose version ${m.version} and encoding ${m.encoding}, which this side did not offer`);
      return;
    }
    if (m.zone === this.zone.id || this.zone.links.has(m.zone)) {
      this.abort(`zone ${m.zone} is already linked to this page's zone`);
      return;
    }
    clearTimeout(this._timer);
    this.peer = m.zone;
    this.state = "open";
    this.zone.links.set(this.peer, this);
    this._opened.resolve(m);
  }

  reply(m) {
    const entry = this.pending.get(m.id);
    if (entry === undefined) {
      const abandoned = this.abandoned.get(m.id);
      if (abandoned !== undefined) {
        // Its caller gave up: the references the reply brings are given back at once.
        this.abandoned.delete(m.id);
        const made = [];
        try {
          this.result(abandoned, m, made);
        } catch {
          // the proxies it made before failing are disposed all the same
        }
        for (const p of made) p.dispose();
      }
      return;
    }
    this.pending.delete(m.id);
    clearTimeout(entry.timer);
    try {
      entry.resolve(entry.reply(m));
    } catch (e) {
      entry.reject(e);
    }
  }

  /** The stub the peer may reach as `caller`, or the error code refusing it. */
  find(caller, object) {
    if (caller !== this.peer) return ErrorCode.SECURITY_ERROR;
    const stub = this.zone.stubs.get(object);
    if (stub === undefined) return ErrorCode.OBJECT_NOT_FOUND;
    if (this.zone.target(stub) === null) return ErrorCode.OBJECT_GONE;
    if (!stub.holders.has(caller)) return ErrorCode.OBJECT_NOT_FOUND; // a guessed id is no capability
    return stub;
  }

  addRef(m) {
    const found = this.find(m.caller, m.object);
    if (typeof found === "number") return found;
    try {
      this.zone.grant(found, m.caller, m.kind === OPTIMISTIC ? OPTIMISTIC : SHARED);
    } catch {
      return ErrorCode.LIMIT_EXCEEDED;
    }
    return 0;
  }

  refuse(m, code, why) {
    if (m.type === "Call") this.write({ type: "Reply", id: m.id, code, message: why });
    else this.options.onError?.(new RpcError(code, `a post was refused: ${why}`));
  }

  dispatch(m) {
    const found = this.find(m.caller, m.object);
    if (typeof found === "number") return this.refuse(m, found, "no such object for this caller");
    const iface = found.interfaces.get(m.interface);
    if (iface === undefined) return this.refuse(m, ErrorCode.INVALID_INTERFACE_ID, `the object does not implement interface ${m.interface}`);
    const method = describe(iface.cls).methods.get(m.method);
    if (method === undefined) return this.refuse(m, ErrorCode.INVALID_METHOD_ID, `${iface.name} has no method ${m.method}`);
    if (method.post !== (m.type === "Post")) {
      return this.refuse(m, ErrorCode.INVALID_METHOD_ID, `${iface.name}::${method.name} is ${method.post ? "a post" : "a call"}`);
    }
    if (m.encoding !== JSON_ENCODING) {
      return this.refuse(m, ErrorCode.INCOMPATIBLE_SERIALISATION, `encoding ${m.encoding} is not accepted: this zone speaks JSON (8)`);
    }
    const made = [];
    let args;
    try {
      args = this.decodePayload(method.in, `${iface.name}::${method.name}`, "decode the arguments of", m.payload, made);
    } catch (e) {
      for (const p of made) p.dispose();
      return this.refuse(m, e.code ?? ErrorCode.INVALID_DATA, message(e));
    }
    if (m.type === "Call") {
      if (this.inFlight >= this.options.maxCallsInFlight) {
        for (const p of made) p.dispose();
        return this.refuse(m, ErrorCode.LIMIT_EXCEEDED, `${this.inFlight} calls are running (maxCallsInFlight)`);
      }
      this.inFlight++;
    }
    const target = this.zone.target(found);
    const d = {
      id: m.type === "Call" ? m.id : null,
      name: `${iface.name}::${method.name}`,
      method,
      run: () => target[method.js](...method.inputs.map(([n]) => args[n])),
    };
    if (this.busy) this.inbox.push(d);
    else this.start(d);
  }

  /** Run one call or post; a post still running holds back the messages behind it. */
  start(d) {
    let result;
    try {
      result = d.run();
    } catch (e) {
      this.complete(d, undefined, e);
      return;
    }
    if (result === null || typeof result?.then !== "function") {
      this.complete(d, result, null);
      return;
    }
    const finished = Promise.resolve(result).then(
      (value) => this.complete(d, value, null),
      (error) => this.complete(d, undefined, error),
    );
    if (d.id === null) {
      this.busy = true;
      finished.then(() => this.drain());
    }
  }

  drain() {
    this.busy = false;
    while (!this.busy && this.inbox.length && this.state !== "closed") this.start(this.inbox.shift());
  }

  complete(d, value, error) {
    if (d.id === null) {
      if (error !== null) this.options.onError?.(error);
      return;
    }
    this.inFlight--;
    if (this.state !== "open") return; // its caller is gone with the link
    if (error === null) {
      try {
        const outputs = d.method.outputs;
        const record = {};
        if (outputs.length === 1) record[outputs[0][0]] = value;
        else if (outputs.length > 1) {
          if (!isPlainObject(value)) throw invalid(`${d.name} returns its results as an object keyed by name`);
          for (const [n] of outputs) record[n] = value[n];
        }
        const payload = this.encodePayload(d.method.out, d.name, "encode the results of", record);
        this.write({ type: "Reply", id: d.id, code: 0, payload });
        return;
      } catch (e) {
        error = e;
      }
    }
    const known = error instanceof CanopyError;
    this.write({
      type: "Reply",
      id: d.id,
      code: known ? error.code : ErrorCode.EXCEPTION,
      message: known ? error.message : `${error?.name ?? "Error"}: ${message(error)}`,
    });
  }

  // -- ending

  /** Say goodbye and wait (at most `closeTimeout` ms) for the server to acknowledge. */
  async close() {
    if (this.state === "open") {
      this.write({ type: "Close" });
      this.state = "closing";
      this.fail(new RpcError(ErrorCode.CALL_CANCELLED, "the connection was closed"));
      const timer = setTimeout(() => this.finish(true, ""), this.options.closeTimeout);
      await this.closed;
      clearTimeout(timer);
    } else if (this.state === "handshake") this.abort("the connection was closed");
    await this.closed;
  }

  /** End the link at once, without a goodbye: the server sees the socket close. */
  abort(reason) {
    this.finish(false, reason);
  }

  fail(error) {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const entry of pending) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
    for (const r of this.remotes.values()) {
      r.gone = true;
      r.held = [false, false];
    }
    this.remotes.clear();
    if (this.peer !== 0n && this.zone.links.get(this.peer) === this) {
      this.zone.links.delete(this.peer);
      this.zone.peerLost(this.peer);
    }
    this.inbox = [];
  }

  finish(clean, reason) {
    if (this.state === "closed") return;
    clearTimeout(this._timer);
    const wasClosing = this.state === "closing";
    this.state = "closed";
    const error = clean || wasClosing
      ? new RpcError(ErrorCode.CALL_CANCELLED, "the connection was closed")
      : new RpcError(ErrorCode.TRANSPORT_ERROR, `the connection to ${this.url} failed: ${reason}`);
    this._opened.reject(error);
    this.fail(error);
    // Browsers let a page send 1000 or a code of its own (4000: the link failed).
    this.socket.close(clean ? 1000 : 4000);
    this._ended({ clean: clean || wasClosing, reason });
  }
}

function argsRecord(m, args) {
  if (args.length > m.inputs.length) {
    throw invalid(`${m.name} takes ${m.inputs.length} argument(s), got ${args.length}`);
  }
  const record = {};
  m.inputs.forEach(([n], i) => {
    record[n] = args[i];
  });
  return record;
}

/** Give a struct type or an interface class its IDL constants, as read-only properties. */
export function constants(target, values) {
  for (const [name, value] of Object.entries(values)) {
    if (name in target) throw new TypeError(`constant ${name} would hide ${target.name ?? "a"}.${name}`);
    Object.defineProperty(target, name, { value, enumerable: true });
  }
  return target;
}
