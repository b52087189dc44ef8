"""Adapter-only checkpoints: round trip, wrong-base refusal, metadata, atomic writes."""
from __future__ import annotations

import json

import pytest
import torch
from adapter_testmodels import ConvNet, TinyTransformer, randomize_adapters
from safetensors import safe_open

from sigplex.core.adapters import (
    adapter_checkpoint,
    adapter_state_dict,
    apply_adapter,
    base_fingerprint,
    has_adapters,
    load_adapter,
    load_adapter_checkpoint,
    save_adapter,
    summary,
)
from sigplex.core.errors import UserError

X = torch.randn(2, 5, 16)


def _trained(spec="lora:r=4;bottleneck:dim=4;conv:dim=4"):
    torch.manual_seed(1)
    base = TinyTransformer()
    m = TinyTransformer()
    m.load_state_dict(base.state_dict())
    apply_adapter(m, spec)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        opt.zero_grad()
        m(X).square().mean().backward()
        opt.step()
    return base, m.eval()


def test_adapter_state_dict_holds_only_adapters():
    _, m = _trained()
    sd = adapter_state_dict(m)
    assert sd and all(".adapter_" in k for k in sd)
    assert set(sd) == {k for k in m.state_dict() if ".adapter_" in k}


def test_round_trip_onto_a_plain_model(tmp_path):
    base, m = _trained()
    path = save_adapter(m, tmp_path / "adapter.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.safetensors"]  # no temp file left
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(adapter_state_dict(m))
    assert meta["adapter_format"] == "sigplex-adapter/2"
    assert meta["adapter_base_fingerprint"] == base_fingerprint(base) == base_fingerprint(m)
    specs = json.loads(meta["adapter_specs"])
    assert specs[0].startswith("lora:r=4,alpha=4.0,dropout=0.0,targets=blocks.0.attn.qkv|")

    plain = TinyTransformer()
    plain.load_state_dict(base.state_dict())
    report = load_adapter(plain, path)
    assert report.trainable == summary(m).trainable and report.share == summary(m).share
    assert torch.equal(plain.eval()(X), m(X))
    # loading onto a model that already carries the same adapters just sets their weights
    again = TinyTransformer()
    again.load_state_dict(base.state_dict())
    apply_adapter(again, specs)
    load_adapter(again, path)
    assert torch.equal(again.eval()(X), m(X))


def test_wrong_base_is_a_clear_error_naming_the_file(tmp_path):
    _, m = _trained("lora:r=2")
    path = save_adapter(m, tmp_path / "a.safetensors")
    other = TinyTransformer()  # different random base weights
    with pytest.raises(UserError) as info:
        load_adapter(other, path)
    assert str(path) in str(info.value) and "different base model" in str(info.value)
    assert not has_adapters(other)  # untouched
    with pytest.raises(UserError, match="cannot apply the saved adapter specs to ConvNet"):
        load_adapter(ConvNet(), path, check_base=False)


def test_save_refuses_to_overwrite_and_bad_files_are_clear(tmp_path):
    _, m = _trained("lora:r=2")
    path = save_adapter(m, tmp_path / "a.safetensors")
    with pytest.raises(UserError, match="file exists"):
        save_adapter(m, path)
    save_adapter(m, path, overwrite=True)
    with pytest.raises(UserError, match="has no adapters to save"):
        save_adapter(TinyTransformer(), tmp_path / "b.safetensors")
    with pytest.raises(UserError, match="does not exist"):
        save_adapter(m, tmp_path / "missing" / "a.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match=f"{junk}: not a readable safetensors file"):
        load_adapter(TinyTransformer(), junk)
    with pytest.raises(UserError, match="adapter file not found"):
        load_adapter(TinyTransformer(), tmp_path / "nope.safetensors")
    from safetensors.torch import save_file
    foreign = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(UserError, match="not a sigplex adapter file"):
        load_adapter(TinyTransformer(), foreign)


def test_fingerprint_ignores_adapters_and_buffers_but_not_base_values():
    m = ConvNet()
    fp = base_fingerprint(m)
    apply_adapter(m, "lora:r=2")
    randomize_adapters(m)
    assert base_fingerprint(m) == fp
    with torch.no_grad():
        m.c1.weight[0, 0, 0] += 1e-3
    assert base_fingerprint(m) != fp


def test_checkpoint_api_for_the_trainer():
    base, m = _trained()
    weights, meta = adapter_checkpoint(m)
    assert set(weights) == set(adapter_state_dict(m)) and all(isinstance(v, str) for v in meta.values())
    plain = TinyTransformer()
    plain.load_state_dict(base.state_dict())
    load_adapter_checkpoint(plain, weights, meta=meta, source="run/ckpt")  # applies the specs
    assert torch.equal(plain.eval()(X), m(X))
    # trainer resume: the model already has the adapters, no metadata needed
    again = TinyTransformer()
    again.load_state_dict(base.state_dict())
    apply_adapter(again, json.loads(meta["adapter_specs"]))
    load_adapter_checkpoint(again, weights)
    assert torch.equal(again.eval()(X), m(X))
    with pytest.raises(UserError, match="run/ckpt: these adapters were trained on a different base"):
        load_adapter_checkpoint(TinyTransformer(), weights, meta=meta, source="run/ckpt")
    with pytest.raises(UserError, match="no adapters and no adapter specs"):
        load_adapter_checkpoint(TinyTransformer(), weights)
    bad = dict(weights)
    bad.pop(next(iter(bad)))
    with pytest.raises(UserError, match="adapter keys differ"):
        load_adapter_checkpoint(again, bad)


def test_fingerprint_cache_sees_in_place_changes():
    m = TinyTransformer()
    fp = base_fingerprint(m)
    assert base_fingerprint(m) == fp  # cached
    with torch.no_grad():
        m.head.bias.add_(1.0)
    assert base_fingerprint(m) != fp
