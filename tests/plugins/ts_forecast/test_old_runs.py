"""Forecast runs made before covariates and quantiles (tests/fixtures/ts/runs-v3: iTransformer, TSMixer and D-CTNet,
4 steps on the embedded series, made on 2026-12-07 with main at 2e70000) still load, evaluate to their summary and
predict: their configs hold none of the new keys and their weights none of the new modules."""
import json
import shutil

import numpy as np
import pytest
from helpers import ROOT

pd = pytest.importorskip("pandas")

import sigplex.core as sp
from sigplex.datasets.tabular import embedded_csv

FIXTURE = ROOT / "tests" / "fixtures" / "ts" / "runs-v3"


@pytest.mark.parametrize("name", ["itransformer", "tsmixer", "dctnet"])
def test_an_old_forecast_run_evaluates_to_its_summary_and_predicts(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(FIXTURE / name, run)
    predictor = sp.load_run(run)
    summary = json.loads((run / "summary.json").read_text())["test"]
    evaluated = predictor.evaluate()
    assert set(evaluated) == set(summary)
    for key, value in summary.items():
        assert evaluated[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    pd.read_csv(embedded_csv(1000, 7, 0)).iloc[:100].to_csv(tmp_path / "in.csv", index=False)
    fc = pd.read_csv(sp.predict(run, str(tmp_path / "in.csv"), output=tmp_path / "fc.csv")[0])
    assert list(fc.columns) == ["date"] + [f"ch{i}" for i in range(7)] and len(fc) == 12
    assert np.isfinite(fc.drop(columns="date").to_numpy()).all()
