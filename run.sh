#!/usr/bin/env bash
# Entry point for a fresh clone. `./run.sh demo` and `./run.sh test` do all set-up first.
#   ./run.sh demo [deda demo flags]   run the De-DA pipeline on the embedded photos
#   ./run.sh test                     run the whole test suite: cargo's, then pytest's for the Python
#                                     package (set-up also fetches the real models some ignored
#                                     tests need; .ci/run runs those and the lints)
#   ./run.sh deda <args>              run any deda subcommand with the environment set
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    DEDA_NO_FETCH="${DEDA_NO_FETCH:-1}" bash tools/setup.sh
    source tools/env.sh
    exec target/release/deda demo "$@"
    ;;
  test)
    DEDA_SKIP_BUILD=1 bash tools/setup.sh
    source tools/env.sh
    status=0
    cargo test --workspace --no-fail-fast "$@" || status=$?
    # The Python package's suite (crates/py/tests): it makes its data with the deda binary
    # cargo test just built, and fails the command like a failed cargo test.
    DEDA_BIN="${DEDA_BIN:-$root/target/debug/deda}" python -m pytest -q crates/py/tests || status=$?
    exit "$status"
    ;;
  deda)
    DEDA_NO_FETCH="${DEDA_NO_FETCH:-1}" bash tools/setup.sh
    source tools/env.sh
    exec target/release/deda "$@"
    ;;
  *)
    echo "usage: ./run.sh demo|test|deda <args>" >&2
    exit 2
    ;;
esac
