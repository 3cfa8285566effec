#!/usr/bin/env bash
# Runs deda's offline stages on Kubernetes one after another (Kubernetes has no dependencies
# between Jobs, so this script waits for each to complete):
#   deploy/k8s/run.sh decouple merge [invert] [edit merge]
# Applies storage.yaml and config.yaml first (edit them for your cluster: storage class,
# paths, flags, image). A Job left from an earlier run under the same name is deleted first;
# the bank on the volume is kept, so a rerun resumes. Needs kubectl and a cluster.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -gt 0 ] || set -- decouple merge edit merge
command -v kubectl >/dev/null || { echo "run.sh: kubectl not found" >&2; exit 2; }
kubectl apply -f "$here/storage.yaml" -f "$here/config.yaml"
for stage in "$@"; do
  case "$stage" in
  decouple | invert | edit | merge) ;;
  *) echo "run.sh: unknown stage $stage (decouple, invert, edit, merge)" >&2; exit 2 ;;
  esac
  job="deda-$stage"
  kubectl delete job "$job" --ignore-not-found --wait
  kubectl apply -f "$here/$stage.yaml"
  echo "run.sh: waiting for job/$job"
  while :; do
    state="$(kubectl get job "$job" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}')"
    case "$state" in
    *Complete*) echo "run.sh: job/$job complete"; break ;;
    *Failed*) echo "run.sh: job/$job failed: kubectl describe job/$job; kubectl logs job/$job" >&2; exit 1 ;;
    esac
    sleep 10
  done
done
