import numpy as np
import pytest
import torch

from introdetect.data import Episode, IntroDataset, collate, episode_input, step_targets
from introdetect.model import IntroDetector
from introdetect.params import ModelParams, TrainParams
from introdetect.training import fit, load_checkpoint, split_train_val


def _ep(eid, series, n, start, end, d=8, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    if start is not None:
        x[int(start * 2) : int(end * 2), 0] += 4.0  # a learnable "intro" channel
    return Episode(eid, series, x, 2.0, start, end, {})


def test_step_targets_use_step_centres():
    y = step_targets(10, 2.0, 1.0, 3.0)  # centres 0.25, 0.75, ...
    assert y.tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
    assert step_targets(4, 2.0, None, None).sum() == 0


def test_episode_input_dims():
    x = episode_input(np.zeros((5, 512), np.float16), np.zeros((5, 33), np.float32), True)
    assert x.shape == (5, 545)
    assert episode_input(np.zeros((5, 512)), np.zeros((5, 33)), False).shape == (5, 513)


def test_collate_pads_and_masks():
    ds = IntroDataset([_ep("a", "s", 10, 1, 3), _ep("b", "s", 6, None, None)])
    batch = collate([ds[0], ds[1]])
    assert batch["x"].shape == (2, 10, 8) and batch["mask"].shape == (2, 10)
    assert batch["mask"][0].all() and batch["mask"][1].sum() == 6
    assert batch["x"][1, 6:].abs().sum() == 0 and batch["y"][1].sum() == 0
    assert batch["lengths"].tolist() == [10, 6]
    assert batch["presence"].tolist() == [1.0, 0.0]
    assert torch.allclose(batch["reg"][0], torch.tensor([1 / 5, 3 / 5]))


def test_augmented_crops_keep_the_intro():
    ds = IntroDataset([_ep("a", "s", 120, 40.0, 48.0)], augment=True, seed=1)
    for _ in range(50):
        item = ds[0]
        y = item["y"].numpy()
        assert y.sum() == 16  # 8 s at 2 steps/s, always whole
        n = len(y)
        start, end = item["reg"].numpy() * n / 2.0
        assert y[round(start * 2)] == 1 and y[round(end * 2) - 1] == 1


def test_dropped_repetition_reads_zero_only_in_the_repetition_columns_of_the_main_view():
    ep = _ep("a", "s", 40, 5.0, 9.0)
    ep.x[:, -3:] = 1.0  # three trailing "repetition" channels
    ep.rep_cols, ep.x_alt = 3, ep.x + 10.0
    views = {"main": 0, "alt": 0, "dropped": 0}
    ds = IntroDataset([ep], augment=True, seed=0, crop_s=0.0, drop_repetition=0.5)
    for _ in range(200):
        x = ds[0]["x"].numpy()
        if x[0, 0] > 5:  # the other view (known intros left out) keeps its channels
            views["alt"] += 1
            assert (x[:, -3:] == 11.0).all()
        elif (x[:, -3:] == 0).all():
            views["dropped"] += 1
            assert np.abs(x[:, :-3]).sum() > 0
        else:
            views["main"] += 1
            assert (x[:, -3:] == 1.0).all()
    assert all(n > 30 for n in views.values()), views
    assert (ep.x[:, -3:] == 1.0).all()  # the episode's own array is untouched
    # without the augmentation, or with drop_repetition 0, nothing is dropped
    for ds in (IntroDataset([ep], drop_repetition=1.0), IntroDataset([ep], augment=True)):
        assert not any((ds[0]["x"].numpy()[:, -3:] == 0).all() for _ in range(50))


def test_model_shapes_and_padding_invariance():
    torch.manual_seed(0)
    m = IntroDetector(8, hidden=16, layers=2, dropout=0.0).eval()
    a, b = torch.randn(1, 12, 8), torch.randn(1, 7, 8)
    x = torch.zeros(2, 12, 8)
    x[0], x[1, :7] = a[0], b[0]
    out = m(x, torch.tensor([12, 7]))
    assert out["reg"].shape == (2, 2) and out["presence_logit"].shape == (2,)
    assert out["step_logit"].shape == (2, 12)
    assert ((out["reg"] >= 0) & (out["reg"] <= 1)).all()
    alone = m(b, torch.tensor([7]))
    assert torch.allclose(alone["step_logit"][0], out["step_logit"][1, :7], atol=1e-5)
    assert torch.allclose(alone["presence_logit"], out["presence_logit"][1:], atol=1e-5)


def test_series_split_holds_out_whole_series():
    eps = [_ep(f"{s}{i}", s, 10, 1, 3) for s in "abcde" for i in range(3)]
    train, val, how = split_train_val(eps, 0.2, "series", 0)
    assert {e.series for e in train}.isdisjoint({e.series for e in val}) and val
    train, val, how = split_train_val(eps[:6], 0.34, "series", 0)  # 2 series: per episode
    assert {e.series for e in val} == {"a", "b"}
    train, val, how = split_train_val(eps, 0.2, "mixed", 0)  # a held-out series + episodes
    held = {e.series for e in val} - {e.series for e in train}
    assert len(held) == 1 and len({e.series for e in val}) == 5


def test_fit_is_deterministic_and_checkpoint_loads(tmp_path):
    eps = [_ep(f"e{i}", "abc"[i % 3], 40, 5.0 + i % 4, 9.0 + i % 4, seed=i) for i in range(9)]
    tp = TrainParams(epochs=4, patience=10, batch_size=3, augment=True)
    mp = ModelParams(hidden=16, layers=1, dropout=0.1)
    tr, va, _ = split_train_val(eps, 0.2, "mixed", 0)
    r1 = fit(tr, va, mp, tp, tmp_path / "a.pt", {"use_mels": True, "feature_identity": {}})
    r2 = fit(tr, va, mp, tp, tmp_path / "b.pt", {"use_mels": True, "feature_identity": {}})
    assert [h["val_loss"] for h in r1.history] == pytest.approx([h["val_loss"] for h in r2.history])
    assert r1.history[-1]["train_loss"] < r1.history[0]["train_loss"]
    model, meta = load_checkpoint(tmp_path / "a.pt")
    assert meta["model_args"]["in_dim"] == 8 and meta["epoch"] == r1.best_epoch
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")
