"""Shipped AdaFortiTran weights (float16 safetensors); see :mod:`sigplex.plugins.ofdm_chest.pretrained`."""
