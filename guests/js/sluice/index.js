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

import { whoami as hostWhoami } from "sluice:etl/identity@0.1.0";
import * as hostDatasets from "sluice:etl/datasets@0.1.0";
import * as hostReports from "sluice:etl/reports@0.1.0";
import { log as hostLog } from "sluice:etl/log@0.1.0";

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
    return { values: data.values.val, nulls: data.nulls };
  }

  /**
   * The column's values and the sorted indices of its null rows.
   * @param {number | string} column
   * @returns {{values: BigInt64Array, nulls: Uint32Array}}
   */
  int64(column) {
    return this._typed(column, "int64");
  }

  /** @param {number | string} column @returns {{values: Float64Array, nulls: Uint32Array}} */
  float64(column) {
    return this._typed(column, "float64");
  }

  /**
   * One byte per row, 1 for true and 0 for false.
   * @param {number | string} column @returns {{values: Uint8Array, nulls: Uint32Array}}
   */
  boolean(column) {
    return this._typed(column, "boolean");
  }

  /** @param {number | string} column @returns {{values: string[], nulls: Uint32Array}} */
  text(column) {
    const { values, nulls } = this._typed(column, "text");
    const [raw, offsets] = values;
    const strings = [];
    for (let i = 0; i + 1 < offsets.length; i++) {
      strings.push(decoder.decode(raw.subarray(offsets[i], offsets[i + 1])));
    }
    return { values: strings, nulls };
  }

  /**
   * The column as JavaScript values, `null` where a row is null.
   * @param {number | string} column
   * @returns {Array<bigint | number | boolean | string | null>}
   */
  values(column) {
    const data = this._column(column);
    const tag = data.values.tag;
    const values =
      tag === "text"
        ? this.text(column).values
        : tag === "boolean"
          ? Array.from(data.values.val, (b) => b !== 0)
          : Array.from(data.values.val);
    for (const row of data.nulls) values[row] = null;
    return values;
  }
}

/** An open dataset of a tenant: a cursor over its rows in storage order. */
export class Dataset {
  /** @param {any} inner */
  constructor(inner) {
    this._inner = inner;
    /** @type {Array<{name: string, ty: string}>} */
    this.schema = inner.schema();
    /** @type {string[]} */
    this.columns = this.schema.map((c) => c.name);
  }

  /**
   * Opens dataset `name` of `resource` for `tenant`; needs `read:<resource>:<tenant>`. With
   * `columns`, reads only those (see `select`).
   * @param {string} tenant @param {string} resource @param {string} name
   * @param {string[]} [columns]
   * @returns {Dataset}
   */
  static open(tenant, resource, name, columns) {
    const dataset = new Dataset(call(() => hostDatasets.open(tenant, resource, name)));
    if (columns !== undefined) dataset.select(columns);
    return dataset;
  }

  /**
   * Reads only `columns`, in that order, from the next batch on: unread columns cost neither
   * storage reads nor copies. Column indices refer to the narrowed schema.
   * @param {string[]} columns
   */
  select(columns) {
    call(() => this._inner.select([...columns]));
    this.schema = this._inner.schema();
    this.columns = this.schema.map((c) => c.name);
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
