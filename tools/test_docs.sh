#!/usr/bin/env bash
# Runs every command block of docs/*.md marked runnable (a fenced block whose info string is
# `bash runnable`), page by page, so the guide cannot rot.
#
#   tools/test_docs.sh [DEDA_BINARY] [PAGE.md ...]
#
# Each page runs in its own fresh folder, as one bash script (`set -euo pipefail`, so a block may
# use what an earlier block of the same page made), with `deda` on PATH (DEDA_BINARY, default
# target/release/deda) and the repository's `configs/`, `testdata/` and `tools/` linked in, as if
# typed at the root of a clone. Blocks marked `bash` alone (GPU, real weights) are not run.
# Called by `cargo test -p deda-cli --test docs_guide` with the test build of the binary.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/target/release/deda}"
[ $# -gt 0 ] && shift
[ -x "$bin" ] || { echo "test_docs: no deda binary at $bin" >&2; exit 2; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
if [ $# -gt 0 ]; then pages=("$@"); else pages=("$root"/docs/*.md); fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
ln -s "$bin" "$work/bin/deda"

ran=0
failed=()
for page in "${pages[@]}"; do
  name="docs/$(basename "$page")"
  script="$work/$(basename "$page" .md).sh"
  # Extract the runnable blocks; before each, echo where it comes from.
  awk -v name="$name" '
    /^```bash runnable[[:space:]]*$/ { inblock = 1; print "echo \"--- " name ":" NR + 1 "\" >&2"; n++; next }
    /^```/ && inblock { inblock = 0; next }
    inblock { print }
    END { if (inblock) { print "echo \"unterminated block in " name "\" >&2; exit 1" } }
  ' "$page" > "$script.body"
  blocks=$(grep -c '^echo "--- ' "$script.body" || true)
  [ "$blocks" -gt 0 ] || continue
  dir="$work/$(basename "$page" .md)"
  mkdir -p "$dir"
  for d in configs testdata tools .venv; do ln -s "$root/$d" "$dir/$d"; done
  { echo 'set -euo pipefail'; cat "$script.body"; } > "$script"
  echo "test_docs: $name ($blocks runnable block(s))" >&2
  start=$SECONDS
  if (cd "$dir" && PATH="$work/bin:$PATH" bash "$script"); then
    echo "test_docs: $name ok in $((SECONDS - start)) s" >&2
  else
    echo "test_docs: $name FAILED (the last --- line above names the block)" >&2
    failed+=("$name")
  fi
  ran=$((ran + blocks))
done
echo "test_docs: $ran runnable block(s) in ${#pages[@]} page(s), ${#failed[@]} page(s) failed" >&2
[ "$ran" -gt 0 ] || { echo "test_docs: no runnable block found" >&2; exit 1; }
[ ${#failed[@]} -eq 0 ]
