"""OFDM channel data from sionna's 3GPP TR 38.901 TDL/CDL models: grids, pilots, LS, datasets, disk cache.

One item is one resource grid (``n_subcarriers x n_symbols``, subcarrier-major) of one
single-antenna link: the ideal channel ``h``, the LS estimate at the pilot grid ``ls``
(``Y/X`` at the pilots), and its conditions ``[model index, SNR dB, delay spread ns, Doppler Hz]``.
SNR is the signal power per resource element over the noise power (unit-power pilots,
channel normalised to unit average power by the TDL/CDL power-delay profile), so the
complex noise variance is ``10^(-SNR/10)``.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sigplex.core.cache import cache_root

SPEED_OF_LIGHT = 299792458.0
CHANNEL_MODELS = ("TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E", "CDL-A", "CDL-B", "CDL-C", "CDL-D", "CDL-E")


@dataclass(frozen=True)
class OFDMGrid:
    """The resource grid and its pilot pattern (pilots: every ``pilot_every``-th subcarrier of ``pilot_symbols``)."""

    n_subcarriers: int = 120
    n_symbols: int = 14
    pilot_every: int = 10
    pilot_offset: int = 0
    pilot_symbols: tuple[int, ...] = (2, 11)
    subcarrier_spacing: float = 30e3
    carrier_frequency: float = 3.5e9
    cp_length: int = 8  # cyclic prefix in samples of the n_subcarriers-point FFT

    @property
    def pilot_subcarriers(self) -> np.ndarray:
        return np.arange(self.pilot_offset, self.n_subcarriers, self.pilot_every)

    @property
    def pilot_shape(self) -> tuple[int, int]:
        return len(self.pilot_subcarriers), len(self.pilot_symbols)

    @property
    def symbol_duration(self) -> float:
        """OFDM symbol duration with cyclic prefix [s]."""
        return (1.0 + self.cp_length / self.n_subcarriers) / self.subcarrier_spacing

    def pilot_mask(self) -> np.ndarray:
        """Boolean ``[n_subcarriers, n_symbols]``, True at pilots."""
        mask = np.zeros((self.n_subcarriers, self.n_symbols), bool)
        mask[np.ix_(self.pilot_subcarriers, list(self.pilot_symbols))] = True
        return mask

    def pilots(self) -> np.ndarray:
        """Unit-power QPSK pilot symbols on the pilot grid ``[n_pf, n_ps]`` (fixed, seed 7)."""
        q = np.random.default_rng(7).integers(0, 4, self.pilot_shape)
        return np.exp(1j * np.pi / 4 * (2 * q + 1)).astype(np.complex64)

    def resource_grid(self):
        """The same grid as a sionna ``ResourceGrid`` with a ``PilotPattern`` (for sionna's estimators)."""
        from sionna.phy.ofdm import PilotPattern, ResourceGrid

        mask = self.pilot_mask().T[None, None]  # [tx, stream, symbols, subcarriers]
        # sionna maps pilots in (symbol, subcarrier) row-major order over the mask
        pilots = self.pilots().T.reshape(1, 1, -1)
        pattern = PilotPattern(torch.tensor(mask), torch.tensor(pilots))
        return ResourceGrid(self.n_symbols, self.n_subcarriers, self.subcarrier_spacing, pilot_pattern=pattern,
                            cyclic_prefix_length=self.cp_length)

    def check(self) -> None:
        if not all(0 <= s < self.n_symbols for s in self.pilot_symbols) or not self.pilot_symbols:
            raise ValueError(f"pilot_symbols {self.pilot_symbols}: expected indices in 0..{self.n_symbols - 1}")
        if not 0 <= self.pilot_offset < self.pilot_every:
            raise ValueError(f"pilot_offset {self.pilot_offset}: expected 0..pilot_every-1")


@dataclass(frozen=True)
class Conditions:
    """Ranges that each item's conditions are drawn from (uniformly; ``snr_points`` picks SNRs from a list)."""

    models: tuple[str, ...] = ("TDL-A",)
    snr_db: tuple[float, float] = (0.0, 30.0)
    delay_spread_ns: tuple[float, float] = (50.0, 350.0)
    doppler_hz: tuple[float, float] = (200.0, 1400.0)
    snr_points: tuple[float, ...] = ()

    def check(self) -> None:
        for m in self.models:
            if m not in CHANNEL_MODELS:
                raise ValueError(f"channel model {m!r}: expected one of {', '.join(CHANNEL_MODELS)}")


def _channel_model(name: str, grid: OFDMGrid, ds_s: float, speed: float):
    from sionna.phy.channel.tr38901 import CDL, TDL, Antenna

    kind, letter = name.split("-")
    if kind == "TDL":
        return TDL(letter, delay_spread=ds_s, carrier_frequency=grid.carrier_frequency, min_speed=speed,
                   max_speed=speed)
    ant = Antenna(polarization="single", polarization_type="V", antenna_pattern="omni",
                  carrier_frequency=grid.carrier_frequency)
    return CDL(letter, ds_s, grid.carrier_frequency, ant, ant, "downlink", min_speed=speed, max_speed=speed)


def generate(n: int, seed: int, grid: OFDMGrid = OFDMGrid(), cond: Conditions = Conditions()) -> dict[str, np.ndarray]:
    """``n`` items drawn with ``seed``: ``h`` complex ``[n, F, S]``, ``ls`` complex ``[n, n_pf, n_ps]``, ``cond`` ``[n, 4]``.

    Channels come from sionna (one CIR per item, since each item has its own delay spread
    and Doppler), turned into frequency responses with ``cir_to_ofdm_channel``.
    """
    from sionna.phy import config as sionna_config
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    grid.check()
    cond.check()
    rng = np.random.default_rng(seed)
    model_idx = rng.integers(0, len(cond.models), n)
    snr = (rng.choice(np.asarray(cond.snr_points, float), n) if cond.snr_points
           else rng.uniform(*cond.snr_db, n))
    ds = rng.uniform(*cond.delay_spread_ns, n)
    dop = rng.uniform(*cond.doppler_hz, n)
    previous = sionna_config.seed
    sionna_config.seed = int(rng.integers(0, 2**31 - 1))
    try:
        freqs = subcarrier_frequencies(grid.n_subcarriers, grid.subcarrier_spacing)
        h = np.empty((n, grid.n_subcarriers, grid.n_symbols), np.complex64)
        for i in range(n):  # data generation: one sionna CIR per item (its own delay spread and Doppler)
            name = cond.models[model_idx[i]]
            chan = _channel_model(name, grid, ds[i] * 1e-9, dop[i] * SPEED_OF_LIGHT / grid.carrier_frequency)
            a, tau = chan(1, grid.n_symbols, 1.0 / grid.symbol_duration)
            hf = cir_to_ofdm_channel(freqs, a, tau)  # [1, rx, rx_ant, tx, tx_ant, S, F]
            h[i] = hf.reshape(grid.n_symbols, grid.n_subcarriers).T.numpy()
    finally:
        sionna_config.seed = previous
    mask = grid.pilot_mask()
    x = grid.pilots()
    hp = h[:, mask].reshape(n, *grid.pilot_shape)
    no = 10.0 ** (-snr / 10.0)
    noise = (rng.standard_normal(hp.shape) + 1j * rng.standard_normal(hp.shape)) * np.sqrt(no / 2)[:, None, None]
    y = hp * x + noise
    ls = (y / x).astype(np.complex64)
    global_idx = np.array([CHANNEL_MODELS.index(m) for m in cond.models])[model_idx]
    return {"h": h, "ls": ls, "cond": np.stack([global_idx, snr, ds, dop], 1).astype(np.float32)}


def to_item(h: np.ndarray, ls: np.ndarray, cond: np.ndarray) -> dict[str, torch.Tensor]:
    """One dataset item: real/imag stacked (``h`` ``[2, F, S]``, ``ls`` ``[2, n_pf, n_ps]``), priors, conditions.

    Given a whole :func:`generate` output (a leading batch dim), it returns the batch as the
    trainer would collate it: ``h`` ``[n, 2, F, S]``, ``ls`` ``[n, 2, n_pf, n_ps]``, ``priors`` ``[n, 3]``.
    """
    return {
        "ls": torch.from_numpy(np.stack([ls.real, ls.imag], -3).astype(np.float32)),
        "h": torch.from_numpy(np.stack([h.real, h.imag], -3).astype(np.float32)),
        "priors": torch.from_numpy(np.asarray(cond[..., 1:4], np.float32)),
        "cond": torch.from_numpy(np.asarray(cond, np.float32)),
    }


class OnTheFlyOFDM(torch.utils.data.Dataset):
    """Fresh random grids every time: item ``i`` is generated from a seed drawn from torch's RNG.

    The trainer seeds torch before each item, so training stays reproducible; ``length`` is
    the virtual epoch size. Items are generated in blocks of ``block`` and served from a
    buffer keyed by that seed (one sionna CIR costs ~1 ms, so ``block=1`` is fine too).
    """

    def __init__(self, length: int, grid: OFDMGrid = OFDMGrid(), cond: Conditions = Conditions()):
        self.length, self.grid, self.cond = length, grid, cond

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        if not 0 <= i < self.length:
            raise IndexError(i)
        seed = int(torch.randint(0, 2**62, ()))
        d = generate(1, seed, self.grid, self.cond)
        return to_item(d["h"][0], d["ls"][0], d["cond"][0])


class ArrayOFDM(torch.utils.data.Dataset):
    """A fixed set of grids held in memory (generated once, read from the cache or from ``.mat`` files)."""

    def __init__(self, arrays: dict[str, np.ndarray], grid: OFDMGrid = OFDMGrid(), source: str = "memory"):
        self.h, self.ls, self.cond = arrays["h"], arrays["ls"], arrays["cond"]
        self.grid, self.source = grid, source

    def __len__(self):
        return len(self.h)

    def __getitem__(self, i):
        return to_item(self.h[i], self.ls[i], self.cond[i])


def cache_dir() -> Path:
    """``$SIGPLEX_CACHE/ofdm_chest`` (default ``~/.cache/sigplex/ofdm_chest``)."""
    return cache_root() / "ofdm_chest"


def cached_set(n: int, seed: int, grid: OFDMGrid = OFDMGrid(), cond: Conditions = Conditions(),
               directory: Path | None = None) -> ArrayOFDM:
    """A fixed set for repeatable evaluation, generated once and cached (atomically) as ``.npz``."""
    from sigplex.core.fileio import atomic_write_bytes

    key = json.dumps({"n": n, "seed": seed, "grid": asdict(grid), "cond": asdict(cond), "v": 1}, sort_keys=True)
    path = (directory or cache_dir()) / f"set-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return ArrayOFDM({k: z[k] for k in ("h", "ls", "cond")}, grid, str(path))
        except Exception:  # a damaged cache file is regenerated
            pass
    arrays = generate(n, seed, grid, cond)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue(), overwrite=True)
    return ArrayOFDM(arrays, grid, str(path))


__all__ = ["CHANNEL_MODELS", "ArrayOFDM", "Conditions", "OFDMGrid", "OnTheFlyOFDM", "cache_dir", "cached_set",
           "generate", "to_item"]
