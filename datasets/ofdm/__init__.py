"""OFDM channel-estimation data: sionna TDL/CDL grids with pilots and LS, disk cache, AdaFortiTran ``.mat`` reader.

sionna is imported lazily (inside the functions that generate channels).
"""
from .channels import (
    CHANNEL_MODELS,
    ArrayOFDM,
    Conditions,
    OFDMGrid,
    OnTheFlyOFDM,
    cache_dir,
    cached_set,
    generate,
    to_item,
)
from .matfile import parse_name, read_mat, read_mat_files, write_mat

__all__ = ["CHANNEL_MODELS", "ArrayOFDM", "Conditions", "OFDMGrid", "OnTheFlyOFDM", "cache_dir", "cached_set",
           "generate", "parse_name", "read_mat", "read_mat_files", "to_item", "write_mat"]
