"""Batch prediction: many inputs with one model load, provenance sidecars, manifest, resume, isolated failures."""
import json

import numpy as np
import pytest
from helpers import needs_example, run_cli

pytestmark = needs_example
FAST = ["--set", "model.channels=4", "--set", "model.depth=1", "--set", "trainer.val_every=5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "run"
    done = run_cli("train", "--plugin", "example", "--max-steps", 5, "--out", out, *FAST)
    assert done.returncode == 0, done.stderr
    return out


def _inputs(folder, n=12, bad_at=5):
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        if i == bad_at:
            (sub / f"x{i:02d}.npy").write_bytes(b"this is not a npy file")
        else:
            np.save(sub / f"x{i:02d}.npy", rng.normal(size=64).astype(np.float32))


def test_folder_batch_isolates_one_corrupt_file_then_resumes(run, tmp_path):
    _inputs(tmp_path / "in")
    out = tmp_path / "out"
    first = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "in", "--output", out)
    assert first.returncode == 3, first.stderr
    assert "failed 1 of 12" in first.stdout and "x05.npy" in first.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 12 and sum(r["status"] == "ok" for r in records) == 11
    bad = next(r for r in records if r["status"] == "failed")
    assert bad["input"].endswith("x05.npy") and bad["error"] and bad["error_type"]
    ok = next(r for r in records if r["status"] == "ok")
    assert set(ok) >= {"input", "outputs", "status", "error", "seconds", "sha256"}
    # outputs mirror the inputs below their common root, each with a provenance sidecar
    assert (out / "a" / "x01.npy").is_file() and (out / "b" / "x00.npy").is_file()
    side = json.loads((out / "a" / "x01.npy.json").read_text())
    from sigplex.core.fileio import sha256_file

    assert side["checkpoint_sha256"] == sha256_file(next(run.glob("checkpoints/*/model.safetensors")))
    assert side["input_sha256"] == sha256_file(tmp_path / "in" / "a" / "x01.npy")
    assert side["plugin"] == "example" and side["config_sha256"] and side["device"] == "cpu"
    before = (out / "a" / "x01.npy").stat().st_mtime_ns

    again = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "in", "--output", out)
    assert again.returncode == 3  # the corrupt file still fails; everything else is skipped
    assert "predicted 0, already done 11, failed 1" in again.stdout
    assert (out / "a" / "x01.npy").stat().st_mtime_ns == before


def test_glob_manifest_and_foreign_outputs(run, tmp_path):
    _inputs(tmp_path / "in", n=4, bad_at=-1)
    manifest = tmp_path / "list.manifest.txt"
    manifest.write_text("in/a/x01.npy\n# a comment\nin/b/x02.npy\n")
    out = tmp_path / "out"
    done = run_cli("predict", "--checkpoint", run, "--input", manifest, str(tmp_path / "in" / "a" / "*.npy"),
                   "--output", out, "--hash-paths")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 3  # x01 twice (manifest and glob) counts once
    assert all("/" not in r["input"] for r in records)  # hashed, no path
    # an output written by another input is not overwritten without --overwrite
    target = next(out.rglob("x02.npy"))
    sidecar = target.with_name(target.name + ".json")
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "input_sha256": "0" * 64}))
    redo = run_cli("predict", "--checkpoint", run, "--input", manifest, "--output", out)
    assert redo.returncode == 3 and "pass --overwrite" in redo.stderr
    assert run_cli("predict", "--checkpoint", run, "--input", manifest, "--output", out,
                   "--overwrite").returncode == 0


def test_all_inputs_failing_is_exit_2(run, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.npy").write_bytes(b"bad")
    (tmp_path / "in" / "y.npy").write_bytes(b"bad")
    done = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert done.returncode == 2, done.stderr


def test_predict_many_python_api(run, tmp_path):
    import sigplex.core as sp

    _inputs(tmp_path / "in", n=3, bad_at=-1)
    results = list(sp.load_run(run).predict_many(tmp_path / "in", tmp_path / "out"))
    assert [r.status for r in results] == ["ok"] * 3
    assert all(r.sha256 and len(r.outputs) == 1 for r in results)


def test_combined_table_gathers_every_csv_row_with_its_input(tmp_path):
    from sigplex.core.outputs import COMBINED_TABLE, write_combined_table

    (tmp_path / "a.csv").write_text("window,prob_x,predicted\n0,0.9,x\n1,0.2,y\n")
    (tmp_path / "b.csv").write_text("window,event,prob_x,predicted\n0,T1,0.6,x\n")
    records = [{"input": "in/a.edf", "status": "ok", "outputs": [str(tmp_path / "a.csv")]},
               {"input": "in/b.edf", "status": "skipped", "outputs": [str(tmp_path / "b.csv")]},
               {"input": "in/c.edf", "status": "failed", "outputs": []}]
    path = write_combined_table(tmp_path, records)
    assert path == tmp_path / COMBINED_TABLE
    assert path.read_text().splitlines() == ["input,window,prob_x,predicted,event", "in/a.edf,0,0.9,x,",
                                             "in/a.edf,1,0.2,y,", "in/b.edf,0,0.6,x,T1"]
    assert write_combined_table(tmp_path / "none", records[2:]) is None


def test_exit_code_counts_a_partial_input_as_not_done():
    """A partial input (some outputs written, see PartialOutput) exits 3, alone or in a batch."""
    from sigplex.core.errors import PartialOutput, UserError
    from sigplex.core.manifest import ItemResult, exit_code

    def rec(status, kind=None):
        return ItemResult(input="x", status=status, error_type=kind)

    assert exit_code([rec("ok"), rec("skipped")]) == 0
    assert exit_code([rec("partial", "PartialOutput")]) == 3
    assert exit_code([rec("ok"), rec("partial", "PartialOutput")]) == 3
    assert exit_code([rec("partial", "PartialOutput"), rec("failed", "UserError")]) == 3
    assert exit_code([rec("failed", "UserError"), rec("failed", "UserError")]) == 2
    err = PartialOutput("out.seg.dcm: cannot write the DICOM SEG", ["out.nii.gz"])
    assert isinstance(err, UserError) and err.exit_code == 3 and err.written == ["out.nii.gz"]
    assert str(err) == err.reason == "out.seg.dcm: cannot write the DICOM SEG"


def test_a_write_that_fails_half_way_leaves_no_output_of_that_input(run, tmp_path, monkeypatch):
    """The task writes its file, then fails (a disk error, say): the input is failed and the file is removed,
    while another input of the same batch is written."""
    import sigplex.core as sp

    predictor = sp.load_run(run)
    real = predictor.task.write_prediction

    def flaky(prediction, output, prepared):
        written = real(prediction, output, prepared)
        if "bad" in str(output):
            raise OSError("No space left on device")
        return written

    monkeypatch.setattr(predictor.task, "write_prediction", flaky)
    for name in ("good", "bad"):
        np.save(tmp_path / f"{name}.npy", np.ones(64, np.float32))
    results = list(predictor.predict_many([tmp_path / "good.npy", tmp_path / "bad.npy"], tmp_path / "out"))
    assert [r.status for r in results] == ["ok", "failed"] and "No space left" in results[1].error
    assert (tmp_path / "out" / "good.npy").is_file()
    assert not (tmp_path / "out" / "bad.npy").exists() and not (tmp_path / "out" / "bad.npy.json").exists()
