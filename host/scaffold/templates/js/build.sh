#!/bin/sh
# Builds {{name}}.wasm, the transform as a WebAssembly component (StarlingMonkey, ComponentizeJS,
# every WASI feature off: the component imports nothing but Sluice's interfaces).
set -eu
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/componentize-js src/transform.js --wit wit -n transform \
  -d stdio random clocks http fetch-event -o {{name}}.wasm >/dev/null
echo "built {{name}}.wasm"
