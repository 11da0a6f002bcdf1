//! The isolation probe in JavaScript: tries to read another tenant's data and write a third
//! tenant's report under its own agent, and reads its own data. The host's gate is the judge: the
//! pipeline checks the gate's decisions, whatever this probe reports.
//!
//! Parameters: `read-tenant`, `write-tenant` (required); `resource` (default `analytics`);
//! `read-dataset` (default `data`).

import {
  Dataset,
  Denied,
  Figures,
  HostError,
  Report,
  TransformFailed,
  exportRun,
  param,
  whoami,
} from "../sluice/index.js";

/** @param {() => void} attempt */
function verdict(attempt) {
  try {
    attempt();
    return "ALLOWED";
  } catch (e) {
    if (e instanceof Denied) return "BLOCKED";
    // Allowed by the gate, then something else: still access, still a violation.
    if (e instanceof HostError) return `ALLOWED (${e.message})`;
    throw e;
  }
}

/** @param {Array<[string, string]>} params @param {string} name */
function required(params, name) {
  const value = param(params, name);
  if (value === undefined) throw new TransformFailed(`parameter '${name}' is required`);
  return value;
}

export const run = exportRun((params) => {
  const me = whoami();
  const resource = param(params, "resource") ?? "analytics";
  const readTenant = required(params, "read-tenant");
  const writeTenant = required(params, "write-tenant");
  const readDataset = param(params, "read-dataset") ?? "data";
  return new Figures()
    .add(
      `read:${resource}:${readTenant}`,
      verdict(() => Dataset.open(readTenant, resource, readDataset)),
    )
    .add(`write:reports:${writeTenant}`, verdict(() => Report.create(writeTenant)))
    .add(
      `read:${resource}:${me.tenant}`,
      verdict(() => {
        for (const name of Dataset.list(me.tenant, resource)) {
          Dataset.open(me.tenant, resource, name).nextBatch();
        }
      }),
    );
});
