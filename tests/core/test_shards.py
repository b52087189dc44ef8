"""Shards for job arrays: --shard I/N takes a stable share of the inputs, manifest merge checks and joins them."""
import json

import numpy as np
import pytest
from helpers import needs_example, run_cli

from sigplex.core.errors import UserError
from sigplex.core.manifest import merge_manifests, parse_shard, shard_of

pytestmark = needs_example


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "run"
    done = run_cli("train", "--plugin", "example", "--max-steps", 2, "--out", out, "--set", "model.channels=4",
                   "--set", "trainer.val_every=2")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(1)
    for i in range(23):
        sub = folder / f"site{i % 3}"
        sub.mkdir(exist_ok=True)
        np.save(sub / f"rec{i:02d}.npy", rng.normal(size=64).astype(np.float32))
    (folder / "site0" / "broken.npy").write_bytes(b"not an array")
    return folder


def test_parse_and_hash():
    assert parse_shard("3/5") == (3, 5) and parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/5", "6/5", "2", "a/b"):
        with pytest.raises(UserError, match="expected I/N with 1 <= I <= N"):
            parse_shard(bad)
    counts = np.bincount([shard_of(f"x/{i}.npy", 5) for i in range(2000)], minlength=6)[1:]
    assert counts.min() > 330 and counts.max() < 470  # an even split of 2000 keys


@pytest.mark.parametrize("n", [1, 2, 5])
def test_shards_cover_every_input_exactly_once_whatever_the_order(run, inputs, tmp_path, n):
    import sigplex.core as sp

    predictor = sp.load_run(run)
    files = sorted(str(p) for p in inputs.rglob("*.npy"))
    seen = []
    for i in range(1, n + 1):
        order = files if i % 2 else files[::-1]  # each job may list the inputs in its own order
        results = list(predictor.predict_many(order, tmp_path / "out", shard=(i, n)))
        seen += [r.input for r in results]
        header = json.loads((tmp_path / "out" / f"manifest.shard-{i}-of-{n}.jsonl").read_text().splitlines()[0])
        assert header["shard"] == i and header["of"] == n and header["inputs"] == 24
        assert header["assigned"] == len(results)
    assert sorted(seen) == files  # every input once, in exactly one shard
    report = merge_manifests(tmp_path / "out")
    assert report.shards == n and not report.missing_shards and report.not_covered == 0
    assert report.exit_code() == 3  # the broken input failed; the others were predicted
    assert sum(r["status"] == "ok" for r in report.records) == 23


def test_merge_reports_a_missing_shard_and_refuses_mixed_input_sets(run, inputs, tmp_path):
    out = tmp_path / "out"
    for i in (1, 2, 3):
        res = run_cli("predict", "--checkpoint", run, "--input", inputs, "--output", out, "--shard", f"{i}/3")
        assert res.returncode in (0, 3), res.stderr
        assert f"manifest.shard-{i}-of-3.jsonl" in res.stdout
    merged = run_cli("manifest", "merge", out)
    assert merged.returncode == 3 and "merged 3 of 3 shards" in merged.stdout and "broken.npy" in merged.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 24 and len({r["input"] for r in records}) == 24
    (out / "manifest.shard-2-of-3.jsonl").unlink()
    missing = run_cli("manifest", "merge", out)
    assert missing.returncode == 3 and "missing shards 2" in missing.stdout and "not covered" in missing.stdout
    other = run_cli("predict", "--checkpoint", run, "--input", inputs / "site1", "--output", out, "--shard", "2/3")
    assert other.returncode in (0, 3), other.stderr
    mixed = run_cli("manifest", "merge", out)
    assert mixed.returncode == 2 and "different input sets" in mixed.stderr
    empty = run_cli("manifest", "merge", tmp_path)
    assert empty.returncode == 2 and "holds no shard manifests" in empty.stderr
