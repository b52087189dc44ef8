"""The ``chest`` task: OFDM channel estimation from LS at the pilots, scored by NMSE next to LS and LMMSE.

Data: sionna TDL/CDL grids generated on the fly for training (:class:`~sigplex.datasets.ofdm.OnTheFlyOFDM`)
and fixed, disk-cached validation/test sets over the evaluation ranges; or ``--data`` = an
AdaFortiTran ``.mat`` file/folder or an ``.npz`` (``h``, ``ls``, ``cond``), split 80/10/10 at
random (:mod:`.reading`). Loss: each grid's NMSE in dB, averaged (``loss.name=mse``, the
paper's, is in the ``paper`` preset). Metrics (:mod:`.metrics`): NMSE in dB for the model,
LS + linear interpolation, LMMSE and genie LMMSE, overall and per 5-dB SNR bin.
The package ships AdaFortiTran weights (:mod:`.pretrained`): ``platform predict --plugin
ofdm_chest`` uses them when no ``--checkpoint`` is given.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_path
from sigplex.core.infer import run_batched
from sigplex.core.models import create_model
from sigplex.core.splits import seeded_split
from sigplex.core.task import Prepared, Pretrained, Task, TaskCard
from sigplex.datasets.ofdm import ArrayOFDM, OnTheFlyOFDM, cached_set, to_item

from .config import ChestConfig, conditions_of, grid_of, uses_priors
from .metrics import baseline_estimates, nmse_metrics, nmse_table, to_complex
from .plots import nmse_plot, write_table
from .pretrained import RELATIVE_PATH
from .reading import missing_priors, read_grids, write_samples


def model_inputs(batch: dict, config) -> tuple:
    """What the model takes from a batch: ``(ls, priors)`` for AdaFortiTran, ``(ls,)`` for FortiTran."""
    return (batch["ls"], batch["priors"]) if uses_priors(config) else (batch["ls"],)


def subset(full: ArrayOFDM, idx) -> ArrayOFDM:
    return ArrayOFDM({"h": full.h[idx], "ls": full.ls[idx], "cond": full.cond[idx]}, full.grid, full.source)


class ChestTask(Task):
    name = "chest"
    config_class = ChestConfig
    presets = {"fortitran": {"model": {"name": "fortitran"}},
               # the paper's recipe: MSE, dropout 0.1, batch 64
               "paper": {"loss": {"name": "mse"}, "model": {"dropout": 0.1}, "trainer": {"batch_size": 64}},
               # the shipped weights' recipe (~60 min on 2 CPU cores with bf16)
               "cpu60": {"trainer": {"max_steps": 7000, "precision": "bf16", "val_every": 1000,
                                     "checkpoint_every": 500}},
               "mixed": {"data": {"models": ["TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E"]}}}
    monitor, monitor_mode = "nmse_db", "min"
    input_suffixes = (".npz", ".mat")
    output_suffixes = (".npz",)
    distill_loss = "mse"
    card = TaskCard(
        intended_use="Research on pilot-based OFDM channel estimation: the full time-frequency channel of a "
                     "single-antenna resource grid (default 120 subcarriers x 14 symbols, 30 kHz, pilots on every "
                     "10th subcarrier of symbols 2 and 11) from LS estimates at the pilots and, for AdaFortiTran, "
                     "the SNR, delay spread and Doppler of each grid.",
        limitations="Trained and evaluated on simulated 3GPP TR 38.901 channels (sionna; TDL-A unless data.models "
                    "says otherwise) over SNR 0-30 dB, delay spread 50-350 ns, Doppler 200-1400 Hz: outside "
                    "these ranges, on other channel models, grids or pilot patterns, or on measured channels it "
                    "is untested. AdaFortiTran needs the priors; wrong priors degrade it. It stays 1.8-2.4 dB "
                    "above the genie LMMSE bound and is level with or behind the fixed LMMSE from 600 Hz "
                    "Doppler and 200 ns delay spread (docs/plugins/ofdm_chest.md).",
        data_license="Default: channels simulated with sionna (Apache-2.0) on the fly; no recorded data. With "
                     "--data, the licence of the given files applies.",
    )
    pretrained = Pretrained(
        weights=f"sigplex.plugins.ofdm_chest:{RELATIVE_PATH}", preset="cpu60",
        description="AdaFortiTran, default size, trained 60 minutes on 2 CPU cores (7139 steps of 16 fresh TDL-A "
                    "grids, nmse_db loss, bf16) by `python -m benchmarks.ofdm_nmse --train 60`; stored in float16",
        license="Apache-2.0")

    # --- building -------------------------------------------------------------------
    def build_model(self, config):
        m, g = config.model, grid_of(config)
        return create_model(m.name, **m.arguments(), n_subcarriers=g.n_subcarriers, n_symbols=g.n_symbols,
                            pilot_shape=g.pilot_shape)

    def build_data(self, config, data):
        d, g = config.data, grid_of(config)
        if data is None:
            ev = conditions_of(config, "test")
            return Prepared(config, OnTheFlyOFDM(d.train_size, g, conditions_of(config, "train")),
                            cached_set(d.val_size, d.seed * 2 + 1, g, ev), cached_set(d.test_size, d.seed * 2 + 2, g, ev))
        full = read_grids(data, g, need_truth=True)
        parts = seeded_split(len(full), (0.8, 0.1, 0.1), seed=d.seed, what=f"{data}: grids")
        return Prepared(config, *[subset(full, idx) for idx in parts])

    def evaluation_data(self, data, prepared):
        ds = read_grids(data, grid_of(prepared.config), need_truth=True)
        if missing_priors(ds):  # the LMMSE baselines need the SNR and channel statistics of every grid
            raise UserError(f"{data}: evaluating needs the priors snr_db, delay_spread_ns and doppler_hz of every "
                            "grid (keys of the .npz, or a 'cond' array [N, 4])")
        return ds

    # --- training -------------------------------------------------------------------
    def training_step(self, model, batch, prepared):
        pred, h = model(*model_inputs(batch, prepared.config)).float(), batch["h"].float()
        if prepared.config.loss.name == "mse":
            return torch.nn.functional.mse_loss(pred, h)
        err = (pred - h).square().flatten(1).sum(1)
        return (10 * torch.log10(err / h.square().flatten(1).sum(1).clamp_min(1e-12) + 1e-10)).mean()

    def distill_outputs(self, model, batch, prepared):
        return model(*model_inputs(batch, prepared.config))

    def estimates(self, model, dataset, config, baselines=None) -> tuple[dict, torch.Tensor, np.ndarray]:
        """``({estimator: complex [N, F, S]}, truth, conditions [N, 4])`` of the model and the baselines."""
        batch = to_item(dataset.h, dataset.ls, dataset.cond) if isinstance(dataset, ArrayOFDM) else \
            self.collate([dataset[i] for i in range(len(dataset))])
        bs = config.trainer.eval_batch
        est = {"model": to_complex(run_batched(model, *model_inputs(batch, config), batch_size=bs))}
        cond = batch["cond"].numpy()
        names = config.data.baselines if baselines is None else baselines
        est.update(baseline_estimates(dataset, to_complex(batch["ls"]), cond, names, grid_of(config), bs))
        return est, to_complex(batch["h"]), cond

    def evaluate(self, model, dataset, prepared):
        est, h, cond = self.estimates(model, dataset, prepared.config)
        return nmse_metrics(est, h, cond, ["model", *prepared.config.data.baselines])

    # --- using ----------------------------------------------------------------------
    def predict(self, model, inputs, prepared):
        cfg = prepared.config
        ds = inputs if isinstance(inputs, ArrayOFDM) else read_grids(inputs, grid_of(cfg))
        if uses_priors(cfg) and missing_priors(ds):
            raise UserError(f"{ds.source}: AdaFortiTran needs the priors snr_db, delay_spread_ns and doppler_hz "
                            "(keys of the .npz, scalars or one per grid), or a 'cond' array [N, 4]")
        batch = to_item(ds.h, ds.ls, np.nan_to_num(ds.cond))
        out = run_batched(model, *model_inputs(batch, cfg), batch_size=cfg.trainer.eval_batch)
        return {"h_hat": to_complex(out).numpy(), "cond": ds.cond, "source": ds.source}

    def write_prediction(self, prediction, output, prepared):
        buf = io.BytesIO()
        np.savez(buf, h_hat=prediction["h_hat"], cond=prediction["cond"])
        with atomic_path(output) as tmp:
            tmp.write_bytes(buf.getvalue())
        return [Path(output)]

    def example_input(self, prepared):
        ls = torch.randn(1, 2, *grid_of(prepared.config).pilot_shape)
        return (ls, torch.tensor([[10.0, 150.0, 600.0]])) if uses_priors(prepared.config) else ls

    def sample_inputs(self, prepared, folder):
        return write_samples(grid_of(prepared.config), conditions_of(prepared.config, "test"), folder)

    def plots(self, model, prepared, run_dir):
        test = prepared.held_out()
        if test is None or not len(test):
            return []
        est, h, cond = self.estimates(model, test, prepared.config)
        names = ["model", *prepared.config.data.baselines]
        rows = nmse_table(est, h, cond, names)
        out = Path(run_dir) / "plots"
        return [write_table(rows, names, out / "nmse_table.csv"), *nmse_plot(rows, names, out / "nmse_vs_snr.png")]
