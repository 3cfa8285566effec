#!/usr/bin/env bash
# Submits deda's offline stages as Slurm job arrays chained by dependencies:
#   decouple array → merge → invert array → edit array → merge
# A stage is submitted when its inputs are given (--dataset: decouple; --invert-args: invert;
# --edit-args: edit). Each array has --shards tasks; every job waits for the previous one with
# --dependency=afterok:<id> (an array's id stands for all its tasks) and is cancelled if that
# one fails (--kill-on-invalid-dep=yes). All jobs are requeue-safe (see the .sbatch files).
#
#   deploy/slurm/submit.sh --bank /shared/banks/cub --shards 8 --dataset cub:/shared/data/CUB_200_2011 \
#       --decouple-args "--segmenter isnet:/models/isnet.onnx" \
#       --edit-args "--editor identity --k 3" [--logs DIR] [-- more sbatch flags for every job]
#
# Prints one line per job, `<stage> <job id>`. Paths are made absolute (jobs run elsewhere);
# put the bank on storage every node sees. The jobs inherit this shell's environment
# (sbatch --export=ALL): set DEDA_BIN, PATH or LD_LIBRARY_PATH here. Per-stage resources
# (e.g. --gres=gpu:1 for invert/edit): DEDA_SBATCH_DECOUPLE, DEDA_SBATCH_INVERT,
# DEDA_SBATCH_EDIT, DEDA_SBATCH_MERGE (extra sbatch flags, split on spaces).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

bank="" shards="" dataset="" logs=""
decouple_args="" invert_args="" edit_args=""
common=()
while [ $# -gt 0 ]; do
  case "$1" in
  --bank) bank="$2"; shift 2 ;;
  --shards) shards="$2"; shift 2 ;;
  --dataset) dataset="$2"; shift 2 ;;
  --decouple-args) decouple_args="$2"; shift 2 ;;
  --invert-args) invert_args="$2"; shift 2 ;;
  --edit-args) edit_args="$2"; shift 2 ;;
  --logs) logs="$2"; shift 2 ;;
  --) shift; common=("$@"); break ;;
  -h | --help) usage ;;
  *) echo "submit.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$bank" ] || { echo "submit.sh: --bank is required" >&2; exit 2; }
case "$shards" in
'' | *[!0-9]* | 0) echo "submit.sh: --shards must be a number of at least 1 (got '$shards')" >&2; exit 2 ;;
esac
if [ -z "$dataset" ] && [ -z "$invert_args" ] && [ -z "$edit_args" ]; then
  echo "submit.sh: nothing to do: give --dataset (decouple), --invert-args and/or --edit-args" >&2
  exit 2
fi
command -v sbatch >/dev/null || { echo "submit.sh: sbatch not found (is this a Slurm login node?)" >&2; exit 2; }

export DEDA_BANK DEDA_SHARDS="$shards"
DEDA_BANK="$(realpath -m "$bank")"
if [ -n "$dataset" ]; then
  case "$dataset" in
  *:*) export DEDA_DATASET="${dataset%%:*}:$(realpath -m "${dataset#*:}")" ;;
  *) echo "submit.sh: --dataset must be KIND:PATH (got '$dataset')" >&2; exit 2 ;;
  esac
fi
export DEDA_DECOUPLE_ARGS="$decouple_args" DEDA_INVERT_ARGS="$invert_args" DEDA_EDIT_ARGS="$edit_args"
logs="$(realpath -m "${logs:-$DEDA_BANK.logs}")"
mkdir -p "$logs"

after="" # the job id the next job waits for
# submit STAGE SCRIPT [sbatch flags...]: submits one job (or array) after $after; prints its id.
submit() {
  local stage="$1" script="$2" extra_var="DEDA_SBATCH_${1^^}" id
  shift 2
  local extra=()
  read -r -a extra <<<"${!extra_var:-}"
  local dep=()
  [ -n "$after" ] && dep=(--dependency="afterok:$after" --kill-on-invalid-dep=yes)
  id="$(sbatch --parsable "${dep[@]}" "$@" "${common[@]}" "${extra[@]}" "$here/$script")"
  id="${id%%;*}" # --parsable prints "id" or "id;cluster"
  after="$id"
  echo "$stage $id"
}
array=(--array="0-$((shards - 1))" --output="$logs/%x-%A_%a.out")
single=(--output="$logs/%x-%j.out")
if [ -n "$dataset" ]; then
  submit decouple decouple.sbatch "${array[@]}"
  submit merge merge.sbatch "${single[@]}"
fi
if [ -n "$invert_args" ]; then
  submit invert invert.sbatch "${array[@]}"
fi
if [ -n "$edit_args" ]; then
  submit edit edit.sbatch "${array[@]}"
  submit merge merge.sbatch "${single[@]}"
fi
