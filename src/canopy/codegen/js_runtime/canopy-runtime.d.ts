// canopy-runtime.d.ts: the types of canopy-runtime.js, the runtime of generated clients.

/** The framework's error codes (negative). */
export declare const ErrorCode: {
  readonly OK: 0;
  readonly OUT_OF_MEMORY: -1;
  readonly NEED_MORE_MEMORY: -2;
  readonly SECURITY_ERROR: -3;
  readonly INVALID_DATA: -4;
  readonly TRANSPORT_ERROR: -5;
  readonly INVALID_METHOD_ID: -6;
  readonly INVALID_INTERFACE_ID: -7;
  readonly INVALID_CAST: -8;
  readonly ZONE_NOT_SUPPORTED: -9;
  readonly ZONE_NOT_INITIALISED: -10;
  readonly ZONE_NOT_FOUND: -11;
  readonly OBJECT_NOT_FOUND: -12;
  readonly INVALID_VERSION: -13;
  readonly EXCEPTION: -14;
  readonly PROXY_DESERIALISATION_ERROR: -15;
  readonly STUB_DESERIALISATION_ERROR: -16;
  readonly INCOMPATIBLE_SERIALISATION: -17;
  readonly REFERENCE_COUNT_ERROR: -18;
  readonly OBJECT_GONE: -19;
  readonly CALL_TIMEOUT: -20;
  readonly CALL_CANCELLED: -21;
  readonly PROTOCOL_ERROR: -22;
  readonly LIMIT_EXCEEDED: -23;
  readonly UNAUTHORISED: -24;
};

/** Every error a Canopy call raises: `code` is never 0, `codeName` names it. */
export declare class CanopyError extends Error {
  constructor(message: string, code: number, codeName: string, domain?: string);
  readonly code: number;
  /** `OBJECT_GONE` for a framework error; an IDL error domain's value name, else `ApplicationError`. */
  readonly codeName: string;
  /** The IDL error domain of an application error, when the method declares one. */
  readonly domain: string;
}

/** A framework error (negative code): the call could not be carried out. */
export declare class RpcError extends CanopyError {
  constructor(code: number, message?: string);
}

/** An application error (positive code): the implementation refused. */
export declare class ApplicationError extends CanopyError {
  constructor(code: number, message?: string, codeName?: string, domain?: string);
}

export declare function errorFromCode(code: number, message?: string, method?: unknown): CanopyError;

/** What `json::v1::object` holds. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

/** A type descriptor (what generated modules build with `types`). */
export interface Type {
  readonly k: string;
}

export declare const types: {
  readonly bool: Type;
  readonly int8: Type;
  readonly uint8: Type;
  readonly int16: Type;
  readonly uint16: Type;
  readonly int32: Type;
  readonly uint32: Type;
  readonly int64: Type;
  readonly uint64: Type;
  readonly int128: Type;
  readonly uint128: Type;
  readonly float: Type;
  readonly double: Type;
  readonly string: Type;
  readonly json: Type;
  bytes(min?: number | null, max?: number | null): Type;
  list(item: Type, min?: number | null, max?: number | null): Type;
  set(item: Type): Type;
  map(key: Type, value: Type): Type;
  optional(inner: Type): Type;
  variant(...alternatives: Type[]): Type;
  shared(iface: () => ProxyClass<Proxy>): Type;
  optimistic(iface: () => ProxyClass<Proxy>): Type;
  enumeration(name: string, names: readonly string[]): Type;
  of(exported: object): Type;
};

export interface FieldSpec {
  readonly name: string;
  readonly type: Type;
  readonly default?: () => unknown;
  readonly omit?: boolean;
}

/** A struct type: its IDL name, fingerprint, fields, and a maker of values with defaults. */
export declare class StructType<T> implements Type {
  constructor(name: string, id: bigint, fields: () => FieldSpec[]);
  readonly k: "struct";
  readonly name: string;
  readonly id: bigint;
  readonly fields: readonly FieldSpec[];
  /** A value: `init`'s fields and the IDL defaults of the others. */
  create(init?: Partial<T>): T;
}

export declare function struct<T>(name: string, id: bigint, fields: () => FieldSpec[]): StructType<T>;
export declare function enumeration<N extends string>(name: string, names: readonly N[]): { readonly [K in N]: K };
export declare function errors<C extends Record<string, number>>(name: string, codes: C): Readonly<C>;

/** `value` as Canopy JSON text of type `t`. */
export declare function toJson(t: Type, value: unknown): string;
/** The value Canopy JSON `text` of type `t` holds. */
export declare function fromJson(t: Type, text: string): unknown;
/** JSON with integers beyond 2**53 as BigInts. */
export declare function parseJson(text: string, maxDepth?: number): unknown;
export declare function stringifyJson(value: JsonValue): string;

/** A generated proxy class. */
export interface ProxyClass<P extends Proxy> {
  readonly prototype: P;
  readonly interfaceId: bigint;
  readonly interfaceName: string;
}

/**
 * Base of every generated proxy class: a handle on one reference to a remote object.
 * Dispose each proxy once done with it; closing the connection disposes them all.
 */
export declare class Proxy {
  protected constructor(token: never, remote: never, kind: never);
  /** Give this proxy's reference back; further calls through it fail. */
  dispose(): void;
  [Symbol.dispose](): void;
  /** The connection this proxy's object is reached through. */
  readonly connection: Connection;
  /** Whether this proxy was disposed, or its object or connection is gone. */
  readonly disposed: boolean;
}

export interface ConnectOptions {
  /** The WebSocket class to use (default: the global one). */
  WebSocket?: new (url: string) => WebSocket;
  /** Milliseconds the handshake may take (10000). */
  handshakeTimeout?: number;
  /** Milliseconds a call waits for its reply (30000); null: no limit. */
  callTimeout?: number | null;
  /** Milliseconds `close()` waits for the server's acknowledgement (1000). */
  closeTimeout?: number;
  /** Largest frame accepted from the server, in bytes (16 MiB). */
  maxFrameSize?: number;
  /** Calls the server may have running in this page at once (1024). */
  maxCallsInFlight?: number;
  /** Deepest JSON nesting accepted (64). */
  maxDepth?: number;
  /** Told of errors nobody awaits: a `[post]` implementation that threw. */
  onError?: (error: unknown) => void;
}

/** One link from the page's zone to a server's zone. */
export declare class Connection {
  static open<P extends Proxy>(zone: Zone, url: string, cls: ProxyClass<P>, options?: ConnectOptions): Promise<P>;
  readonly zone: Zone;
  readonly url: string;
  /** The server's zone id. */
  readonly peerZone: bigint;
  /** "handshake", "open", "closing" or "closed". */
  readonly state: string;
  /** Resolves when the link has ended, however it ended. */
  readonly closed: Promise<{ clean: boolean; reason: string }>;
  /** Say goodbye: the server releases everything the page held, and the page's proxies die. */
  close(): Promise<void>;
  /** End the link at once, without a goodbye. */
  abort(reason: string): void;
}

/** The page as a Canopy zone: the objects it exports, the remote objects it holds. */
export declare class Zone {
  constructor(options?: { id?: bigint | number | null; maxExportedObjects?: number });
  /** A random 64-bit id unless one was given. */
  readonly id: bigint;
  connect<P extends Proxy>(url: string, cls: ProxyClass<P>, options?: ConnectOptions): Promise<P>;
  /** Object id -> [[holding zone, shared, optimistic], ...]. */
  exported(): Map<bigint, Array<[bigint, number, number]>>;
  /** [zone, object] of every remote object held. */
  imported(): Array<[bigint, bigint]>;
}

/** The zone `connect` uses. */
export declare function pageZone(): Zone;

/** Link the page's zone to the server at `url` and return a proxy of its root as `cls`. */
export declare function connect<P extends Proxy>(url: string, cls: ProxyClass<P>, options?: ConnectOptions): Promise<P>;

/** `proxy` as interface `cls` of the same object: a new proxy, or `INVALID_CAST`. */
export declare function cast<P extends Proxy>(proxy: Proxy, cls: ProxyClass<P>): Promise<P>;

/** Declare the interfaces `obj` implements, so that the server can cast it to them. */
export declare function implement<T extends object>(obj: T, ...classes: Array<ProxyClass<Proxy>>): T;

// What generated modules call.
export interface MethodSpec {
  readonly id: number;
  readonly name: string;
}
export declare function defineInterface<C>(
  cls: C,
  info: { id: bigint; name: string; bases: () => Array<ProxyClass<Proxy>>; methods: () => MethodSpec[] },
): C;
export declare function method(
  id: number,
  name: string,
  js: string,
  options?: {
    post?: boolean;
    tag?: number;
    inputs?: Array<[string, Type]>;
    outputs?: Array<[string, Type]>;
    raises?: object | null;
  },
): MethodSpec;
export declare function constants<T extends object>(target: T, values: Record<string, unknown>): T;
export declare function invoke(proxy: Proxy, cls: ProxyClass<Proxy>, id: number, args: unknown[]): Promise<unknown> | undefined;

// The protocol's sans-I/O pieces, for tests and tools.
export declare const PROTOCOL_VERSION: 1;
export declare const JSON_ENCODING: 8;
export declare function packMessage(value: unknown): Uint8Array;
export declare function unpackMessage(bytes: Uint8Array): unknown;
export declare function decodeMessage(frame: Uint8Array): { type: string; [field: string]: unknown };
export declare function encodeFrame(message: { type: string; [field: string]: unknown }): Uint8Array;
export declare class FrameReader {
  constructor(maxFrameSize: number);
  push(chunk: Uint8Array): Uint8Array[];
}
