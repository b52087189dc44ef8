"""MossFormer2 / MossFormer: paper-size parameter counts, shapes, FSMN behaviour."""
import pytest
import torch

from sigplex.plugins.speech_sep.fsmn import DilatedDenseMemory, DilatedFSMN, GatedFSMNBlock
from sigplex.plugins.speech_sep.mossformer import MossFormer
from sigplex.plugins.speech_sep.mossformer2 import MossFormer2

SMALL = dict(dim=16, num_layers=2, group_size=16, query_key_dim=8, rotary_dim=4)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_paper_size_mossformer2_has_about_56m_parameters():
    model = MossFormer2(num_spks=2)  # construct only, no forward
    assert model.dim == 512 and len(model.masknet.layers) == 24
    assert 50e6 <= n_params(model) <= 60e6


def test_paper_size_mossformer_has_about_42m_parameters():
    assert 40e6 <= n_params(MossFormer(num_spks=2)) <= 44e6  # paper: 42.1M


@pytest.mark.parametrize("cls", [MossFormer2, MossFormer])
@pytest.mark.parametrize("n_spk,length", [(2, 400), (3, 1001), (2, 37)])
def test_output_has_one_waveform_per_speaker_of_the_input_length(cls, n_spk, length):
    torch.manual_seed(0)
    model = cls(num_spks=n_spk, **SMALL).eval()
    with torch.no_grad():
        out = model(torch.randn(2, length))
        out3 = model(torch.randn(2, 1, length))
    assert out.shape == (2, n_spk, length) and out3.shape == (2, n_spk, length)
    assert torch.isfinite(out).all()


def test_mossformer2_adds_an_fsmn_after_every_block():
    m2, m1 = MossFormer2(num_spks=2, **SMALL), MossFormer(num_spks=2, **SMALL)
    assert all(isinstance(layer.fsmn, GatedFSMNBlock) for layer in m2.masknet.layers)
    assert all(layer.fsmn is None for layer in m1.masknet.layers)
    assert n_params(m2) > n_params(m1)


def test_items_of_a_batch_are_separated_independently():
    torch.manual_seed(0)
    model = MossFormer2(num_spks=2, **SMALL).eval()
    x = torch.randn(3, 600)
    with torch.no_grad():
        batched = model(x)
        single = model(x[1:2])
    torch.testing.assert_close(batched[1:2], single, atol=1e-5, rtol=1e-5)


def test_dense_memory_sees_only_its_own_channel_and_the_dilated_window():
    torch.manual_seed(0)
    mem = DilatedDenseMemory(dim=4, kernel_size=3, dilations=(1, 2)).eval()
    x = torch.zeros(1, 4, 50)
    x[0, 1, 25] = 1.0  # an impulse in channel 1
    with torch.no_grad():
        y = mem(x) - x
    assert y[0, [0, 2, 3]].abs().max() == 0  # channels never mix
    # receptive field: dilation 1 then 2 with kernel 3 -> +-1 and +-(1+2) samples
    touched = (y[0, 1].abs() > 0).nonzero().flatten()
    assert touched.min() >= 25 - 3 and touched.max() <= 25 + 3


def test_encoder_follows_the_paper():
    model = MossFormer2(num_spks=2, **SMALL)
    conv = model.encoder.conv
    assert conv.kernel_size == (16,) and conv.stride == (8,) and conv.in_channels == 1
    deconv = model.decoder.deconv
    assert deconv.kernel_size == (16,) and deconv.stride == (8,) and deconv.out_channels == 1


@pytest.mark.parametrize("dilations", [(1, 2), (1, 2, 4)])
def test_fsmn_inference_layout_equals_training_path(dilations):
    """DilatedFSMN without gradients runs its memory in [B, T, C] (depthwise convs per input map,
    summed); the result equals the grouped-Conv1d path it takes when training."""
    torch.manual_seed(0)
    fsmn = DilatedFSMN(8, 12, kernel_size=5, dilations=dilations).double().eval()
    with torch.no_grad():
        for act in fsmn.memory.acts:
            act.weight.uniform_(-0.5, 0.5)  # PReLU slopes per channel, so a channel mix-up shows
    x = torch.randn(2, 23, 8, dtype=torch.float64)
    training_path = fsmn(x)
    with torch.no_grad():
        inference_path = fsmn(x)
    torch.testing.assert_close(inference_path, training_path, atol=1e-12, rtol=1e-12)


def test_fsmn_traced_at_one_length_runs_at_another():
    """A trace (what export records) made at one length gives eager's result at another: no
    length-dependent reshape is baked into the graph."""
    torch.manual_seed(0)
    fsmn = DilatedFSMN(8, 12, kernel_size=5, dilations=(1, 2)).eval()
    with torch.no_grad():
        traced = torch.jit.trace(fsmn, torch.randn(1, 23, 8))
        x = torch.randn(1, 30, 8)
        torch.testing.assert_close(traced(x), fsmn(x), atol=1e-5, rtol=1e-5)
