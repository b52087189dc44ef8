"""ClearerVoice-Studio MossFormer2_SS checkpoints load strictly into MossFormer2(variant="clearvoice") and give the
same output as their network (the model modules of the ``clearvoice`` 0.1.2 wheel, installed with --no-deps)."""
import importlib
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sigplex.core.config import resolve_config
from sigplex.core.errors import UserError
from sigplex.core.models import create_model
from sigplex.core.run import load_base_weights
from sigplex.plugins.speech_sep import mossformer2  # noqa: F401  (registers the model)
from sigplex.plugins.speech_sep.clearvoice_weights import checkpoint_sizes, is_clearvoice, load_weights
from sigplex.plugins.speech_sep.config import SeparationConfig
from sigplex.plugins.speech_sep.task import SeparationTask

# their network with N=64 (their MossFormerM fixes qk=128, group 256, rotary 32, FSMN inner 256 and kernel 39)
SMALL = {"model.dim": 64, "model.num_layers": 3}


def clearvoice_ss():
    """Their ``clearvoice/models/mossformer2_ss`` package, imported without ``clearvoice/__init__`` (which pulls in
    librosa, soundfile readers and their pins); skips when the wheel or its model modules' imports are missing."""
    for module in ("einops", "rotary_embedding_torch", "torchinfo"):
        pytest.importorskip(module)
    spec = importlib.util.find_spec("clearvoice")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the clearvoice wheel is not installed (pip install --no-deps clearvoice==0.1.2)")
    root = Path(list(spec.submodule_search_locations)[0]) / "models" / "mossformer2_ss"
    name = "_clearvoice_mossformer2_ss"
    if name not in sys.modules:
        pkg_spec = importlib.util.spec_from_file_location(name, root / "__init__.py",
                                                          submodule_search_locations=[str(root)])
        package = importlib.util.module_from_spec(pkg_spec)
        sys.modules[name] = package
        pkg_spec.loader.exec_module(package)
    return importlib.import_module(f"{name}.mossformer2")


def their_network(dim=512, layers=24, seed=0):
    """Their MossFormer2_SS_16K with random weights; 1-D parameters are perturbed so no norm is the identity."""
    module = clearvoice_ss()
    torch.manual_seed(seed)
    net = module.MossFormer2_SS_16K(SimpleNamespace(encoder_embedding_dim=dim, mossformer_sequence_dim=dim,
                                                    num_mossformer_layer=layers, encoder_kernel_size=16, num_spks=2))
    with torch.no_grad():
        for key, p in net.named_parameters():
            if p.dim() <= 1 and not key.endswith("freqs"):
                p.add_(0.2 * torch.randn_like(p))
    return net.eval()


def ours(preset="clearvoice-16k", **overrides):
    cfg = resolve_config(SeparationConfig, presets=dict(SeparationTask.presets), config=preset,
                         overrides=[f"{k}={v}" for k, v in overrides.items()])
    return create_model("mossformer2", **cfg.model.arguments()).eval(), cfg


def separate_both(net, model, x):
    with torch.no_grad():
        return torch.stack(net(x), 1), model(x)


def test_their_network_and_ours_agree_within_1e4_for_the_same_weights():
    net = their_network(dim=64, layers=3)
    model, _ = ours(**SMALL)
    load_weights(model, net.state_dict(), "clearvoice")
    for x in (torch.randn(2, 16 + 8 * 400), torch.randn(1, 3001)):  # whole frames, and a tail they leave at zero
        theirs, mine = separate_both(net, model, x)
        assert mine.shape == theirs.shape == (x.shape[0], 2, x.shape[1])
        assert (mine - theirs).abs().max() < 1e-4
        assert theirs.abs().max() > 1e-2  # not trivially zero


@pytest.mark.slow
def test_full_size_checkpoints_load_strictly_at_8k_and_16k_through_the_core(tmp_path):
    """A full-size (55.7M) checkpoint saved the way ClearerVoice saves it ({"model": ...}, DataParallel prefixes)
    loads through the path --init-from and shipped weights take, and separates as their network does."""
    net = their_network()
    sd = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(55.74e6, rel=1e-3)
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 7}, tmp_path / "last_best_checkpoint.pt")
    x = torch.randn(1, 16 + 8 * 250)
    for preset, rate in (("clearvoice-16k", 16000), ("clearvoice-8k", 8000)):
        model, cfg = ours(preset)
        assert cfg.data.sample_rate == rate
        load_base_weights(SeparationTask(), model, tmp_path / "last_best_checkpoint.pt")
        mine = {k: v for k, v in model.state_dict().items()}
        assert torch.equal(mine["masknet.layers.23.fsmn.out_proj.weight"], sd["model.mask_net.mdl.intra_mdl.mossformerM."
                                                                              "fsmn.23.conv2.weight"][..., 0])
    theirs, mine = separate_both(net, model, x)
    assert (mine - theirs).abs().max() < 1e-4


def test_the_layout_is_recognised_and_the_sizes_read_from_the_shapes():
    sd = their_network(dim=64, layers=3).state_dict()
    assert is_clearvoice(sd) and not is_clearvoice(ours(**SMALL)[0].state_dict())
    assert checkpoint_sizes(sd) == {"dim": 64, "kernel_size": 16, "stride": 8, "num_spks": 2, "num_layers": 3,
                                    "query_key_dim": 128, "fsmn_inner": 256, "fsmn_kernel": 39, "rotary_dim": 32,
                                    "expansion_factor": 2.0}


def test_a_clearvoice_checkpoint_into_the_wrong_model_names_the_settings_that_fit():
    sd = their_network(dim=64, layers=3).state_dict()
    plain, _ = ours("paper", **SMALL)  # our own variant
    with pytest.raises(UserError, match=r"clearvoice\.pt: .*ClearerVoice-Studio MossFormer2_SS checkpoint; .*"
                                        r"--config clearvoice-16k .*model\.variant=clearvoice model\.dim=64 .*"
                                        r"model\.num_layers=3"):
        load_weights(plain, sd, "clearvoice.pt")
    wrong_size, _ = ours(**{**SMALL, "model.num_layers": 2})
    with pytest.raises(UserError, match=r"clearvoice\.pt: weights do not fit .*unexpected masknet\.layers\.2\..*"
                                        r"model\.num_layers=3"):
        load_weights(wrong_size, sd, "clearvoice.pt")
    wrong_rotary, _ = ours(**{**SMALL, "model.rotary_dim": 16})
    with pytest.raises(UserError, match=r"rotary_pos_emb\.freqs holds 16 fixed frequencies that differ from this "
                                        r"model's 8"):
        load_weights(wrong_rotary, sd, "clearvoice.pt")
    extra = {**sd, "model.mask_net.mystery.weight": torch.zeros(3)}
    with pytest.raises(UserError, match=r"unknown ClearerVoice tensors model\.mask_net\.mystery\.weight"):
        load_weights(ours(**SMALL)[0], extra, "clearvoice.pt")


def test_our_own_weights_still_load_strictly_through_the_task():
    model, _ = ours("paper", **SMALL)
    other, _ = ours("paper", **SMALL)
    SeparationTask().load_weights(other, model.state_dict(), source="ours")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    with pytest.raises(UserError, match="ours: weights do not fit"):
        SeparationTask().load_weights(other, {"nope": torch.zeros(1)}, source="ours")


def test_the_documented_route_separates_a_file_with_a_clearvoice_checkpoint(tmp_path):
    """docs/plugins/speech_sep.md: `platform predict --plugin speech_sep --checkpoint MossFormer2_SS_16K/
    last_best_checkpoint.pt`: the bare file's layout, sizes and rate are recognised (no --config, no --set)."""
    import numpy as np
    import soundfile as sf

    from sigplex.core import api

    net = their_network(dim=64, layers=3)
    (tmp_path / "MossFormer2_SS_16K").mkdir()
    weights = tmp_path / "MossFormer2_SS_16K" / "last_best_checkpoint.pt"
    torch.save({"model": net.state_dict()}, weights)
    predictor = api.load_predictor(weights, plugin="speech_sep")
    model = predictor.config.model
    assert (model.variant, model.dim, model.num_layers, predictor.config.data.sample_rate) == ("clearvoice", 64, 3, 16000)
    mix = (0.1 * np.random.default_rng(0).standard_normal(16000 + 16 + 8 * 40)).astype(np.float32)
    sf.write(tmp_path / "mix.wav", mix, 16000, subtype="FLOAT")
    written = api.predict_with(predictor, tmp_path / "mix.wav", tmp_path / "out" / "mix.wav")
    with torch.no_grad():
        theirs = torch.stack(net(torch.from_numpy(mix)[None]), 1)[0].numpy()  # one pass: the file fits a 4 s chunk
    for k, path in enumerate(written):
        wav, rate = sf.read(path, dtype="float32")
        assert rate == 16000 and np.abs(wav - theirs[k]).max() < 1e-4
    # the user's settings win over what the file implies: at 8 kHz the same weights run at that rate
    assert api.load_predictor(weights, plugin="speech_sep", config="clearvoice-8k",
                              overrides=["model.dim=64", "model.num_layers=3"]).config.data.sample_rate == 8000


@pytest.mark.slow
def test_init_from_a_clearvoice_checkpoint_fine_tunes_from_its_weights(tmp_path, monkeypatch):
    """`platform train --config clearvoice-16k --init-from last_best_checkpoint.pt`: training starts from them,
    and the (possibly 200 MB) file is read once, for both the settings it implies and the model."""
    import sigplex.core as sp
    import sigplex.core.fileio as fileio

    reads = []
    real_load = fileio.load_weights_file
    monkeypatch.setattr(fileio, "load_weights_file", lambda path: reads.append(str(path)) or real_load(path))

    net = their_network(dim=64, layers=3)
    torch.save({"model": net.state_dict()}, tmp_path / "last_best_checkpoint.pt")
    overrides = {**SMALL, "trainer.max_steps": 1, "trainer.val_every": 1000, "trainer.progress": "none",
                 "trainer.tensorboard": False, "data.val_items": 1, "data.test_items": 1, "data.segment_seconds": 0.5,
                 "optim.lr": 1e-9}
    run = sp.fit("speech_sep", config="clearvoice-16k", overrides=overrides, init_from=tmp_path / "last_best_checkpoint.pt",
                 out=tmp_path / "run")
    assert len(reads) == 1
    tuned = sp.load_run(run).model
    x = torch.randn(1, 16 + 8 * 200)
    theirs, mine = separate_both(net, tuned, x)
    assert (mine - theirs).abs().max() < 1e-3  # one step at lr 1e-9 from their weights
