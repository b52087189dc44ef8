"""Audio datasets for speech separation: soundfile I/O, layout readers, dynamic mixing.

- :mod:`.io` -- :func:`read_audio` / :func:`read_downmixed` / :func:`write_audio` (soundfile),
  :func:`resample` (torchaudio, block by block for long signals),
  and one-line errors for wrong rates, multi-channel, empty or clipped files;
- :mod:`.readers` -- folder (``mix/`` + ``s1/``...), LibriMix CSV and WSJ0-2mix scp layouts, and
  folders of single-talker recordings per speaker (for dynamic mixing);
- :mod:`.mixing` -- :class:`SeparationDataset` (fixed mixtures) and :class:`DynamicMixDataset`.

soundfile and torchaudio are imported inside the functions that need them.
"""
from .io import audio_info, clipped_fraction, read_audio, read_downmixed, resample, trim_silence, write_audio
from .mixing import DynamicMixDataset, SeparationDataset, fit_length
from .readers import (
    Example,
    discover_splits,
    read_folder,
    read_librimix_csv,
    read_speaker_folders,
    read_split,
    read_wsj0_scp,
)

__all__ = ["DynamicMixDataset", "Example", "SeparationDataset", "audio_info", "clipped_fraction", "discover_splits",
           "fit_length", "read_audio", "read_downmixed", "read_folder", "read_librimix_csv", "read_split",
           "read_speaker_folders", "read_wsj0_scp", "resample", "trim_silence", "write_audio"]
