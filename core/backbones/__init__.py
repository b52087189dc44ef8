"""Reusable encoders built from the core ops, each declaring feature shapes and adapter targets."""
from .conformer import ConformerBlock, ConformerConvModule, ConformerEncoder
from .transformer import Mlp, TransformerBlock, TransformerEncoder, make_activation

__all__ = list(globals().get("__all__", [])) + [
    "Mlp", "TransformerBlock", "TransformerEncoder", "make_activation",
    "ConformerBlock", "ConformerConvModule", "ConformerEncoder",
]
from .swin import SwinTransformer, SwinTransformerBlock

__all__ += ["SwinTransformer", "SwinTransformerBlock"]
