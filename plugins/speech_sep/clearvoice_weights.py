"""Loading weights into a separator: our own layout as it is, ClearerVoice-Studio's MossFormer2_SS mapped.

:func:`load_weights` is what the task's ``load_weights`` member does for ``--init-from`` /
``--distill-from`` weights files and shipped weights. A ClearerVoice checkpoint (``model.``/
``module.`` prefixes, names such as ``mask_net.mdl.intra_mdl.mossformerM.fsmn.0.conv1.0.weight``)
is recognised by its names; every one of its tensors is renamed (and 1x1 / ``[k, 1]`` conv kernels
reshaped to our Linear / Conv1d kernels) and the result is loaded strictly. Their fixed sinusoid
and rotary frequencies are checked against ours rather than loaded. The model must be
``MossFormer2(variant="clearvoice")`` at the checkpoint's sizes (the ``clearvoice-16k`` /
``clearvoice-8k`` presets); otherwise the error names the settings that fit.
"""
from __future__ import annotations

import re

import torch

from sigplex.core.errors import UserError
from sigplex.core.weights import load_state_strict

STACK = "mask_net.mdl.intra_mdl.mossformerM."
TOP = {
    "enc.conv1d.weight": "encoder.conv.weight",
    "dec.weight": "decoder.deconv.weight",
    "mask_net.norm.weight": "masknet.norm.weight",
    "mask_net.norm.bias": "masknet.norm.bias",
    "mask_net.conv1d_encoder.weight": "masknet.conv_in.weight",
    "mask_net.pos_enc.scale": "masknet.pos.scale",
    "mask_net.mdl.intra_mdl.norm.weight": "masknet.norm_out.weight",
    "mask_net.mdl.intra_mdl.norm.bias": "masknet.norm_out.bias",
    "mask_net.mdl.intra_norm.weight": "masknet.norm_skip.weight",
    "mask_net.mdl.intra_norm.bias": "masknet.norm_skip.bias",
    "mask_net.prelu.weight": "masknet.act.weight",
    "mask_net.conv1d_out.weight": "masknet.conv_spk.weight",
    "mask_net.conv1d_out.bias": "masknet.conv_spk.bias",
    "mask_net.output.0.weight": "masknet.gate_tanh.weight",
    "mask_net.output.0.bias": "masknet.gate_tanh.bias",
    "mask_net.output_gate.0.weight": "masknet.gate_sigmoid.weight",
    "mask_net.output_gate.0.bias": "masknet.gate_sigmoid.bias",
    "mask_net.conv1_decoder.weight": "masknet.conv_out.weight",
}
# their FFConvM is Sequential(norm, Linear, SiLU, ConvModule(Transpose, DepthwiseConv1d), Dropout)
FFCONV = {"mdl.0.g": "norm.g", "mdl.0.weight": "norm.weight", "mdl.0.bias": "norm.bias",
          "mdl.1.weight": "linear.weight", "mdl.1.bias": "linear.bias",
          "mdl.3.sequential.1.conv.weight": "conv.conv.weight"}
FSMN_BLOCK = {"conv1.0.weight": "in_proj.weight", "conv1.0.bias": "in_proj.bias", "conv1.1.weight": "in_act.weight",
              "norm1.weight": "norm_in.weight", "norm1.bias": "norm_in.bias",
              "norm2.weight": "norm_out.weight", "norm2.bias": "norm_out.bias",
              "conv2.weight": "out_proj.weight", "conv2.bias": "out_proj.bias",
              "gated_fsmn.fsmn.linear.weight": "fsmn.linear.weight", "gated_fsmn.fsmn.linear.bias": "fsmn.linear.bias",
              "gated_fsmn.fsmn.project.weight": "fsmn.project.weight"}
# their u branch feeds the FSMN and their v gates it; ours are named the other way round
GATES = {"to_u": "to_v", "to_v": "to_u"}
MEMORY = {"conv": "convs", "norm": "norms", "prelu": "acts"}
ROTARY_CACHES = ("cached_freqs", "cached_scales", "dummy", "scale")  # non-learned buffers of some versions
FIXED = object()  # a key checked against our fixed values, not loaded


def is_clearvoice(weights) -> bool:
    """Whether ``weights`` (a state dict) is in ClearerVoice-Studio's MossFormer2_SS layout."""
    return any(STACK in key for key in weights)


def strip_prefixes(key: str) -> str:
    """Drop DataParallel's ``module.`` and the ``MossFormer2_SS_16K`` wrapper's ``model.``."""
    for prefix in ("module.", "model."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def our_name(key: str):
    """Our parameter name for one ClearerVoice key (prefixes stripped); FIXED for fixed frequencies; None if unknown."""
    if key in TOP:
        return TOP[key]
    if key == "mask_net.pos_enc.inv_freq":
        return FIXED
    m = re.fullmatch(re.escape(STACK) + r"layers\.(\d+)\.(.+)", key)
    if m:
        i, rest = m.groups()
        head, _, tail = rest.partition(".")
        if head == "rotary_pos_emb":
            return FIXED if tail == "freqs" or tail in ROTARY_CACHES else None
        if head == "qk_offset_scale" and tail in ("gamma", "beta"):
            return f"masknet.layers.{i}.attn.{rest}"
        if head in ("to_hidden", "to_qk", "to_out") and tail in FFCONV:
            return f"masknet.layers.{i}.attn.{head}.{FFCONV[tail]}"
        return None
    m = re.fullmatch(re.escape(STACK) + r"fsmn\.(\d+)\.(.+)", key)
    if not m:
        return None
    i, rest = m.groups()
    if rest in FSMN_BLOCK:
        return f"masknet.layers.{i}.fsmn.{FSMN_BLOCK[rest]}"
    g = re.fullmatch(r"gated_fsmn\.(to_u|to_v)\.(.+)", rest)
    if g and g.group(2) in FFCONV:
        return f"masknet.layers.{i}.fsmn.{GATES[g.group(1)]}.{FFCONV[g.group(2)]}"
    g = re.fullmatch(r"gated_fsmn\.fsmn\.conv\.(conv|norm|prelu)(\d+)\.(weight|bias)", rest)
    if g:
        return f"masknet.layers.{i}.fsmn.fsmn.memory.{MEMORY[g.group(1)]}.{int(g.group(2)) - 1}.{g.group(3)}"
    return None


def checkpoint_sizes(weights) -> dict:
    """The ``model.*`` settings a ClearerVoice checkpoint was built with, read from its tensor shapes."""
    w = {strip_prefixes(k): v for k, v in weights.items()}
    sizes = {}
    enc = w.get("enc.conv1d.weight")
    if enc is not None:
        sizes.update(dim=int(enc.shape[0]), kernel_size=int(enc.shape[-1]), stride=int(enc.shape[-1]) // 2)
        out = w.get("mask_net.conv1d_out.weight")
        if out is not None:
            sizes["num_spks"] = int(out.shape[0]) // int(enc.shape[0])
    layers = {int(m.group(1)) for k in w for m in [re.match(re.escape(STACK) + r"fsmn\.(\d+)\.", k)] if m}
    if layers:
        sizes["num_layers"] = max(layers) + 1
    first = STACK + "layers.0."
    for name, key, axis in (("query_key_dim", first + "qk_offset_scale.gamma", 1),
                            ("fsmn_inner", STACK + "fsmn.0.conv1.0.weight", 0),
                            ("fsmn_kernel", STACK + "fsmn.0.gated_fsmn.fsmn.conv.conv1.weight", 2)):
        if key in w:
            sizes[name] = int(w[key].shape[axis])
    if first + "rotary_pos_emb.freqs" in w:
        sizes["rotary_dim"] = 2 * int(w[first + "rotary_pos_emb.freqs"].numel())
    if "dim" in sizes and first + "to_out.mdl.1.weight" in w:
        sizes["expansion_factor"] = int(w[first + "to_out.mdl.1.weight"].shape[1]) / sizes["dim"]
    return sizes


def _hint(weights) -> str:
    sizes = checkpoint_sizes(weights)
    sets = " ".join(f"model.{k}={v:g}" if isinstance(v, float) else f"model.{k}={v}" for k, v in sizes.items())
    return ("it is a ClearerVoice-Studio MossFormer2_SS checkpoint; build the model with --config clearvoice-16k "
            f"(or clearvoice-8k), or --set model.name=mossformer2 model.variant=clearvoice {sets}")


def _fixed_frequencies(key: str, model) -> torch.Tensor:
    """The frequencies our modules compute for a fixed (not learned) ClearerVoice buffer, or None if unused."""
    if key.endswith("inv_freq"):
        return model.masknet.pos.inv_freq
    if key.endswith("rotary_pos_emb.freqs"):
        rotary = model.masknet.layers[0].attn.rotary
        dim = rotary.rotary_dim if rotary is not None else 0
        return 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim) if dim else torch.zeros(0)
    return None


def from_clearvoice(weights, model, source="weights") -> dict:
    """A ClearerVoice state dict renamed and reshaped into ``model``'s names (every key used or checked)."""
    target = model.state_dict()
    mapped, unknown = {}, []
    for raw, tensor in weights.items():
        key = strip_prefixes(raw)
        name = our_name(key)
        if name is None:
            unknown.append(raw)
        elif name is FIXED:
            ours = _fixed_frequencies(key, model)
            if ours is not None and (tensor.shape != ours.shape or not torch.allclose(
                    tensor.float().cpu(), ours.float().cpu(), rtol=1e-5, atol=1e-7)):
                raise UserError(f"{source}: {raw} holds {tensor.numel()} fixed frequencies that differ from this "
                                f"model's {ours.numel()}; {_hint(weights)}")
        else:
            want = target.get(name)
            if want is not None and tensor.shape != want.shape and tensor.numel() == want.numel() \
                    and tuple(tensor.shape[:want.dim()]) == tuple(want.shape):
                tensor = tensor.reshape(want.shape)  # Conv1d k=1 -> Linear, Conv2d [k, 1] -> Conv1d
            mapped[name] = tensor
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise UserError(f"{source}: unknown ClearerVoice tensors {', '.join(unknown[:3])}{more}")
    return mapped


def load_weights(model, weights, source="weights") -> None:
    """Load ``weights`` strictly: our layout as it is, ClearerVoice's MossFormer2_SS layout mapped first."""
    if not is_clearvoice(weights):
        load_state_strict(model, weights, source)
        return
    if getattr(model, "variant", None) != "clearvoice":
        raise UserError(f"{source}: does not fit a {type(model).__name__}(variant="
                        f"{getattr(model, 'variant', None)!r}): {_hint(weights)}")
    try:
        load_state_strict(model, from_clearvoice(weights, model, source), source)
    except UserError as exc:
        raise UserError(f"{exc}; {_hint(weights)}") from None


__all__ = ["checkpoint_sizes", "from_clearvoice", "is_clearvoice", "load_weights", "our_name", "strip_prefixes"]
