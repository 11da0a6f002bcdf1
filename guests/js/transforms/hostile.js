//! Hostile JavaScript transform for Sluice's tests: the attacks an interpreter makes possible,
//! chosen by the `attack` parameter (the list is `sluice-hostile-list`'s `INTERPRETED`). Each
//! must fail with its cause on one line while the host and every other tenant carry on.
//!
//! Parameters: `attack`; `port` (a loopback port to reach, e.g. the broker's); `plugin` (this
//! component's own file). The code is what a transform written for Node or a browser would try.

import { Dataset, Table, TransformFailed, column, exportRun, param, whoami } from "../sluice/index.js";

/* global require, process, fetch, WebSocket */

const attacks = {
  read_passwd() {
    const data = require("fs").readFileSync("/etc/passwd", "utf8");
    throw new TransformFailed(`read ${data.length} bytes of /etc/passwd`);
  },
  read_own_plugin(params) {
    const data = require("fs").readFileSync(param(params, "plugin") ?? "hostile-js.wasm");
    throw new TransformFailed(`read ${data.length} bytes of the plugin`);
  },
  read_env() {
    // Whatever is visible goes into the failure message, where the test looks for it.
    throw new TransformFailed(`environment ${JSON.stringify(process.env)}`);
  },
  connect_broker(params) {
    const socket = new WebSocket(`ws://127.0.0.1:${param(params, "port") ?? "8080"}/`);
    throw new TransformFailed(`connected: ${socket.readyState}`);
  },
  http_request(params) {
    const response = fetch(`http://127.0.0.1:${param(params, "port") ?? "8080"}/v1/health`);
    throw new TransformFailed(`fetched: ${response}`);
  },
  spawn_process() {
    const out = require("child_process").execSync("id");
    throw new TransformFailed(`ran a process: ${out}`);
  },
  read_other_tenant() {
    Dataset.open("bank", "analytics", "transactions").nextBatch();
    throw new TransformFailed("read the bank's transactions");
  },
  table_lies_about_rows() {
    // Says 5 rows, hands over 3 values: the host checks every batch against its schema.
    const table = Table.create(whoami().tenant, "reports", "t", [
      { name: "x", ty: { tag: "int64" }, nullable: false },
    ]);
    table.append(5, [column("int64", new BigInt64Array([1n, 2n, 3n]))]);
    throw new TransformFailed("appended 3 values as 5 rows");
  },
  spin() {
    for (;;) {
      /* forever */
    }
  },
  memory_hog() {
    const hog = [];
    for (;;) hog.push(new Uint8Array(8 << 20).fill(1));
  },
  recurse() {
    const down = (n) => down(n + 1) + 1;
    down(0);
    throw new TransformFailed("recursion ended");
  },
};

export const run = exportRun((params) => {
  const attack = param(params, "attack");
  if (!Object.hasOwn(attacks, attack)) throw new TransformFailed(`no attack named '${attack}'`);
  return attacks[attack](params);
});
