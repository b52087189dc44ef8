"""Reusable encoders built from the core ops, each declaring feature shapes and adapter targets."""
from .transformer import Mlp, TransformerBlock, TransformerEncoder, make_activation
from .conformer import ConformerBlock, ConformerConvModule, ConformerEncoder

__all__ = list(globals().get("__all__", [])) + [
    "Mlp", "TransformerBlock", "TransformerEncoder", "make_activation",
    "ConformerBlock", "ConformerConvModule", "ConformerEncoder",
]
from .swin import SwinTransformer, SwinTransformerBlock

__all__ += ["SwinTransformer", "SwinTransformerBlock"]
