"""ofdm_chest: model shapes and size, pilots, LS, baselines, NMSE, the task end to end, a short training."""
import numpy as np
import pytest
import torch

pytest.importorskip("sionna")

from sigplex.core.config import resolve_config  # noqa: E402
from sigplex.core.errors import UserError  # noqa: E402
from sigplex.core.task import Prepared  # noqa: E402
from sigplex.datasets.ofdm import Conditions, OFDMGrid, generate, to_item  # noqa: E402
from sigplex.plugins.ofdm_chest.adafortitran import AdaFortiTran, FortiTran  # noqa: E402
from sigplex.plugins.ofdm_chest.baselines import genie_lmmse, lmmse, ls_linear  # noqa: E402
from sigplex.plugins.ofdm_chest.config import ChestConfig  # noqa: E402
from sigplex.plugins.ofdm_chest.metrics import nmse_db  # noqa: E402
from sigplex.plugins.ofdm_chest.task import ChestTask  # noqa: E402

EVAL = Conditions(snr_db=(0, 25), delay_spread_ns=(50, 300), doppler_hz=(200, 1000))


def expected_params(ada: bool, F=120, S=14, P=24, dim=128, depth=6, mlp=512, pf=3, ps=2, c=(8, 32)):
    """The paper's architecture counted by hand (Linear = in*out + out)."""
    lin = lambda i, o: i * o + o  # noqa: E731
    conv = lambda i, o: 9 * i * o + o  # noqa: E731
    n = (F // pf) * (S // ps)
    enhancer = conv(1, c[0]) + conv(c[0], c[1]) + conv(c[1], c[0]) + conv(c[0], 1)
    block = 2 * 2 * dim + lin(dim, 3 * dim) + lin(dim, dim) + lin(dim, mlp) + lin(mlp, dim)
    total = lin(P, F * S) + 2 * enhancer + n * dim + depth * block + 2 * dim + lin(dim, pf * ps)
    total += lin(pf * ps + (6 if ada else 0), dim)
    if ada:
        total += 3 * (lin(1, 7) + lin(7, 42) + lin(42, 2 * n))
    return total


@pytest.mark.parametrize("cls", [AdaFortiTran, FortiTran])
def test_default_model_shapes_and_parameter_count(cls):
    model = cls().eval()
    assert model.n_tokens == 280  # 40 x 7 patches of 3 x 2
    ls, pr = torch.randn(3, 2, 12, 2), torch.tensor([[10.0, 100.0, 500.0]] * 3)
    out = model(ls, pr) if cls is AdaFortiTran else model(ls)
    assert out.shape == (3, 2, 120, 14)
    n = sum(p.numel() for p in model.parameters())
    assert n == expected_params(cls is AdaFortiTran)
    # real and imaginary parts go through the same network: swapping them swaps the outputs
    out_sw = model(ls.flip(1), pr) if cls is AdaFortiTran else model(ls.flip(1))
    torch.testing.assert_close(out_sw, out.flip(1), atol=1e-5, rtol=1e-5)


def test_priors_change_adafortitran_output():
    torch.manual_seed(0)
    model = AdaFortiTran(dim=16, depth=1, heads=2).eval()
    ls = torch.randn(1, 2, 12, 2)
    a = model(ls, torch.tensor([[0.0, 50.0, 200.0]]))
    b = model(ls, torch.tensor([[25.0, 300.0, 1000.0]]))
    assert not torch.allclose(a, b)


def test_pilot_pattern_default():
    g = OFDMGrid()
    mask = g.pilot_mask()
    assert mask.shape == (120, 14) and mask.sum() == 24 and g.pilot_shape == (12, 2)
    rows, cols = np.nonzero(mask)
    assert set(cols) == {2, 11} and set(rows) == set(range(0, 120, 10))
    assert np.allclose(np.abs(g.pilots()), 1.0)
    # sionna's resource grid carries the same pattern
    rg_mask = g.resource_grid().pilot_pattern.mask.numpy()[0, 0].T
    assert (rg_mask.astype(bool) == mask).all()


def test_ls_equals_y_over_x_on_a_noiseless_channel_and_conditions_in_range():
    d = generate(6, 3, cond=Conditions(snr_points=(400.0,)))
    mask = OFDMGrid().pilot_mask()
    hp = d["h"][:, mask].reshape(6, 12, 2)
    np.testing.assert_allclose(d["ls"], hp, atol=1e-5)
    d = generate(50, 4)
    assert (d["cond"][:, 1] >= 0).all() and (d["cond"][:, 1] <= 30).all()
    assert (d["cond"][:, 2] >= 50).all() and (d["cond"][:, 2] <= 350).all()
    assert (d["cond"][:, 3] >= 200).all() and (d["cond"][:, 3] <= 1400).all()
    assert 0.6 < np.mean(np.abs(d["h"]) ** 2) < 1.5  # unit average power from the PDP
    again = generate(50, 4)
    np.testing.assert_array_equal(again["h"], d["h"])  # seeded: repeatable


def test_nmse_definition_by_hand():
    h = torch.tensor([[1 + 1j, 2 + 0j], [0 + 1j, -1 + 0j]])
    e = torch.tensor([[1 + 0j, 2 + 1j], [0 + 0j, -1 + 0j]])
    # errors: |j|^2 + |-j|^2 + |j|^2 = 3 ; energy: 2 + 4 + 1 + 1 = 8
    assert nmse_db(e, h) == pytest.approx(10 * np.log10(3 / 8), abs=1e-6)


def test_baselines_order_genie_beats_ls():
    d = generate(40, 11, cond=Conditions(snr_points=(5.0, 20.0), delay_spread_ns=(50, 300), doppler_hz=(200, 1000)))
    h = torch.as_tensor(d["h"])
    ls, gen = ls_linear(d["ls"], d["cond"]), genie_lmmse(d["ls"], d["cond"])
    mask = torch.as_tensor(OFDMGrid().pilot_mask())
    torch.testing.assert_close(ls[:, mask], torch.as_tensor(d["ls"]).reshape(40, -1))  # LS keeps Y/X at pilots
    assert nmse_db(gen, h) < nmse_db(ls, h) - 2.0
    lm = lmmse(d["ls"][:8], d["cond"][:8])
    assert lm.shape == (8, 120, 14) and torch.isfinite(lm.abs()).all()


@pytest.fixture
def small_task(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGPLEX_CACHE", str(tmp_path / "cache"))
    task = ChestTask()
    cfg = resolve_config(ChestConfig, overrides=[
        "model.dim=16", "model.depth=1", "model.heads=2", "model.dropout=0.0",
        "data.train_size=64", "data.val_size=12", "data.test_size=18", "data.baselines=[ls, genie]",
        "trainer.eval_batch_size=8"])
    return task, cfg


def test_task_evaluate_plots_predict(small_task, tmp_path):
    task, cfg = small_task
    data = task.build_data(cfg, None)
    assert len(data.train) == 64 and len(data.test) == 18 and data.state == {}  # nothing fitted
    assert list((tmp_path / "cache" / "ofdm_chest").glob("set-*.npz"))  # cached for repeatable evaluation
    item = data.train[0]
    assert item["ls"].shape == (2, 12, 2) and item["h"].shape == (2, 120, 14) and item["priors"].shape == (3,)
    model = task.build_model(cfg).eval()
    loss = task.training_step(model, task.collate([data.train[i] for i in range(4)]), data)
    assert loss.ndim == 0 and torch.isfinite(loss)
    m = task.evaluate(model, data.test, data)
    for key in ("nmse_db", "nmse_db_ls", "nmse_db_genie", "nmse_db_snr0_5", "nmse_db_ls_snr25_30"):
        assert key in m and np.isfinite(m[key])
    assert m["nmse_db_genie"] < m["nmse_db_ls"]
    paths = task.plots(model, data, tmp_path / "run")
    names = {p.name for p in paths}
    assert "nmse_table.csv" in names and "nmse_vs_snr.png" in names
    text = (tmp_path / "run" / "plots" / "nmse_table.csv").read_text()
    assert text.startswith("axis,lo,hi,n,nmse_db_model,nmse_db_ls,nmse_db_genie") and "doppler_hz" in text
    # predict from an .npz of LS estimates with priors; never overwrite
    src = tmp_path / "ls.npz"
    np.savez(src, ls=data.test.ls[:3], snr_db=10.0, delay_spread_ns=100.0, doppler_hz=500.0)
    pred = task.predict(model, src, data)
    assert pred["h_hat"].shape == (3, 120, 14) and np.iscomplexobj(pred["h_hat"])
    with torch.no_grad():                                 # the same as calling the model by hand
        by_hand = model(data.test[0]["ls"][None], torch.tensor([[10.0, 100.0, 500.0]]))
    np.testing.assert_allclose(pred["h_hat"][0], torch.complex(by_hand[0, 0], by_hand[0, 1]).numpy(), atol=1e-5)
    out = tmp_path / "est.npz"
    assert task.write_prediction(pred, out, data) == [out]
    with np.load(out) as z:
        np.testing.assert_allclose(z["h_hat"], pred["h_hat"])
    np.savez(tmp_path / "nopriors.npz", ls=data.test.ls[:2])
    with pytest.raises(UserError, match="priors"):
        task.predict(model, tmp_path / "nopriors.npz", data)


def test_short_training_beats_ls_on_held_out_data():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cond = Conditions(snr_db=(0.0, 5.0), delay_spread_ns=(50, 300), doppler_hz=(200, 1000))
    model = AdaFortiTran(dim=32, depth=1, heads=2, mlp_ratio=2.0, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    pool = generate(512, 100, cond=cond)
    test = generate(100, 200, cond=cond)

    def tensors(d, idx):
        ls = torch.as_tensor(np.stack([d["ls"].real, d["ls"].imag], 1)[idx], dtype=torch.float32)
        h = torch.as_tensor(np.stack([d["h"].real, d["h"].imag], 1)[idx], dtype=torch.float32)
        return ls, h, torch.as_tensor(d["cond"][idx, 1:])

    for step in range(150):
        idx = np.random.default_rng(step).choice(512, 32, replace=False)
        ls, h, pr = tensors(pool, idx)
        loss = torch.nn.functional.mse_loss(model(ls, pr), h)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ls, h, pr = tensors(test, np.arange(100))
    with torch.no_grad():
        est = model(ls, pr)
    ours = nmse_db(torch.complex(est[:, 0], est[:, 1]), torch.as_tensor(test["h"]))
    ls_db = nmse_db(ls_linear(test["ls"], test["cond"]), torch.as_tensor(test["h"]))
    assert ours < ls_db - 1.0, (ours, ls_db)


def test_to_item_on_a_batch_equals_the_collated_items():
    d = generate(3, 9)
    batch = to_item(d["h"], d["ls"], d["cond"])
    items = [to_item(d["h"][i], d["ls"][i], d["cond"][i]) for i in range(3)]
    for key in ("ls", "h", "priors", "cond"):
        assert torch.equal(batch[key], torch.stack([it[key] for it in items])), key
    assert batch["ls"].shape == (3, 2, 12, 2) and batch["h"].shape == (3, 2, 120, 14) and batch["priors"].shape == (3, 3)


def test_nmse_db_loss_is_the_mean_of_per_grid_nmse():
    task = ChestTask()
    cfg = resolve_config(ChestConfig, overrides=["model.dim=16", "model.depth=1", "model.heads=2",
                                                 "model.dropout=0.0", "loss.name=nmse_db"])
    torch.manual_seed(0)
    model = task.build_model(cfg).eval()
    d = generate(3, 5)
    batch = to_item(d["h"], d["ls"], d["cond"])
    with torch.no_grad():
        est = model(batch["ls"], batch["priors"])
        loss = task.training_step(model, batch, Prepared(cfg))
    per_grid = [nmse_db(torch.complex(est[i, 0], est[i, 1]), torch.as_tensor(d["h"][i])) for i in range(3)]
    assert float(loss) == pytest.approx(np.mean(per_grid), abs=1e-4)
    with torch.no_grad():
        mse = task.training_step(model, batch, Prepared(resolve_config(ChestConfig, overrides=["loss.name=mse"])))
    assert float(mse) == pytest.approx(float(torch.nn.functional.mse_loss(est, batch["h"])), rel=1e-5)
    with pytest.raises(UserError, match="loss.name"):
        resolve_config(ChestConfig, overrides=["loss.name=l1"])


def test_presets_resolve_to_their_recipes():
    presets = ChestTask.presets
    paper = resolve_config(ChestConfig, config="paper", presets=presets)
    assert (paper.loss.name, paper.model.dropout, paper.trainer.batch_size) == ("mse", 0.1, 64)
    cpu60 = resolve_config(ChestConfig, config="cpu60", presets=presets)
    assert cpu60.trainer.precision == "bf16" and cpu60.trainer.max_steps == 7000
    assert cpu60.loss.name == "nmse_db" and cpu60.optim.warmup_steps == 200 and cpu60.trainer.batch_size == 16
    assert resolve_config(ChestConfig, config="fortitran", presets=presets).model.name == "fortitran"


def test_shipped_weights_load_and_beat_ls_on_held_out_grids():
    from sigplex.plugins.ofdm_chest.pretrained import WEIGHTS, load_pretrained

    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size <= 5 * 2**20
    torch.set_num_threads(2)
    model = load_pretrained()
    assert all(p.dtype == torch.float32 for p in model.parameters()) and not model.training
    d = generate(24, 4242, cond=Conditions(snr_points=(10.0, 25.0), delay_spread_ns=(50, 300), doppler_hz=(200, 1000)))
    b = to_item(d["h"], d["ls"], d["cond"])
    with torch.no_grad():
        est = model(b["ls"], b["priors"])
    h = torch.as_tensor(d["h"])
    ours = nmse_db(torch.complex(est[:, 0], est[:, 1]), h)
    # measured here: 2.2 dB below LS and 1.0 dB below the fixed-covariance LMMSE on these grids
    assert ours < nmse_db(ls_linear(d["ls"], d["cond"]), h) - 1.5
    assert ours < nmse_db(lmmse(d["ls"], d["cond"]), h) - 0.5


def test_pretrained_rejects_weights_of_another_model(tmp_path):
    from safetensors.torch import save_file

    from sigplex.plugins.ofdm_chest.pretrained import load_pretrained

    path = tmp_path / "other.safetensors"
    save_file(FortiTran(dim=16, depth=1, heads=2).state_dict(), str(path))
    with pytest.raises(UserError, match="other.safetensors: weights do not fit"):
        load_pretrained(path)


def test_config_rejects_inconsistent_sizes():
    for overrides, msg in ((["model.dim=30", "model.heads=4"], "dim=30 must be divisible by heads=4"),
                           (["model.patch=[7, 2]"], r"model.patch=\[7, 2\] must divide the grid 120x14"),
                           (["data.pilot_symbols=[2, 14]"], "pilot_symbols"),
                           (["data.models=[TDL-Z]"], "channel model 'TDL-Z': expected one of")):
        with pytest.raises(UserError, match=msg):
            resolve_config(ChestConfig, overrides=overrides)


def _npz(path, n, seed, truth=True):
    d = generate(n, seed)
    arrays = {"ls": d["ls"], "cond": d["cond"], **({"h": d["h"]} if truth else {})}
    np.savez(path, **arrays)
    return d


def test_data_file_split_and_evaluation_data(tmp_path):
    task = ChestTask()
    cfg = resolve_config(ChestConfig, overrides=["model.dim=16", "model.depth=1", "model.heads=2",
                                                 "data.baselines=[ls]"])
    d = _npz(tmp_path / "ten.npz", 10, 3)
    prepared = task.build_data(cfg, tmp_path / "ten.npz")
    sizes = [len(prepared.train), len(prepared.val), len(prepared.test)]
    assert sizes == [8, 1, 1]
    seen = np.concatenate([prepared.train.ls, prepared.val.ls, prepared.test.ls])
    assert sorted(map(bytes, seen)) == sorted(map(bytes, d["ls"]))  # a partition of the grids
    again = task.build_data(cfg, tmp_path / "ten.npz")
    np.testing.assert_array_equal(again.test.ls, prepared.test.ls)  # seeded by data.seed
    _npz(tmp_path / "two.npz", 2, 4)
    with pytest.raises(UserError, match=r"two\.npz: grids: expected at least 3 .* found 2"):
        task.build_data(cfg, tmp_path / "two.npz")
    _npz(tmp_path / "noh.npz", 5, 5, truth=False)
    with pytest.raises(UserError, match=r"noh\.npz: key 'h' .* is missing"):
        task.build_data(cfg, tmp_path / "noh.npz")
    # evaluation_data: every grid of the file, even a single one
    one = _npz(tmp_path / "one.npz", 1, 6)
    ds = task.evaluation_data(tmp_path / "one.npz", Prepared(cfg))
    assert len(ds) == 1
    model = task.build_model(cfg).eval()
    m = task.evaluate(model, ds, Prepared(cfg))
    assert m["nmse_db_ls"] == pytest.approx(nmse_db(ls_linear(one["ls"], one["cond"]), one["h"]), abs=1e-4)


def test_fortitran_takes_no_priors():
    task = ChestTask()
    cfg = resolve_config(ChestConfig, config="fortitran", presets=ChestTask.presets,
                         overrides=["model.dim=16", "model.depth=1", "model.heads=2"])
    model = task.build_model(cfg).eval()
    assert type(model).__name__ == "FortiTran"
    d = generate(2, 8)
    loss = task.training_step(model, to_item(d["h"], d["ls"], d["cond"]), Prepared(cfg))
    assert torch.isfinite(loss)
    example = task.example_input(Prepared(cfg))
    assert isinstance(example, torch.Tensor) and model(example).shape == (1, 2, 120, 14)


def test_core_load_pretrained_gives_the_shipped_model():
    from sigplex.core.api import load_pretrained as core_load_pretrained
    from sigplex.plugins.ofdm_chest.pretrained import WEIGHTS, load_pretrained

    predictor = core_load_pretrained("ofdm_chest")
    assert predictor.task.pretrained.path() == WEIGHTS and predictor.config.trainer.max_steps == 7000  # cpu60
    ours = load_pretrained()
    d = generate(3, 12)
    b = to_item(d["h"], d["ls"], d["cond"])
    with torch.no_grad():
        torch.testing.assert_close(predictor.model(b["ls"], b["priors"]), ours(b["ls"], b["priors"]))
