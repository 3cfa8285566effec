#!/usr/bin/env bash
# Entry point for a fresh clone. `./run.sh demo` and `./run.sh test` do all set-up first.
#   ./run.sh demo [deda demo flags]   run the De-DA pipeline on the embedded photos
#   ./run.sh test                     run the whole test suite (set-up also fetches the real models
#                                     some ignored tests need; .ci/run runs those and the lints)
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
    cargo test --workspace --no-fail-fast "$@"
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
