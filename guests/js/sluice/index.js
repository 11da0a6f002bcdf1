//! Sluice guest SDK for JavaScript: write a tenant transform as an ordinary ES module.
//
// A transform exports `run`, wrapped by `exportRun`:
//
//     import { whoami, Dataset, Figures, Report, fmt, exportRun } from "../sluice/index.js";
//
//     export const run = exportRun((params) => {
//       const me = whoami();
//       const visits = Dataset.open(me.tenant, "analytics", "visits");
//       let rows = 0;
//       for (const batch of visits.batches()) rows += batch.rows;
//       const figures = new Figures().add("visits", fmt.thousands(rows));
//       Report.create(me.tenant).writeJson(figures.toJson(me.tenant));
//       return figures;
//     });
//
// Built into a component by `componentize-js` against `wit/` (world `transform`). Every call that
// touches data passes the host's scope gate: a refusal throws `Denied` with the scope the call
// required and the scopes the agent holds. 64-bit integer columns arrive as `BigInt64Array`, so
// sums of cents stay exact; `fmt` takes `bigint` or `number`.

import { whoami as hostWhoami } from "sluice:etl/identity@0.2.0";
import * as hostDatasets from "sluice:etl/datasets@0.2.0";
import * as hostReports from "sluice:etl/reports@0.2.0";
import { log as hostLog } from "sluice:etl/log@0.2.0";
import * as hostTables from "sluice:etl/tables@0.2.0";

export * as fmt from "./fmt.js";
import { toJson } from "./json.js";

/** Rows per batch the SDK asks for: large enough that host calls are noise next to the work. */
export const BATCH_ROWS = 16384;

/** A host call failed; the subclass says how. */
export class HostError extends Error {}

/** The scope gate said no: nothing was read or written. */
export class Denied extends HostError {
  /** @param {string} required @param {string[]} held */
  constructor(required, held) {
    super(`denied: requires ${required}, holds [${held.join(", ")}]`);
    this.name = "Denied";
    /** @type {string} */ this.required = required;
    /** @type {string[]} */ this.held = held;
  }
}

/** A budget ran out; the run is over whatever the transform does next. */
export class LimitExceeded extends HostError {
  /** @param {string} limitName @param {bigint} limit */
  constructor(limitName, limit) {
    super(`limit ${limitName} (${limit}) exceeded`);
    this.name = "LimitExceeded";
    /** @type {string} */ this.limitName = limitName;
    /** @type {bigint} */ this.limit = limit;
  }
}

/** The gate allowed the call, but the tenant has no such dataset. */
export class NotFound extends HostError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "NotFound";
  }
}

/** The call was malformed: a bad name, a report used after commit, a report not JSON. */
export class Invalid extends HostError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "Invalid";
  }
}

/** Throw this (or anything) to fail the run with a message of your own. */
export class TransformFailed extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "TransformFailed";
  }
}

/**
 * The WIT `error` variant as the SDK's exception.
 * @param {{tag: string, val: any}} error
 * @returns {HostError}
 */
function hostError(error) {
  switch (error.tag) {
    case "denied":
      return new Denied(error.val.required, [...error.val.held]);
    case "limit":
      return new LimitExceeded(error.val.name, error.val.limit);
    case "not-found":
      return new NotFound(error.val);
    default:
      return new Invalid(String(error.val));
  }
}

/**
 * Calls a host function, turning its WIT error into the SDK's exception.
 * @template T
 * @param {() => T} f
 * @returns {T}
 */
function call(f) {
  try {
    return f();
  } catch (e) {
    // Bindings throw a result's error as an object carrying it in `payload`.
    const payload = e && typeof e === "object" && "payload" in e ? e.payload : e;
    if (payload && typeof payload === "object" && typeof payload.tag === "string") {
      throw hostError(payload);
    }
    throw e;
  }
}

/**
 * Who this run is.
 * @typedef {{agentId: string, tenant: string, taskId: string, scopes: string[]}} Agent
 * @returns {Agent}
 */
export function whoami() {
  const a = hostWhoami();
  return { agentId: a.agentId, tenant: a.tenant, taskId: a.taskId, scopes: [...a.scopes] };
}

/**
 * The tenant's configured parameters, name and value.
 * @typedef {Array<[string, string]>} Params
 */

/**
 * The value of parameter `name`, if configured.
 * @param {Params} params @param {string} name
 * @returns {string | undefined}
 */
export function param(params, name) {
  for (const [key, value] of params) if (key === name) return value;
  return undefined;
}

/** The run's log (size-capped by the host). */
export const log = {
  /** @param {string} message */ debug: (message) => hostLog("debug", String(message)),
  /** @param {string} message */ info: (message) => hostLog("info", String(message)),
  /** @param {string} message */ warn: (message) => hostLog("warn", String(message)),
  /** @param {string} message */ error: (message) => hostLog("error", String(message)),
};

const decoder = new TextDecoder("utf-8");

/**
 * The null rows of a column in one batch: Arrow's validity bitmap. `length` is how many rows
 * are null; `has(row)` says whether a row is; iterating yields the null rows in order.
 */
export class Nulls {
  /** @param {Uint8Array | undefined} validity @param {number} count @param {number} rows */
  constructor(validity, count, rows) {
    this._validity = validity;
    this._rows = rows;
    /** @type {number} */ this.length = count;
  }

  /** @param {number} row @returns {boolean} */
  has(row) {
    const v = this._validity;
    return v !== undefined && row < this._rows && (v[row >> 3] & (1 << (row & 7))) === 0;
  }

  *[Symbol.iterator]() {
    if (this._validity === undefined) return;
    for (let row = 0; row < this._rows; row++) if (this.has(row)) yield row;
  }
}

/**
 * A batch of rows, column by column. Null rows hold a default (0, 0n, false, "") in the typed
 * accessors and are listed in their `nulls`; `values` shows them as `null`.
 */
export class Batch {
  /** @param {any} batch @param {string[]} names */
  constructor(batch, names) {
    this._batch = batch;
    this._names = names;
  }

  /** @returns {number} */
  get rows() {
    return this._batch.rows;
  }

  /** @param {number | string} column */
  _column(column) {
    const index = typeof column === "string" ? this._names.indexOf(column) : column;
    const data = this._batch.columns[index];
    if (data === undefined) throw new Invalid(`batch has no column ${JSON.stringify(column)}`);
    return data;
  }

  /** @param {number | string} column @param {string} tag */
  _typed(column, tag) {
    const data = this._column(column);
    if (data.values.tag !== tag) throw new Invalid(`column ${JSON.stringify(column)} is not ${tag}`);
    return {
      values: data.values.val,
      nulls: new Nulls(data.validity ?? undefined, data.nullCount, this._batch.rows),
    };
  }

  /**
   * The column's values and its null rows.
   * @param {number | string} column
   * @returns {{values: BigInt64Array, nulls: Nulls}}
   */
  int64(column) {
    return this._typed(column, "int64");
  }

  /** @param {number | string} column @returns {{values: Float64Array, nulls: Nulls}} */
  float64(column) {
    return this._typed(column, "float64");
  }

  /**
   * One byte per row, 1 for true and 0 for false.
   * @param {number | string} column @returns {{values: Uint8Array, nulls: Nulls}}
   */
  boolean(column) {
    return this._typed(column, "boolean");
  }

  /**
   * Days since 1970-01-01.
   * @param {number | string} column @returns {{values: Int32Array, nulls: Nulls}}
   */
  date(column) {
    return this._typed(column, "date");
  }

  /**
   * Microseconds since 1970-01-01T00:00:00Z.
   * @param {number | string} column @returns {{values: BigInt64Array, nulls: Nulls}}
   */
  timestamp(column) {
    return this._typed(column, "timestamp");
  }

  /**
   * Unscaled values (the scale is the schema's), exact.
   * @param {number | string} column @returns {{values: bigint[], nulls: Nulls}}
   */
  decimal(column) {
    const { values, nulls } = this._typed(column, "decimal");
    const view = new DataView(values.buffer, values.byteOffset, values.byteLength);
    const out = [];
    for (let i = 0; i + 16 <= values.byteLength; i += 16) {
      out.push((view.getBigInt64(i + 8, true) << 64n) | view.getBigUint64(i, true));
    }
    return { values: out, nulls };
  }

  /** @param {number | string} column @returns {{values: string[], nulls: Nulls}} */
  text(column) {
    const { values, nulls } = this._typed(column, "text");
    const [raw, offsets] = values;
    const strings = [];
    for (let i = 0; i + 1 < offsets.length; i++) {
      strings.push(decoder.decode(raw.subarray(offsets[i], offsets[i + 1])));
    }
    return { values: strings, nulls };
  }

  /** @param {number | string} column @returns {{values: Uint8Array[], nulls: Nulls}} */
  binary(column) {
    const { values, nulls } = this._typed(column, "binary");
    const [raw, offsets] = values;
    const out = [];
    for (let i = 0; i + 1 < offsets.length; i++) out.push(raw.slice(offsets[i], offsets[i + 1]));
    return { values: out, nulls };
  }

  /**
   * The column as JavaScript values, `null` where a row is null.
   * @param {number | string} column
   * @returns {Array<bigint | number | boolean | string | null>}
   */
  values(column) {
    const data = this._column(column);
    const tag = data.values.tag;
    /** @type {Array<any>} */
    let values;
    if (tag === "text" || tag === "binary" || tag === "decimal") values = this[tag](column).values;
    else if (tag === "boolean") values = Array.from(data.values.val, (b) => b !== 0);
    else values = Array.from(data.values.val);
    for (const row of new Nulls(data.validity ?? undefined, data.nullCount, this._batch.rows)) {
      values[row] = null;
    }
    return values;
  }
}

/** An open dataset of a tenant: a cursor over its rows in storage order. */
export class Dataset {
  /** @param {any} inner */
  constructor(inner) {
    this._inner = inner;
    /** @type {Array<{name: string, ty: {tag: string, val?: any}, nullable: boolean}>} */
    this.schema = inner.schema();
    /** @type {string[]} */
    this.columns = this.schema.map((c) => c.name);
  }

  /**
   * Opens dataset `name` of `resource` for `tenant`; needs `read:<resource>:<tenant>`. With
   * `columns`, reads only those, in that order: the source reads nothing else.
   * @param {string} tenant @param {string} resource @param {string} name
   * @param {string[]} [columns]
   * @returns {Dataset}
   */
  static open(tenant, resource, name, columns) {
    const wanted = columns === undefined ? undefined : [...columns];
    return new Dataset(call(() => hostDatasets.open(tenant, resource, name, wanted)));
  }

  /**
   * The dataset names of `resource` for `tenant`; needs `read:<resource>:<tenant>`.
   * @param {string} tenant @param {string} resource
   * @returns {string[]}
   */
  static list(tenant, resource) {
    return [...call(() => hostDatasets.list(tenant, resource))];
  }

  /** The index of column `name`. @param {string} name @returns {number} */
  column(name) {
    const index = this.columns.indexOf(name);
    if (index < 0) throw new Invalid(`dataset has no column '${name}'`);
    return index;
  }

  /** The next batch of rows, or `undefined` at the end. @returns {Batch | undefined} */
  nextBatch() {
    const batch = call(() => this._inner.nextBatch(BATCH_ROWS));
    return batch == null ? undefined : new Batch(batch, this.columns);
  }

  /** Every remaining batch. @returns {Generator<Batch>} */
  *batches() {
    for (let batch = this.nextBatch(); batch !== undefined; batch = this.nextBatch()) {
      yield batch;
    }
  }
}

/**
 * The exact sum of 64-bit integers, e.g. a batch's `int64(column).values`. Adds the high and
 * low 32-bit halves as doubles (little-endian, as wasm memory is; exact for up to 2^20 values at a time) instead of converting each
 * value to a bigint, which costs an allocation per row in an interpreter.
 * @param {BigInt64Array} values
 * @returns {bigint}
 */
export function sumInt64(values) {
  const words = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
  let total = 0n;
  for (let start = 0; start < words.length; start += 1 << 21) {
    const end = Math.min(words.length, start + (1 << 21));
    let hi = 0;
    let lo = 0;
    for (let i = start; i < end; i += 2) {
      lo += words[i] >>> 0;
      hi += words[i + 1];
    }
    total += BigInt(hi) * 4294967296n + BigInt(lo);
  }
  return total;
}

/**
 * The number of true rows of a boolean column's values.
 * @param {Uint8Array} values
 * @returns {number}
 */
export function countTrue(values) {
  let count = 0;
  for (let i = 0; i < values.length; i++) count += values[i];
  return count;
}

const encoder = new TextEncoder();

/** A tenant's report, published when the run returns after `commit`. */
export class Report {
  /** @param {any} inner */
  constructor(inner) {
    this._inner = inner;
  }

  /**
   * Starts the report of `tenant`; needs `write:reports:<tenant>`.
   * @param {string} tenant
   * @returns {Report}
   */
  static create(tenant) {
    return new Report(call(() => hostReports.create(tenant)));
  }

  /** Appends bytes, in host calls of at most 64 KiB. @param {Uint8Array} data */
  append(data) {
    for (let start = 0; start < data.length; start += 65536) {
      const chunk = data.subarray(start, start + 65536);
      call(() => this._inner.append(chunk));
    }
  }

  commit() {
    call(() => this._inner.commit());
  }

  /** Appends `text` (one JSON document) and commits. @param {string} text */
  writeJson(text) {
    this.append(encoder.encode(text));
    this.commit();
  }
}

/**
 * A column for `Table.append`: `{tag, val}` as the WIT's column values, and optionally which
 * rows are valid (`false` makes a row null).
 * @param {string} tag @param {any} val @param {boolean[]} [valid]
 */
export function column(tag, val, valid) {
  if (valid === undefined) return { values: { tag, val }, validity: undefined, nullCount: 0 };
  const bits = new Uint8Array((valid.length + 7) >> 3);
  let nulls = 0;
  valid.forEach((v, row) => {
    if (v) bits[row >> 3] |= 1 << (row & 7);
    else nulls++;
  });
  return { values: { tag, val }, validity: nulls ? bits : undefined, nullCount: nulls };
}

/** Text values as the WIT's `text` column values. @param {string[]} strings */
export function textValues(strings) {
  const parts = strings.map((s) => encoder.encode(s));
  const offsets = new Uint32Array(parts.length + 1);
  let total = 0;
  parts.forEach((p, i) => {
    total += p.length;
    offsets[i + 1] = total;
  });
  const data = new Uint8Array(total);
  parts.forEach((p, i) => data.set(p, offsets[i]));
  return [data, offsets];
}

/** An output dataset being written: published when the run succeeds, like a report. */
export class Table {
  /** @param {any} inner */
  constructor(inner) {
    this._inner = inner;
  }

  /**
   * Starts output `name` of `resource` for `tenant`; needs `write:<resource>:<tenant>`.
   * @param {string} tenant @param {string} resource @param {string} name
   * @param {Array<{name: string, ty: {tag: string, val?: any}, nullable: boolean}>} schema
   */
  static create(tenant, resource, name, schema) {
    return new Table(call(() => hostTables.create(tenant, resource, name, schema)));
  }

  /** @param {number} rows @param {Array<ReturnType<typeof column>>} columns */
  append(rows, columns) {
    call(() => this._inner.append({ rows, columns }));
  }

  commit() {
    call(() => this._inner.commit());
  }
}

/** Named figures of a transform, in order: the report's content and the run's summary. */
export class Figures {
  constructor() {
    /** @type {Array<[string, string]>} */
    this.items = [];
  }

  /** @param {string} name @param {string} value @returns {Figures} */
  add(name, value) {
    this.items.push([name, value]);
    return this;
  }

  /**
   * `{"tenant":…,"figures":{…}}` with keys in insertion order, as every SDK writes it.
   * @param {string} tenant
   * @returns {string}
   */
  toJson(tenant) {
    return toJson([
      ["tenant", tenant],
      ["figures", this.items],
    ]);
  }
}

/**
 * The WIT `run-error` of whatever a transform threw: a `HostError` passes the host's error up,
 * anything else fails the run with its message.
 * @param {unknown} e
 */
function runError(e) {
  if (e instanceof Denied) {
    return { tag: "host", val: { tag: "denied", val: { required: e.required, held: e.held } } };
  }
  if (e instanceof LimitExceeded) {
    return { tag: "host", val: { tag: "limit", val: { name: e.limitName, limit: e.limit } } };
  }
  if (e instanceof NotFound) return { tag: "host", val: { tag: "not-found", val: e.message } };
  if (e instanceof Invalid) return { tag: "host", val: { tag: "invalid", val: e.message } };
  if (e instanceof Error) return { tag: "failed", val: `${e.name}: ${e.message}` };
  return { tag: "failed", val: `thrown: ${String(e)}` };
}

/**
 * The `run` export componentize-js binds, calling `transform`: its `Figures` are the summary.
 * @param {(params: Params) => Figures} transform
 */
export function exportRun(transform) {
  return (/** @type {Params} */ params) => {
    let figures;
    try {
      figures = transform(params.map(([k, v]) => [k, v]));
    } catch (e) {
      throw runError(e);
    }
    return { figures: figures.items.map(([name, value]) => ({ name, value })) };
  };
}
