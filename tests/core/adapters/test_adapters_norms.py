"""The norm rule of adapter training, on plain modules: held norms, train_norms, moved buffers in the file."""
import copy

import pytest
import torch
from torch import nn

from sigplex.core.adapters import apply_adapter, load_adapter, merge_adapters, remove_adapters, save_adapter
from sigplex.core.errors import UserError


class Centre(nn.Module):
    """A custom layer whose buffer moves in train mode (a running mean of its input)."""

    def __init__(self, n):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))

    def forward(self, x):
        if self.training:
            self.mean.lerp_(x.detach().mean(0), 0.5)
        return x - self.mean


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), Centre(6), nn.LayerNorm(6), nn.Linear(6, 2))


def train_a_little(model, steps=5):
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for i in range(steps):
        x = torch.randn(16, 4, generator=torch.Generator().manual_seed(i)) * 3 + 1
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_base_batchnorm_is_held_in_eval_and_keeps_its_statistics():
    model = net()
    before = copy.deepcopy(model.state_dict())
    apply_adapter(model, "lora:r=2,targets=0|5")
    train_a_little(model)
    assert not model[1].training and model[3].training and model[0].training
    assert "held in eval" in repr(model[1])
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert torch.equal(model.state_dict()[key], before[key]), key
    assert not torch.equal(model.state_dict()["3.mean"], before["3.mean"])  # the custom buffer still moves
    remove_adapters(model)
    model.train()
    assert model[1].training and type(model[1]) is nn.BatchNorm1d


def test_file_round_trip_restores_moved_buffers_bit_for_bit(tmp_path):
    model = net()
    apply_adapter(model, "lora:r=2,targets=0|5")
    train_a_little(model)
    save_adapter(model, tmp_path / "a.safetensors")
    plain = net()
    load_adapter(plain, tmp_path / "a.safetensors")
    assert set(plain.state_dict()) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key
    x = torch.randn(5, 4)
    model.eval()
    plain.eval()
    assert torch.equal(plain(x), model(x))


def test_train_norms_trains_every_norm_and_saves_it(tmp_path):
    model = net()
    report = apply_adapter(model, "lora:r=2,targets=0|5", train_norms=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"1.weight", "1.bias", "4.weight", "4.bias"} <= trainable and "0.weight" not in trainable
    assert report.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    train_a_little(model)
    assert model[1].training and int(model[1].num_batches_tracked) == 5
    save_adapter(model, tmp_path / "a.safetensors")
    plain = net()
    load_adapter(plain, tmp_path / "a.safetensors")  # the rule comes from the file
    assert plain[1].weight.requires_grad
    for key, value in model.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key
    merge_adapters(plain)
    model.eval()
    plain.eval()
    x = torch.randn(5, 4)
    torch.testing.assert_close(plain(x), model(x), rtol=0, atol=1e-5)


def test_loading_under_the_other_rule_is_a_clear_error(tmp_path):
    model = net()
    apply_adapter(model, "lora:r=2,targets=0", train_norms=True)
    save_adapter(model, tmp_path / "a.safetensors")
    held = net()
    apply_adapter(held, "lora:r=2,targets=0")
    with pytest.raises(UserError, match=r"a.safetensors: saved with the base's norms trained.*adapter.train_norms=true"):
        load_adapter(held, tmp_path / "a.safetensors")


def test_a_different_base_is_still_refused_under_train_norms(tmp_path):
    model = net()
    apply_adapter(model, "lora:r=2,targets=0", train_norms=True)
    train_a_little(model)
    save_adapter(model, tmp_path / "a.safetensors")
    load_adapter(net(), tmp_path / "a.safetensors")  # the trained norms are not part of the fingerprint
    with pytest.raises(UserError, match="different base model"):
        load_adapter(net(seed=1), tmp_path / "a.safetensors")
