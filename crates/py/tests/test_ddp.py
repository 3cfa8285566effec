"""examples/train_torchvision.py, alone and under `torchrun --nproc_per_node 2` on CPU (gloo): it
trains, and the ranks of a DistributedDataParallel run see disjoint samples that together cover
each epoch, and end with the same weights."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "train_torchvision.py"


def run(cmd, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout}\n{r.stderr}"
    return r


def args(demo, record, *extra):
    return [str(EXAMPLE), "--dataset", demo["spec"], "--bank", str(demo["bank"]), "--size", "48",
            "--batch-size", "4", "--workers", "1", "--record", str(record), *extra]


def test_example_trains_in_one_process(demo, tmp_path):
    run([sys.executable, *args(demo, tmp_path / "one", "--epochs", "1", "--max-steps", "2", "--eval")], tmp_path)
    rec = json.loads((tmp_path / "one.rank0").read_text())
    assert rec["world"] == 1 and len(rec["losses"]) == 2
    assert all(math.isfinite(v) for v in rec["losses"])
    assert 0.0 <= rec["test_accuracy"] <= 1.0


def test_two_ranks_see_disjoint_samples_covering_each_epoch(demo, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", "0", "--rdzv_backend", "c10d", "--rdzv_endpoint", "127.0.0.1:0"]
    run([*torchrun, *args(demo, tmp_path / "ddp", "--epochs", "2", "--start-method", "spawn")], tmp_path)
    ranks = [json.loads((tmp_path / f"ddp.rank{r}").read_text()) for r in (0, 1)]
    n = 20  # the demo's training images
    assert [r["world"] for r in ranks] == [2, 2]
    for e in range(2):
        a, b = (r["epochs"][e] for r in ranks)
        assert set(a["indices"]).isdisjoint(b["indices"]), f"epoch {e}"
        assert sorted(a["indices"] + b["indices"]) == list(range(n)), f"epoch {e}"
        assert a["samples"] == len(a["indices"]) and b["samples"] == len(b["indices"])
        assert a["steps"] == b["steps"] > 0
    assert ranks[0]["epochs"][0]["indices"] != ranks[0]["epochs"][1]["indices"], "reshuffled per epoch"
    assert all(math.isfinite(v) for r in ranks for v in r["losses"])
    # DDP averages the gradients: both ranks end with the same weights.
    assert ranks[0]["weights_checksum"] == ranks[1]["weights_checksum"]
