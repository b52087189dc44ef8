"""rf_modrec models: shapes, lengths, sizes, ClST on the core attention op, config validation of model options."""
import pytest
import torch

pytest.importorskip("sionna")

from sigplex.core.config import resolve_config
from sigplex.core.errors import UserError
from sigplex.core.models import create_model, list_models
from sigplex.core.ops import fused_attention
from sigplex.plugins.rf_modrec.clst import PSCA, ClST
from sigplex.plugins.rf_modrec.config import ClassifyConfig
from sigplex.plugins.rf_modrec.students import KDCNN, KDMobileNet
from sigplex.plugins.rf_modrec.vtcnn2 import VTCNN2


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_all_four_models_are_registered_in_the_rf_domain():
    assert {"clst", "kd_cnn", "kd_mobilenet", "vtcnn2"} <= set(list_models("rf"))


@pytest.mark.parametrize("name", ["clst", "kd_cnn", "kd_mobilenet", "vtcnn2"])
@pytest.mark.parametrize("n_classes", [11, 24])
def test_logits_per_frame(name, n_classes):
    torch.manual_seed(0)
    model = create_model(name, n_classes=n_classes, n_samples=128).eval()
    with torch.no_grad():
        out = model(torch.randn(5, 2, 128))
    assert out.shape == (5, n_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize("cls", [ClST, KDCNN, KDMobileNet])
def test_pooling_models_take_any_length_and_vtcnn2_refuses_other_lengths(cls):
    model = cls().eval()
    assert cls.variable_length
    with torch.no_grad():
        assert model(torch.randn(2, 2, 1024)).shape == (2, 11)  # RadioML 2018 frames
        assert model(torch.randn(2, 2, 96)).shape == (2, 11)
    assert not VTCNN2.variable_length
    with pytest.raises(ValueError, match="128 samples, got 96"):
        VTCNN2()(torch.randn(2, 2, 96))


def test_students_have_at_least_ten_times_fewer_parameters_than_clst():
    teacher = n_params(ClST())
    assert 200_000 < teacher < 1_000_000
    for student in (KDCNN(), KDMobileNet()):
        assert 10 * n_params(student) <= teacher, (type(student).__name__, n_params(student), teacher)
    assert n_params(VTCNN2()) > 2_500_000  # the 2016 baseline is dominated by its 10560 x 256 dense layer


def test_clst_stages_shorten_the_sequence_and_widen_the_tokens():
    model = ClST(dims=(16, 32, 48), depths=(1, 1, 1), heads=(1, 2, 4), strides=(2, 2, 2)).eval()
    shapes = []
    hooks = [s.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for s in model.stages]
    with torch.no_grad():
        model(torch.randn(3, 2, 128))
    for h in hooks:
        h.remove()
    assert shapes == [(3, 64, 16), (3, 32, 32), (3, 16, 48)]


def test_psca_runs_through_the_core_attention_op_on_both_paths():
    torch.manual_seed(0)
    block = PSCA(32, heads=4).eval()
    x = torch.randn(2, 16, 32)
    with torch.no_grad():
        fused = block(x)
        with fused_attention(False):  # the core's reference math instead of SDPA
            reference = block(x)
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=1e-5)


def test_psca_has_a_spatial_and_a_channel_branch():
    """Permuting time steps permutes the token-attention output; the channel branch mixes over all time steps."""
    torch.manual_seed(0)
    block = PSCA(8, heads=1, kernel=1).eval()  # kernel 1: the projection itself is position-wise
    x = torch.randn(1, 10, 8)
    with torch.no_grad():
        base = block(x)
        block.temperature.fill_(0.0)  # channel attention becomes a uniform average over channels
        uniform = block(x)
    assert not torch.allclose(base, uniform, atol=1e-4)


def test_model_options_are_validated_in_the_config():
    cfg = resolve_config(ClassifyConfig, overrides=["model.name=clst", "model.options={dims: [8, 16], depths: [1, 1], "
                                                    "heads: [1, 2]}"])
    assert cfg.model.options["dims"] == [8, 16]
    with pytest.raises(UserError, match=r"options \['width'\] are not arguments of kd_cnn"):
        resolve_config(ClassifyConfig, overrides=["model.name=kd_cnn", "model.options={width: 3}"])
    with pytest.raises(UserError, match="unknown model 'resnet'"):
        resolve_config(ClassifyConfig, overrides=["model.name=resnet"])
    with pytest.raises(UserError, match="test_seed=0 must differ"):
        resolve_config(ClassifyConfig, overrides=["data.test_seed=0"])
