import numpy as np
import pytest
import torch

import peeklens as pl
from peeklens.studies import Regime, evaluate, load_mnist, normalize, select_indices, train


@pytest.fixture(scope="module")
def mnist_small():
    x, y = load_mnist(train=True)
    return x[:4000], y[:4000]


def test_regime_validation_and_keys():
    with pytest.raises(pl.InputError, match="fraction"):
        Regime(fraction=0)
    with pytest.raises(pl.InputError, match="classes"):
        Regime(classes=(11,))
    with pytest.raises(pl.InputError, match="first_class"):
        Regime(ordered=True, first_class=10)
    assert Regime(fraction=0.5).key() != Regime(fraction=0.25).key()
    assert Regime(name="a").key() == Regime(name="b").key()  # the label does not change the weights
    assert Regime(classes=(4, 3, 2, 1, 0)).classes == (0, 1, 2, 3, 4)


def test_select_indices_regimes():
    y = np.array([3, 9, 1, 9, 0, 1, 3, 9] * 50)
    n = len(y)
    sel = select_indices(y, Regime(fraction=0.25, seed=1))
    assert len(sel) == n // 4 and len(set(sel)) == len(sel)
    assert not np.array_equal(sel, select_indices(y, Regime(fraction=0.25, seed=2)))
    sub = select_indices(y, Regime(classes=(0, 1)))
    assert set(y[sub]) == {0, 1}
    order = y[select_indices(y, Regime(ordered=True))]
    assert (order[: (y == 9).sum()] == 9).all()
    changes = [int(order[i]) for i in range(1, len(order)) if order[i] != order[i - 1]]
    assert changes == [0, 1, 3]  # then the other classes in increasing order
    order7 = y[select_indices(y, Regime(ordered=True, first_class=1))]
    assert order7[0] == 1
    assert len(select_indices(y, Regime(train_samples=10))) == 10
    with pytest.raises(pl.InputError, match="selects no training images"):
        select_indices(y, Regime(classes=(5,)))


def test_train_learns_and_caches(mnist_small, tmp_path, monkeypatch):
    reg = Regime(seed=3, epochs=2)
    tm = train(reg, data=mnist_small, cache=tmp_path, progress=False)
    assert not tm.cached and tm.path.exists() and tm.n_train == 4000
    assert not tm.model.training
    xt, yt = load_mnist(False)
    acc = evaluate(tm.model, xt[:1000], yt[:1000])
    assert acc > 0.4  # 126 SGD steps of the paper's optimizer beat chance (10 %) by far

    # the checkpoint is a plain state dict, loadable with weights_only=True
    state = torch.load(tm.path, weights_only=True)
    assert set(state["model"]) == set(tm.model.state_dict())

    # a second call loads instead of training (training would fail here)
    import peeklens.studies.training as tr

    monkeypatch.setattr(tr, "select_indices", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    again = train(reg, data=mnist_small, cache=tmp_path, progress=False)
    assert again.cached
    for k, v in tm.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])


def test_training_is_deterministic_and_regime_specific(mnist_small):
    small = (mnist_small[0][:400], mnist_small[1][:400])
    a = train(Regime(seed=0), data=small, cache=False, progress=False).model.state_dict()
    b = train(Regime(seed=0), data=small, cache=False, progress=False).model.state_dict()
    c = train(Regime(seed=0, ordered=True), data=small, cache=False, progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc2.weight"], c["fc2.weight"])


def test_broken_checkpoint_is_retrained(mnist_small, tmp_path):
    reg = Regime(train_samples=200)
    (tmp_path / f"{reg.key()}.pt").write_bytes(b"not a checkpoint")
    tm = train(reg, data=mnist_small, cache=tmp_path, progress=False)
    assert not tm.cached and tm.n_train == 200
    assert train(reg, data=mnist_small, cache=tmp_path, progress=False).cached


def test_ordered_training_collapses_to_few_classes(mnist_small):
    tm = train(Regime(ordered=True), data=mnist_small, cache=False, progress=False)
    xt, yt = load_mnist(False)
    with torch.no_grad():
        pred = tm.model(normalize(xt[:1000], "mnist")).argmax(1)
    # 9s first, then 0..8 in order without shuffling: it ends up predicting a few classes only,
    # and far worse than the shuffled network on the same images
    counts = torch.bincount(pred, minlength=10)
    assert int(counts.max()) > 300
    assert evaluate(tm.model, xt[:1000], yt[:1000]) < 0.5


def test_checkpoint_of_another_training_pool_is_not_reused(mnist_small, tmp_path):
    reg = Regime(train_samples=100)
    a = train(reg, data=(mnist_small[0][:300], mnist_small[1][:300]), cache=tmp_path, progress=False)
    b = train(reg, data=(mnist_small[0][:400], mnist_small[1][:400]), cache=tmp_path, progress=False)
    assert not a.cached and not b.cached  # e.g. the CIFAR-10 subset against the full set
    assert train(reg, data=(mnist_small[0][:400], mnist_small[1][:400]), cache=tmp_path, progress=False).cached


def test_new_settings_keep_old_cache_keys():
    # label_noise (added later) stays out of the key at its default, so checkpoints cached before still load
    assert Regime().key() == "paper-mnist-92e29bcc840936ad"
    assert Regime(epochs=1.0).key() == Regime().key() and Regime(epochs=1.0).epochs == 1
    assert Regime(label_noise=0.2).key() != Regime().key()
    assert Regime(epochs=0.25).key() != Regime().key()
    assert Regime(label_noise=0.4, lr=0.1, epochs=0.5).label == "100% of the data, 40% label noise, lr 0.1, 0.5 epochs"
    for bad in (dict(label_noise=1.0), dict(label_noise=-0.1), dict(epochs=0), dict(lr=0)):
        with pytest.raises(pl.InputError):
            Regime(**bad)


def test_noisy_labels_change_exactly_the_share_asked():
    from peeklens.studies import noisy_labels

    y = torch.arange(10).repeat(50)
    idx = np.arange(0, 500, 2)  # only the selected images may change
    z = noisy_labels(y, idx, Regime(label_noise=0.4, seed=3))
    changed = np.flatnonzero((z != y).numpy())
    assert len(changed) == 100 and set(changed) <= set(idx)
    assert torch.equal(z, noisy_labels(y, idx, Regime(label_noise=0.4, seed=3)))  # deterministic per seed
    assert not torch.equal(z, noisy_labels(y, idx, Regime(label_noise=0.4, seed=4)))
    assert noisy_labels(y, idx, Regime()) is y


def test_fractional_epochs_and_label_noise_train(mnist_small):
    x, y = mnist_small
    full = train(Regime(train_samples=512), data=(x, y), cache=False, progress=False).model
    half = train(Regime(train_samples=512, epochs=0.5), data=(x, y), cache=False, progress=False).model
    noisy = train(Regime(train_samples=512, label_noise=0.8), data=(x, y), cache=False, progress=False).model
    w = lambda m: m.fc2.weight.detach()
    assert not torch.equal(w(full), w(half)) and not torch.equal(w(full), w(noisy))


def test_small_cnn():
    from peeklens.studies import SmallCNN, layers_of, make_network

    net = make_network("smallcnn", "cifar10")
    assert isinstance(net, SmallCNN) and net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert layers_of("smallcnn") == ["relu1", "relu2", "relu3"]
    acts = pl.capture(net, torch.rand(4, 3, 32, 32), layers_of("smallcnn"), progress=False)
    assert [acts[n].shape for n in acts.layer_names] == [(16, 16, 16), (32, 8, 8), (64, 4, 4)]
    with pytest.raises(pl.InputError, match="CIFAR-10"):
        make_network("smallcnn", "mnist")
    assert Regime(network="smallcnn", dataset="cifar10").network == "smallcnn"
