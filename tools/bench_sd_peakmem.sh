#!/usr/bin/env bash
# Peak GPU memory of one benchmark process, measured the same way for deda and the PyTorch
# reference: polls `nvidia-smi --query-compute-apps=pid,used_memory` every 0.2 s for the command's
# process and its descendants while it runs (driver-side memory: the CUDA context plus whatever
# the caching allocator holds), then prints one JSON line after the command's own output:
#   {"peak_gpu_mem": "<label>", "nvidia_smi_mib": N, "exit": RC}
# Usage: tools/bench_sd_peakmem.sh LABEL CMD [ARGS...]
# Without nvidia-smi, nvidia_smi_mib is null and "note" says why. The exit code is the command's.
set -uo pipefail
label="$1"; shift
"$@" &
pid=$!
# A timeout or Ctrl-C on this wrapper also stops the command (no orphan holding the GPU).
trap 'kill "$pid" 2>/dev/null; wait "$pid"; exit 143' TERM INT
peak=0
have_smi=1
command -v nvidia-smi >/dev/null 2>&1 || have_smi=0
descendants() {
  local p=$1
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do descendants "$c"; done
}
while kill -0 "$pid" 2>/dev/null; do
  if [ "$have_smi" = 1 ]; then
    pids=" $(descendants "$pid" | tr '\n' ' ') "
    used=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null \
      | awk -F', *' -v pids="$pids" 'index(pids, " " $1 " ") { s += $2 } END { print s + 0 }')
    [ "${used:-0}" -gt "$peak" ] && peak=$used
  fi
  sleep 0.2
done
wait "$pid"; rc=$?
if [ "$have_smi" = 1 ]; then
  printf '{"peak_gpu_mem": "%s", "nvidia_smi_mib": %s, "exit": %s}\n' "$label" "$peak" "$rc"
else
  printf '{"peak_gpu_mem": "%s", "nvidia_smi_mib": null, "exit": %s, "note": "nvidia-smi not found"}\n' "$label" "$rc"
fi
exit "$rc"
