"""A multi-label data set (Pascal VOC 2007) through DedaDataset: the targets are what `deda train`
trains the same samples with. Under the multi-label loss (`loss = "auto"` on voc2007, or "bce") a
real image's target is multi-hot, 1 on each class of its annotation (deda_train::data::source_for);
a De-DA combination keeps the area weights of its pasted CDPs; `loss="cross_entropy"` gives the
soft label. Every target is the Rust loader's own row for that sample, byte for byte."""
import numpy as np
import pytest

import deda
from deda.torch import DedaDataset

SIZE = dict(size=32, resize=36, seed=5)


def annotated(voc, split="train"):
    """Each sample's classes as `deda.DataSet` reads them from the XML annotations."""
    samples = getattr(deda.DataSet(voc["spec"]), split)
    return [sorted(s["classes"]) for s in samples]


def positives(target):
    return sorted(int(c) for c in np.flatnonzero(target.numpy() > 0))


@pytest.mark.parametrize("split", ["train", "test"])
def test_real_voc_images_are_multi_hot_under_the_multi_label_loss(voc, split):
    classes = annotated(voc, split)
    assert all(len(c) >= 1 for c in classes) and any(len(c) == 2 for c in classes)
    for loss in ("auto", "bce"):
        ds = DedaDataset(voc["spec"], None, split=split, loss=loss, **SIZE)
        assert ds.classes[:3] == ["aeroplane", "bicycle", "bird"] and len(ds.classes) == 20
        for i, want in enumerate(classes):
            target = ds[i][1]
            expect = np.zeros(20, dtype=np.float32)
            expect[want] = 1.0
            assert np.array_equal(target.numpy(), expect), f"{loss} sample {ds.sample_id(i)}: {target}"
    # The soft label of the cross-entropy loss: the classes weighed equally.
    soft = DedaDataset(voc["spec"], None, split=split, loss="cross_entropy", **SIZE)
    for i, want in enumerate(classes):
        t = soft[i][1].numpy()
        assert positives(soft[i][1]) == want
        assert np.allclose(t[want], 1.0 / len(want)) and abs(t.sum() - 1.0) < 1e-6


def test_combinations_keep_area_weights_and_match_the_rust_loader(voc):
    classes = annotated(voc)
    ds = DedaDataset(voc["spec"], voc["bank"], combine={"p_aug": 0.6, "p_syn": 0.0, "p_mix": 0.5},
                     output="float", **SIZE)
    kinds = {"real": 0, "one": 0, "two": 0}
    for epoch in range(3):
        ds.set_epoch(epoch)
        batches = ds.rust_loader_epoch(epoch, batch_size=5, threads=2)
        assert sum(len(ix) for ix, _, _ in batches) == len(ds)
        for indices, images, targets in batches:
            for k, i in enumerate(indices):
                image, target, combined = ds.read(i)
                assert target.numpy().tobytes() == targets[k].tobytes(), f"epoch {epoch} sample {i}"
                assert image.numpy().tobytes() == images[k].tobytes(), f"epoch {epoch} sample {i}"
                t = target.numpy()
                if not combined:
                    assert positives(target) == classes[i] and np.all(t[t > 0] == 1.0), t
                    kinds["real"] += 1
                elif (t > 0).sum() == 1:
                    assert t.max() == 1.0, t  # one pasted CDP: 1 on its class
                    kinds["one"] += 1
                else:
                    # Two pasted CDPs: their visible areas' weights, summing to 1.
                    assert (t > 0).sum() == 2 and abs(t.sum() - 1.0) < 1e-5 and t.max() < 1.0, t
                    kinds["two"] += 1
    assert all(v > 0 for v in kinds.values()), kinds


def test_an_unknown_loss_is_a_config_error(voc):
    with pytest.raises(deda.ConfigError, match="loss"):
        DedaDataset(voc["spec"], None, loss="softmax", **SIZE)
