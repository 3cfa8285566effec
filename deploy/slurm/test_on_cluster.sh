#!/usr/bin/env bash
# deploy/slurm on a real (one-node) Slurm cluster: starts one (one_node_cluster.sh), builds a
# small data set (the demo's scarce set, its training images repeated so that a shard takes a
# few seconds), submits decouple → merge → edit (identity) → merge through submit.sh as real
# `sbatch --array` jobs, requeues decouple task 0 while it runs (what a preemption does: Slurm
# kills it and starts it again; the shard must resume), waits, and compares the bank with a
# single-process run: the same records and the same bytes of every part.
# Prints the job ids and their final states. Exit 0 only if everything matches. A cluster it
# started is stopped at the end (munged keeps running).
#   deploy/slurm/test_on_cluster.sh        (DEDA_BIN=path/to/deda to pick the binary)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shards=3
repeat=25 # copies of each of the demo's 20 training images: 500 samples, ~167 per shard

say() { echo "test_on_cluster: $*"; }
die() {
  echo "test_on_cluster: FAILED: $*" >&2
  exit 1
}

# The deda binary: $DEDA_BIN, else the newest one built, else a debug build.
if [ -z "${DEDA_BIN:-}" ]; then
  for b in "$root/target/release/deda" "$root/target/debug/deda"; do
    [ -x "$b" ] && { [ -z "${DEDA_BIN:-}" ] || [ "$b" -nt "$DEDA_BIN" ]; } && DEDA_BIN="$b"
  done
fi
if [ -z "${DEDA_BIN:-}" ]; then
  say "no deda binary built: cargo build -p deda-cli"
  (cd "$root" && source tools/env.sh && cargo build -q -p deda-cli --bin deda)
  DEDA_BIN="$root/target/debug/deda"
fi
export DEDA_BIN
say "binary $DEDA_BIN"

# A cluster this script starts is stopped again when it ends; one already running is left alone.
if ! { command -v sinfo >/dev/null && sinfo -h >/dev/null 2>&1; }; then
  trap 'bash "$here/one_node_cluster.sh" stop' EXIT
fi
bash "$here/one_node_cluster.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/deda-slurm.XXXXXX")"
say "work folder $work"
cd "$work"
"$DEDA_BIN" demo --out demo --no-compare >demo.log 2>&1 || die "deda demo (see $work/demo.log)"
data="$work/data"
cp -r demo/data "$data"
# Repeat every training image (and its ground-truth mask) under new names: hard links.
while IFS= read -r img; do
  rel="${img#"$data"/}"
  mask="$data/masks/${rel%.*}.png"
  [ -f "$mask" ] || die "no mask $mask for $img"
  for ((r = 1; r < repeat; r++)); do
    ln "$img" "${img%.*}_r$r.${img##*.}"
    ln "$mask" "${mask%.png}_r$r.png"
  done
done < <(find "$data/train" -type f -name '*.jpg')
n_train="$(find "$data/train" -type f | wc -l)"
say "data set scarce:$data, $n_train training images"

edit_args="--editor identity --k 2"
t0=$SECONDS
"$DEDA_BIN" decouple --dataset "scarce:$data" --bank single >single.log 2>&1 || die "single-process decouple"
# shellcheck disable=SC2086
"$DEDA_BIN" edit --bank single $edit_args >>single.log 2>&1 || die "single-process edit"
say "single-process reference: $(wc -l <single/manifest.jsonl) records in $((SECONDS - t0)) s"

bank="$work/sharded"
jobs="$(bash "$here/submit.sh" --bank "$bank" --shards "$shards" --dataset "scarce:$data" \
  --edit-args "$edit_args" --logs "$work/logs")"
echo "$jobs" | sed 's/^/test_on_cluster: submitted /'
decouple_id="$(echo "$jobs" | awk '$1 == "decouple" {print $2}')"
all_ids="$(echo "$jobs" | awk '{print $2}' | paste -sd,)"

# Preemption: requeue task 0 of the decouple array once it has written some records.
task0="$bank/shards/0-of-$shards.jsonl"
deadline=$((SECONDS + 120))
until [ "$(squeue -h -j "${decouple_id}_0" -o %T 2>/dev/null)" = RUNNING ] &&
  [ -f "$task0" ] && [ "$(wc -l <"$task0")" -ge 20 ]; do
  [ $SECONDS -lt $deadline ] || die "decouple task 0 never ran (squeue: $(squeue -h -j "${decouple_id}_0" 2>&1))"
  sleep 0.05
done
scontrol requeue "${decouple_id}_0"
at_requeue="$(wc -l <"$task0")"
owned=$(((n_train + shards - 1) / shards))
say "requeued ${decouple_id}_0 while running, with $at_requeue records written (its shard: $owned samples, 2 records each)"

deadline=$((SECONDS + 300))
while [ -n "$(squeue -h -j "$all_ids" 2>/dev/null)" ]; do
  [ $SECONDS -lt $deadline ] || die "jobs still queued after 300 s: $(squeue -j "$all_ids")"
  sleep 1
done
say "all jobs left the queue after $((SECONDS - t0)) s; their states:"
ok=1
for id in ${all_ids//,/ }; do
  while read -r line; do
    f() { echo "$line" | tr ' ' '\n' | grep "^$1=" | head -1 | cut -d= -f2-; }
    task="$(f JobId)"
    [ -n "$(f ArrayTaskId)" ] && task="$(f ArrayJobId)_$(f ArrayTaskId) (job $(f JobId))"
    printf '  %-16s %-14s %-10s exit %-5s restarts %s\n' "$task" "$(f JobName)" "$(f JobState)" \
      "$(f ExitCode)" "$(f Restarts)"
    [ "$(f JobState)" = COMPLETED ] || ok=0
  done < <(scontrol -o show job "$id")
done
[ $ok = 1 ] || die "a job did not complete (logs in $work/logs)"

log0="$(ls "$work"/logs/deda-decouple-"${decouple_id}"_0.out)"
restarts="$(grep -c "deda-decouple: shard 0/$shards" "$log0")"
[ "$restarts" -ge 2 ] || die "decouple task 0 ran $restarts time(s), the requeue did not restart it ($log0)"
resumed="$(grep -o '[0-9]* already in the bank' "$log0" | tail -1 | cut -d' ' -f1)"
say "decouple task 0 ran $restarts times; its last run found ${resumed:-0} sample(s) already in the bank"
# Each sample wrote two records (CDP, CIP) before the requeue; the last may have been cut off.
[ $((2 * ${resumed:-0})) -ge $((at_requeue - 1)) ] || die "the restarted task 0 did not resume its shard ($log0)"

# The same bank: records (the merged manifest is sorted by id), settings and every part's bytes.
for f in manifest.jsonl; do
  cmp <(sort "single/$f") <(sort "$bank/$f") || die "$f differs"
done
for f in bank.json cip.json synthetic.json; do
  if [ -e "single/$f" ] || [ -e "$bank/$f" ]; then cmp "single/$f" "$bank/$f" || die "$f differs"; fi
done
diff -r single/parts "$bank/parts" >/dev/null || die "part files differ: diff -r $work/single/parts $bank/parts"
"$DEDA_BIN" bank verify "$bank" >/dev/null || die "deda bank verify $bank"
say "sharded bank == single-process bank: $(wc -l <"$bank/manifest.jsonl") records, $(find "$bank/parts" -type f | wc -l) part files, byte-identical"
cd /
rm -rf "$work"
say "ok"
