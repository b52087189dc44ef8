"""Swin UNETR (Hatamizadeh et al. 2022) for brain tumour segmentation, drop-in for MONAI's.

Same constructor and parameter names as ``monai.networks.nets.SwinUNETR`` (MONAI 1.6.1), so
``SwinUNETR(...).load_state_dict(monai_model.state_dict(), strict=True)`` works and the outputs
agree to ~1e-5 in fp32. The encoder is :class:`sigplex.core.backbones.swin.SwinTransformer`
(cached shifted-window plans, fused pad/shift/partition gathers, SDPA attention); the
convolutional decoder reuses MONAI's ``UnetrBasicBlock`` / ``UnetrUpBlock`` / ``UnetOutBlock``.

>>> import torch
>>> net = SwinUNETR(in_channels=4, out_channels=3, feature_size=12, depths=(1, 1, 1, 1))
>>> net(torch.randn(1, 4, 64, 64, 64)).shape
torch.Size([1, 3, 64, 64, 64])

Pretrained self-supervised encoders (MONAI's ``model_swinvit.pt``, keys ``module.*``, or
``swinViT.*`` / ``encoder.*`` state dicts) load with :meth:`SwinUNETR.load_swin_vit`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from sigplex.core.backbones.swin import MERGING_MODE, SwinTransformer
from sigplex.core.blocks import ChannelsLastConv, ResidualConvBlock, UnetResBlock
from sigplex.core.errors import UserError
from sigplex.core.models import register_model
from sigplex.core.ops import channels_last


class UpBlock(nn.Module):
    """MONAI ``UnetrUpBlock(kernel_size=3, upsample_kernel_size=2, norm="instance", res_block=True)``:
    2x transposed conv, concatenate the skip, residual conv block. Same parameter names."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        tconv = nn.ConvTranspose3d if spatial_dims == 3 else nn.ConvTranspose2d
        self.transp_conv = ChannelsLastConv(tconv(in_channels, out_channels, kernel_size=2, stride=2, bias=False))
        self.conv_block = UnetResBlock(spatial_dims, 2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.transp_conv(channels_last(x))
        return self.conv_block(torch.cat((channels_last(up), channels_last(skip)), dim=1))


class OutBlock(nn.Module):
    """MONAI ``UnetOutBlock``: a 1x1 conv with bias (``conv.conv``)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        self.conv = ChannelsLastConv(conv(in_channels, out_channels, kernel_size=1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(channels_last(x))


def _is_plain_instance(norm_name) -> bool:
    if isinstance(norm_name, str):
        return norm_name.lower() == "instance"
    if isinstance(norm_name, (tuple, list)) and len(norm_name) == 2 and str(norm_name[0]).lower() == "instance":
        extra = dict(norm_name[1] or {})
        return not extra.get("affine", False) and not extra.get("track_running_stats", False) and set(extra) <= {
            "affine", "track_running_stats", "eps"} and extra.get("eps", 1e-5) == 1e-5
    return False


class SwinUNETRConfigError(UserError, ValueError):
    """A bad SwinUNETR argument or input size (also a ``ValueError``, as MONAI raises)."""


def _rep(value, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise SwinUNETRConfigError(f"SwinUNETR: {name} must be an int or {n} ints for spatial_dims={n}, got {value}")
    return value


_HYENA_DEFAULTS = {
    "hyena_kernel_size": 3, "hyena_kernel_mlp_dim": 32, "hyena_kernel_layers": 3,
    "hyena_mask_max_attenuation": 0.95, "hyena_fft_padding": "circular", "hyena_grid_type": "single",
    "hyena_use_chunked_fft": False, "hyena_use_fft_short_conv": False, "hyena_omega_0": 10.0,
    "hyena_l_cache": 32, "hyena_short_conv_fft_chunks": 0,
}


@register_model(
    "swin_unetr",
    domain="brain_seg",
    tiny={"in_channels": 4, "out_channels": 3, "feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (3, 3, 3, 3)},
    example_input=lambda: torch.randn(1, 4, 64, 64, 64),  # 32^3 leaves a 1-voxel bottleneck
    default={"in_channels": 4, "out_channels": 3, "feature_size": 24},
)
class SwinUNETR(nn.Module):
    """Swin UNETR with MONAI 1.6.1's constructor; input ``[B, in_channels, *S]``, S divisible by ``patch_size**5``.

    Supported as in MONAI: ``patch_size``, ``depths``, ``num_heads``, ``window_size``,
    ``qkv_bias``, ``mlp_ratio``, ``feature_size`` (multiple of 12), ``norm_name``, the three
    dropout rates, ``normalize``, ``patch_norm``, ``use_checkpoint``, ``spatial_dims`` (2/3),
    ``downsample`` ("merging", "mergingv2" or a merging class), ``use_v2``.
    ``use_flash_attention`` is accepted and has no effect (SDPA is always used, in training too).
    Refused with a clear error: ``use_hyena`` / ``hyena_stages`` (HyenaND is not implemented here)
    and ``norm_layer`` other than ``nn.LayerNorm``.
    """

    adapter_targets = {
        "lora": ("swinViT.*.attn.qkv", "swinViT.*.attn.proj"),
        "bottleneck": ("swinViT.*.mlp",),
        "conv": ("swinViT.patch_embed.proj", "swinViT.layers*c.*.layer.conv*.conv"),
    }

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch_size: int = 2,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: Sequence[int] | int = 7,
        qkv_bias: bool = True,
        mlp_ratio: float = 4.0,
        feature_size: int = 24,
        norm_name: tuple | str = "instance",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        dropout_path_rate: float = 0.0,
        normalize: bool = True,
        norm_layer: type = nn.LayerNorm,
        patch_norm: bool = False,
        use_checkpoint: bool = False,
        spatial_dims: int = 3,
        downsample: str | type = "merging",
        use_v2: bool = False,
        use_hyena: bool = False,
        hyena_stages: Sequence[bool] | None = None,
        use_flash_attention: bool = False,
        **hyena_kwargs,
    ) -> None:
        super().__init__()
        from monai.networks.blocks import UnetrBasicBlock, UnetrUpBlock

        err = SwinUNETRConfigError
        unknown = sorted(set(hyena_kwargs) - set(_HYENA_DEFAULTS))
        if unknown:
            raise err(f"SwinUNETR: unexpected argument(s) {', '.join(unknown)}; see MONAI 1.6.1's SwinUNETR signature")
        if use_hyena or (hyena_stages is not None and any(hyena_stages)):
            raise err("SwinUNETR: use_hyena/hyena_stages (HyenaND blocks) are not supported by sigplex; "
                      "use windowed attention (use_hyena=False, hyena_stages=None)")
        if spatial_dims not in (2, 3):
            raise err(f"SwinUNETR: spatial_dims must be 2 or 3, got {spatial_dims}")
        if norm_layer is not nn.LayerNorm:
            raise err(f"SwinUNETR: norm_layer must be torch.nn.LayerNorm, got {norm_layer!r}")
        if not isinstance(patch_size, int) or patch_size < 1:
            raise err(f"SwinUNETR: patch_size must be a positive int, got {patch_size!r}")
        for name, rate in (("drop_rate", drop_rate), ("attn_drop_rate", attn_drop_rate),
                           ("dropout_path_rate", dropout_path_rate)):
            if not 0 <= rate <= 1:
                raise err(f"SwinUNETR: {name} must be between 0 and 1, got {rate}")
        if feature_size % 12 != 0:
            raise err(f"SwinUNETR: feature_size must be divisible by 12, got {feature_size}")
        if len(depths) != 4 or len(num_heads) != 4:
            raise err(f"SwinUNETR: depths and num_heads need 4 entries, got {tuple(depths)} and {tuple(num_heads)}")
        for i, h in enumerate(num_heads):
            if (feature_size * 2 ** i) % h:
                raise err(f"SwinUNETR: stage {i + 1} width {feature_size * 2 ** i} is not divisible by num_heads[{i}]={h}")
        if isinstance(downsample, str) and downsample not in MERGING_MODE:
            raise err(f"SwinUNETR: downsample must be one of {sorted(MERGING_MODE)} or a module class, got {downsample!r}")

        self.in_channels, self.out_channels = in_channels, out_channels
        self.spatial_dims = spatial_dims
        self.patch_size = patch_size
        self.normalize = normalize
        self.use_flash_attention = use_flash_attention  # accepted for compatibility; SDPA is always on
        self.swinViT = SwinTransformer(
            in_chans=in_channels, embed_dim=feature_size, window_size=_rep(window_size, spatial_dims, "window_size"),
            patch_size=(patch_size,) * spatial_dims, depths=depths, num_heads=num_heads, mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=dropout_path_rate,
            patch_norm=patch_norm, use_checkpoint=use_checkpoint, spatial_dims=spatial_dims,
            downsample=downsample, use_v2=use_v2,
        )
        f = feature_size
        # With MONAI's default instance norm the decoder uses sigplex's blocks (same parameter
        # names; channels-last convs + a fast instance norm); other norms use MONAI's blocks.
        self._fast_decoder = _is_plain_instance(norm_name)
        self._instance_norm = "instance" in str(norm_name).lower()

        def basic(cin, cout):
            if self._fast_decoder:
                return ResidualConvBlock(spatial_dims, cin, cout)
            return UnetrBasicBlock(spatial_dims=spatial_dims, in_channels=cin, out_channels=cout, kernel_size=3,
                                   stride=1, norm_name=norm_name, res_block=True)

        def up(cin, cout):
            if self._fast_decoder:
                return UpBlock(spatial_dims, cin, cout)
            return UnetrUpBlock(spatial_dims=spatial_dims, in_channels=cin, out_channels=cout, kernel_size=3,
                                upsample_kernel_size=2, norm_name=norm_name, res_block=True)

        self.encoder1 = basic(in_channels, f)
        self.encoder2 = basic(f, f)
        self.encoder3 = basic(2 * f, 2 * f)
        self.encoder4 = basic(4 * f, 4 * f)
        self.encoder10 = basic(16 * f, 16 * f)
        self.decoder5 = up(16 * f, 8 * f)
        self.decoder4 = up(8 * f, 4 * f)
        self.decoder3 = up(4 * f, 2 * f)
        self.decoder2 = up(2 * f, f)
        self.decoder1 = up(f, f)
        self.out = OutBlock(spatial_dims, f, out_channels)

    # -- checks ---------------------------------------------------------------------------------
    @torch.jit.unused
    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != self.spatial_dims + 2:
            raise SwinUNETRConfigError(
                f"SwinUNETR: input must be [batch, channels, {'D, H, W' if self.spatial_dims == 3 else 'H, W'}] "
                f"({self.spatial_dims + 2} dims), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise SwinUNETRConfigError(
                f"SwinUNETR: input has {x.shape[1]} channels, expected in_channels={self.in_channels}")
        self._check_input_size(tuple(x.shape[2:]))

    @torch.jit.unused
    def _check_input_size(self, spatial_shape: Sequence[int]) -> None:
        """Raise unless every spatial size is divisible by ``patch_size**5`` (32 by default)."""
        div = self.patch_size ** 5
        wrong = [i + 2 for i, s in enumerate(spatial_shape) if s % div]
        if wrong:
            raise SwinUNETRConfigError(
                f"SwinUNETR: spatial dimensions {wrong} of input image (spatial shape: {tuple(spatial_shape)}) "
                f"must be divisible by {self.patch_size}**5 = {div}; crop or pad the input (e.g. 96, 128)")
        bottleneck = 1
        for s in spatial_shape:
            bottleneck *= s // div
        if bottleneck == 1 and self._instance_norm:
            raise SwinUNETRConfigError(
                f"SwinUNETR: input spatial shape {tuple(spatial_shape)} leaves a single voxel at the bottleneck "
                f"(size / {div} = 1 everywhere); instance norm needs more than one: use at least one dimension "
                f">= {2 * div} (e.g. {tuple(2 * div for _ in spatial_shape)})")

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            self._check_input(x_in)
        hidden = self.swinViT(x_in, self.normalize)
        enc0 = self.encoder1(x_in)
        enc1 = self.encoder2(hidden[0])
        enc2 = self.encoder3(hidden[1])
        enc3 = self.encoder4(hidden[2])
        dec4 = self.encoder10(hidden[4])
        dec3 = self.decoder5(dec4, hidden[3])
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        dec0 = self.decoder2(dec1, enc1)
        out = self.decoder1(dec0, enc0)
        return self.out(out).contiguous()

    # -- pretrained encoders --------------------------------------------------------------------
    def load_swin_vit(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True) -> dict[str, list[str]]:
        """Load a pretrained Swin encoder into ``swinViT``.

        Accepts MONAI's self-supervised checkpoint (``{"state_dict": {"module.layers1.0...":
        ...}}`` with ``mlp.fc1``/``fc2`` names), the disruptive-autoencoder style
        (``encoder.layers1.0.0.blocks...``), or plain ``swinViT.*`` / un-prefixed encoder state
        dicts. Keys outside the encoder (heads, mask tokens, final norms) are ignored.
        With ``strict=True`` every encoder tensor must be provided. Returns
        ``{"loaded": [...], "missing": [...], "ignored": [...]}``.
        """
        for wrapper in ("state_dict", "model"):
            if wrapper in state_dict and isinstance(state_dict[wrapper], Mapping):
                state_dict = state_dict[wrapper]
        target = self.swinViT.state_dict()
        mapped: dict[str, torch.Tensor] = {}
        ignored: list[str] = []
        for key, value in state_dict.items():
            k = key
            for prefix in ("module.", "swinViT.", "encoder."):
                if k.startswith(prefix):
                    k = k[len(prefix):]
                    break
            if key.startswith("encoder.") and k.startswith("layers") and ".0.0." in k[:12]:
                k = k.replace(".0.0.", ".0.", 1)  # encoder.layers1.0.0.blocks -> layers1.0.blocks
            k = k.replace(".mlp.fc1.", ".mlp.linear1.").replace(".mlp.fc2.", ".mlp.linear2.")
            if k in target:
                if tuple(value.shape) != tuple(target[k].shape):
                    raise SwinUNETRConfigError(
                        f"load_swin_vit: {key}: shape {tuple(value.shape)} does not match the model's "
                        f"{tuple(target[k].shape)} (check feature_size/depths/num_heads/window_size)")
                mapped[k] = value
            else:
                ignored.append(key)
        if not mapped:
            raise SwinUNETRConfigError("load_swin_vit: no key of the checkpoint matches the Swin encoder "
                                       "(expected module.*, swinViT.* or encoder.* keys)")
        missing = sorted(set(target) - set(mapped))
        if strict and missing:
            raise SwinUNETRConfigError(f"load_swin_vit: checkpoint lacks {len(missing)} encoder tensors, e.g. {missing[:3]}")
        self.swinViT.load_state_dict(mapped, strict=False)
        return {"loaded": sorted(mapped), "missing": missing, "ignored": ignored}


__all__ = ["SwinUNETR", "SwinUNETRConfigError"]
