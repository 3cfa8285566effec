"""deda.PartBank, deda.DataSet and the errors of bad input: Python exceptions naming the file,
part or sample, never an abort of the interpreter."""
import json
import os
import pickle
import re
import signal

import numpy as np
import pytest
import torch

import deda
from deda.torch import DedaDataset


def test_part_bank_records_summary_and_verify(demo):
    bank = deda.PartBank(demo["bank"])
    assert bank.class_names == ["bird", "fish", "flower", "fruit"]
    kinds = [r["kind"] for r in bank.records]
    assert len(bank) == len(kinds) == 60
    assert (kinds.count("cdp"), kinds.count("cip"), kinds.count("synthetic_cdp")) == (20, 20, 20)
    manifest = [json.loads(line) for line in (demo["bank"] / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in bank.records) == sorted(r["id"] for r in manifest)
    rows = bank.summary()
    assert [(r["name"], r["cdp"], r["cip"], r["syn"]) for r in rows][0] == ("bird", 5, 5, 5)
    assert "total" in bank.summary_table()
    report = bank.verify()
    assert report == {"checked": 60, "ok": True, "damaged": []}
    cdp = next(r for r in bank.records if r["kind"] == "cdp")
    assert bank.path_of(cdp["id"]).is_file()


def test_data_set_classes_and_splits(demo):
    ds = deda.DataSet(demo["spec"])
    assert ds.classes == ["bird", "fish", "flower", "fruit"]
    assert (len(ds.train), len(ds.test)) == (20, 60)
    s = ds.train[0]
    assert s["path"].is_file() and s["id"].startswith("train/") and len(s["classes"]) == 1
    # The bank's source images are the training samples' ids.
    sources = {r["source_image"] for r in deda.PartBank(demo["bank"]).records}
    assert sources == {s["id"] for s in ds.train}


def test_verify_names_a_damaged_part(bank_copy):
    bank = deda.PartBank(bank_copy)
    cip = next(r for r in bank.records if r["kind"] == "cip")
    path = bank.path_of(cip["id"])
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    report = bank.verify()
    assert not report["ok"] and [d[0] for d in report["damaged"]] == [cip["id"]]


def test_missing_bank_and_bad_specs_raise_naming_them(demo, tmp_path):
    missing = tmp_path / "no-such-bank"
    with pytest.raises(deda.BankError, match="no-such-bank"):
        deda.PartBank(missing)
    with pytest.raises(deda.BankError, match="no-such-bank"):
        DedaDataset(demo["spec"], missing)
    with pytest.raises(deda.DataError, match="imagenet"):
        deda.DataSet("imagenet:/x")
    with pytest.raises(deda.DataError, match="nowhere"):
        deda.DataSet(f"scarce:{tmp_path / 'nowhere'}")
    with pytest.raises(deda.ConfigError, match="p_aug"):
        DedaDataset(demo["spec"], demo["bank"], combine={"p_aug": 2.0})
    with pytest.raises(deda.ConfigError, match="no_such_field"):
        DedaDataset(demo["spec"], demo["bank"], combine={"no_such_field": 1})
    assert issubclass(deda.BankError, deda.DedaError)


def test_classes_disagreeing_with_the_bank_raise_naming_bank_and_class(demo, bank_copy):
    meta = json.loads((bank_copy / "bank.json").read_text())
    meta["class_names"][1] = "whale"
    (bank_copy / "bank.json").write_text(json.dumps(meta))
    with pytest.raises(deda.BankError) as e:
        DedaDataset(demo["spec"], bank_copy)
    msg = str(e.value)
    assert str(bank_copy) in msg and "whale" in msg and "fish" in msg, msg


def test_a_changed_part_file_is_a_sample_error_naming_the_part(demo, bank_copy):
    ds = DedaDataset(demo["spec"], bank_copy, combine={"p_aug": 1.0, "p_mix": 0.0, "p_syn": 0.0}, size=64)
    bank = deda.PartBank(bank_copy)
    for r in bank.records:
        if r["kind"] == "cdp":
            p = bank.path_of(r["id"])
            p.write_bytes(p.read_bytes() + b"x")
    with pytest.raises(deda.SampleError) as e:
        ds[0]
    msg = str(e.value)
    assert "cdp/" in msg and "sample 0" in msg and ds.sample_id(0) in msg, msg


def test_a_raising_transform_names_the_sample_and_chains_the_cause(demo):
    def transform(x):
        raise ValueError("boom")

    ds = DedaDataset(demo["spec"], demo["bank"], transform=transform, size=64)
    with pytest.raises(deda.TransformError, match="boom") as e:
        ds[3]
    assert ds.sample_id(3) in str(e.value) and str(deda.DataSet(demo["spec"]).train[3]["path"]) in str(e.value)
    assert isinstance(e.value.__cause__, ValueError)
    assert ds.in_flight() == [], "a raised sample is not left in flight"
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    with pytest.raises(deda.TransformError, match=ds.sample_id(0)):
        next(iter(loader))


def test_output_formats_indexing_and_pickling(demo):
    ds = DedaDataset(demo["spec"], demo["bank"], size=64, seed=7)
    x, t = ds[2]
    assert x.dtype == torch.uint8 and x.shape == (3, 64, 64)
    assert t.dtype == torch.float32 and t.shape == (4,) and abs(float(t.sum()) - 1) < 1e-6
    f = DedaDataset(demo["spec"], demo["bank"], size=64, seed=7, output="float")
    xf, tf = f[2]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert xf.dtype == torch.float32
    assert torch.allclose((x.float() / 255 - mean) / std, xf, atol=1e-6)
    assert torch.equal(t, tf)
    assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])
    with pytest.raises(IndexError):
        ds[len(ds)]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._reader is None
    assert torch.equal(clone[2][0], x)
    ev = DedaDataset(demo["spec"], demo["bank"], split="test", train=False, size=64)
    assert len(ev) == 60 and all(not ev.read(i)[2] for i in range(5))
    assert np.array_equal(ev[0][0].numpy(), ev[0][0].numpy())


class KillWorker0:
    """A transform that SIGKILLs DataLoader worker 0 on its first sample (as the kernel's OOM
    killer would), leaving every other call alone."""

    def __call__(self, x):
        info = torch.utils.data.get_worker_info()
        if info is not None and info.id == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return x


def test_a_worker_killed_mid_epoch_is_an_exception_and_in_flight_names_its_sample(demo):
    ds = DedaDataset(demo["spec"], demo["bank"], transform=KillWorker0(), size=48, seed=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, timeout=60)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid") as e:
        for _ in loader:
            pass
    # Worker 0 took batch 0 (samples 0 and 1) and died on sample 0: in_flight names it.
    pid = int(re.search(r"pid(?:\(s\))? (\d+)", str(e.value)).group(1))
    dead = [s for s in ds.in_flight() if s["pid"] == pid]
    assert [(s["index"], s["alive"]) for s in dead] == [(0, False)], ds.in_flight()
    assert dead[0]["id"] == ds.sample_id(0) and dead[0]["path"].is_file()
    # Nothing was written or damaged: a new iterator without the killer gives every sample.
    ds.transform = None
    batches = list(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2))
    assert sum(len(x) for x, _ in batches) == len(ds)
    assert torch.equal(batches[0][0][1], ds[1][0])
    assert deda.PartBank(demo["bank"]).verify()["ok"]
