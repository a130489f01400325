import numpy as np
import pytest

import peeklens as pl


def test_mapping_and_properties():
    acts = pl.Activations.from_arrays(
        {"input:0": np.ones((4, 3)), "l": np.zeros((2, 3))}, shapes={"input:0": (2, 2)}, labels=[0, 1, 1]
    )
    assert list(acts) == ["input:0", "l"] and len(acts) == 2
    assert acts.input_names == ["input:0"] and acts.layer_names == ["l"]
    assert acts.n_samples == 3 and acts.n_features == 6
    assert acts["input:0"].data.dtype == np.float32
    assert acts.stacked().shape == (6, 3)
    sub = acts.subset([0, 2])
    assert sub.n_samples == 2 and sub.labels.tolist() == [0, 1]
    assert acts.select("l").names == ["l"]
    assert "input:0" in repr(acts) and "labels" in repr(acts)
    with pytest.raises(KeyError, match="no block named 'x'"):
        acts["x"]


def test_mismatched_sample_counts_and_shapes_are_refused():
    with pytest.raises(pl.InputError, match="share the sample axis"):
        pl.Activations.from_arrays({"a": np.ones((2, 3)), "b": np.ones((2, 4))})
    with pytest.raises(pl.InputError, match="per-sample shape"):
        pl.Block("a", np.ones((5, 2), np.float32), (2, 2))
    with pytest.raises(pl.InputError, match="one entry per sample"):
        pl.Activations.from_arrays({"a": np.ones((2, 3))}, labels=[1, 2])
    with pytest.raises(pl.InputError, match="at least one block"):
        pl.Activations({})


def test_fold_restores_the_per_sample_shape():
    b = pl.Block("c", np.arange(24, dtype=np.float32).reshape(12, 2), (3, 2, 2))
    np.testing.assert_array_equal(b.fold(b.data[:, 1]), b.data[:, 1].reshape(3, 2, 2))
    assert b.fold(b.data).shape == (2, 3, 2, 2)


def test_signed_blocks_and_sample_info_follow_select_and_subset():
    info = {"sample": [0, 0, 1], "position": [0, 1, 0], "token": [5, 6, 7]}
    acts = pl.Activations.from_arrays({"h": -np.ones((2, 3)), "r": np.ones((4, 3))}, signed=["h"], sample_info=info)
    assert acts["h"].signed and not acts["r"].signed
    assert acts["h"].info()["signed"] is True and "[signed]" in repr(acts)
    sub = acts.subset([1, 2])
    assert sub["h"].signed and sub.sample_info["token"].tolist() == [6, 7]
    assert acts.select("h").sample_info["position"].tolist() == [0, 1, 0]
    with pytest.raises(pl.InputError, match=r"signed=\['x'\] names no block"):
        pl.Activations.from_arrays({"h": np.ones((2, 3))}, signed=["x"])
    with pytest.raises(pl.InputError, match=r"sample_info arrays must have one entry per sample \(3\)"):
        pl.Activations.from_arrays({"h": np.ones((2, 3))}, sample_info={"sample": [0, 1]})
