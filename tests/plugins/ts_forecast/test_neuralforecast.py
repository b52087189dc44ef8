"""Against neuralforecast's iTransformer (same data, settings and steps): our test MSE is as good."""
import sys

import pytest
from helpers import ROOT


@pytest.mark.slow
def test_itransformer_matches_neuralforecast_accuracy():
    pytest.importorskip("neuralforecast")
    sys.path.insert(0, str(ROOT))
    from benchmarks import itransformer_train as bench

    ours, peer = bench.train_ours(60), bench.train_peer(60)
    assert ours["mse"] <= 1.1 * peer["mse"], (ours, peer)
    assert ours["mse"] < 0.5                                   # both learnt something (naive is ~2)
