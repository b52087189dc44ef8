"""Spec parsing, one-line errors, typed specs and the adapter-kind registry."""
from __future__ import annotations

import pytest
import torch
from adapter_testmodels import Block
from torch import nn

from sigplex.core.adapters import (
    Adapter,
    AdapterKind,
    AdapterSpec,
    LoRASpec,
    adapter_kinds,
    apply_adapter,
    parse_specs,
    register_adapter_kind,
    registry,
    spec_field,
)
from sigplex.core.errors import UserError


def test_parse_and_canonical_round_trip():
    (s,) = parse_specs("lora:r=8,alpha=16,dropout=0.1,targets=*.qkv|*.proj")
    assert isinstance(s, LoRASpec)
    assert (s.r, s.alpha, s.dropout, s.targets) == (8, 16.0, 0.1, ("*.qkv", "*.proj"))
    assert s.scale == 2.0
    text = s.to_string()
    assert text == "lora:r=8,alpha=16.0,dropout=0.1,targets=*.qkv|*.proj"
    assert parse_specs(text)[0] == s
    # defaults: alpha = r (scale 1), printed resolved; several specs joined with ';'
    a, b, c = parse_specs("lora:r=4; bottleneck ;conv:kernel=5,spatial=2")
    assert a.scale == 1.0 and a.to_string() == "lora:r=4,alpha=4.0,dropout=0.0"
    assert (b.dim, b.scale) == (64, 0.1)
    assert (c.kernel, c.spatial) == (5, 2)
    assert parse_specs(c.to_string())[0] == c


@pytest.mark.parametrize("text, message", [
    ("lora:r=x", "adapter spec 'lora:r=x': r: expected a positive integer, got 'x'"),
    ("lora:r=0", "adapter spec 'lora:r=0': r: expected a positive integer, got '0'"),
    ("lora:r=2.5", "r: expected a positive integer"),
    ("lora:dropout=1", "dropout: expected a number in [0, 1), got '1'"),
    ("lora:alpha=-1", "alpha: expected a positive number"),
    ("lora:rank=8", "unknown key 'rank'; expected one of targets, r, alpha, dropout"),
    ("lora:r=8,r=4", "key 'r' given twice"),
    ("lora:r", "'r': expected key=value"),
    ("lora:targets=a||b", "targets: expected module-name globs"),
    ("loraa:r=8", "unknown adapter kind 'loraa'; expected one of bottleneck, conv, lora"),
    ("conv:kernel=4", "kernel: expected an odd positive integer, got '4'"),
    ("conv:spatial=4", "spatial: expected 1, 2 or 3"),
    ("bottleneck:dim=-3", "dim: expected a positive integer"),
    ("", "expected 'kind:key=value,...'"),
])
def test_spec_errors_are_one_clear_line(text, message):
    with pytest.raises(UserError) as info:
        parse_specs(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_typed_spec_is_accepted():
    m = Block()
    report = apply_adapter(m, LoRASpec(r=2, targets=("attn.qkv",)))
    assert report.targets[report.specs[0]] == ["attn.qkv"]
    assert m.attn.qkv.adapter_lora.A.shape == (2, 16)
    with pytest.raises(UserError, match="expected a string like 'lora:r=8' or a typed spec"):
        apply_adapter(Block(), 42)


def test_builtin_kinds_registered():
    assert {"lora", "bottleneck", "conv"} <= set(adapter_kinds())
    with pytest.raises(UserError, match="already registered"):
        register_adapter_kind("lora", object())


class GainSpec(AdapterSpec):
    kind = "gain"
    init: float = spec_field(0.0, "a number")


class Gain(Adapter):
    """Adds ``g * output`` (g starts at ``init``)."""

    def __init__(self, spec, target_name):
        super().__init__(spec, target_name)
        self.g = nn.Parameter(torch.tensor(spec.init))

    def forward(self, module, x, output):
        return output + self.g * output


class GainKind(AdapterKind):
    Spec = GainSpec
    wraps = "nn.Linear"

    def check(self, module):
        return None if isinstance(module, nn.Linear) else f"a {type(module).__name__}"

    def build(self, module, spec, target_name):
        return Gain(spec, target_name)


def test_plugin_kind_through_register_hook():
    def register_adapters(register):  # what a plugin's hook implementation does
        register("gain", GainKind)

    try:
        register_adapters(register_adapter_kind)
        assert "gain" in adapter_kinds()
        m = Block()
        x = torch.randn(2, 5, 16)
        y0 = m(x)
        report = apply_adapter(m, "gain:init=0,targets=mlp.fc2")
        assert report.trainable == 1
        assert torch.equal(m(x), y0)
        with torch.no_grad():
            m.mlp.fc2.adapter_gain.g.fill_(1.0)
        assert not torch.allclose(m(x), y0)
        with pytest.raises(UserError, match="matches 'mlp', a Mlp; gain wraps nn.Linear"):
            apply_adapter(Block(), "gain:targets=mlp")
    finally:
        registry._KINDS.pop("gain", None)


def test_lazy_import_path_registration():
    try:
        register_adapter_kind("gain2", "test_adapters_spec:GainKind")
        assert "gain2" in adapter_kinds()
        report = apply_adapter(Block(), "gain2:targets=*.fc1")
        assert report.trainable == 1
        register_adapter_kind("broken", "no_such_module_xyz:Kind")
        with pytest.raises(UserError, match="adapter kind 'broken': cannot import"):
            parse_specs("broken")
    finally:
        registry._KINDS.pop("gain2", None)
        registry._KINDS.pop("broken", None)


def test_kind_from_an_active_plugin(monkeypatch):
    plugins = pytest.importorskip("sigplex.core.plugins")

    class GainPlugin:
        @plugins.hookimpl
        def register_adapters(self, register):
            register("gain3", "test_adapters_spec:GainKind")

    pm = plugins.PluginManager(entry_points=False)
    pm.add_plugin(GainPlugin(), "gainplugin")
    monkeypatch.setattr(plugins, "_DEFAULT", pm)
    try:
        report = apply_adapter(Block(), "gain3:init=0.5,targets=mlp.fc1")
        assert report.trainable == 1 and "gain3" in adapter_kinds()
    finally:
        registry._KINDS.pop("gain3", None)
