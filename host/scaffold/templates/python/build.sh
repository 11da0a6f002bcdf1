#!/bin/sh
# Builds {{name}}.wasm, the transform as a WebAssembly component (CPython, componentize-py).
set -eu
cd "$(dirname "$0")"
VENV="${SLUICE_VENV:-.venv}"
if [ ! -x "$VENV/bin/componentize-py" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
fi
# Without VIRTUAL_ENV, componentize-py does not add the venv's packages to the component.
env -u VIRTUAL_ENV "$VENV/bin/componentize-py" -d wit -w transform componentize -p src app \
  -o {{name}}.wasm >/dev/null
echo "built {{name}}.wasm"
