"""Package data: the shipped speech_sep model (``mossformer2_default.safetensors``) and its prepared state
(``prepared.json``, ``prepared.safetensors``); a package so that wheels carry them (see ``..pretrained``)."""
