"""brain_seg through the core's hostile-input harness: case folders and 4D NIfTI, NIfTI headers past the
limit, .nii.gz bombs, NaN volumes, missing modalities; predict, serve and evaluate."""
from helpers import check_hostile


def test_hostile_inputs_are_answered_or_refused_in_one_line(run_dir, tmp_path):
    import sigplex.core as sp

    report = check_hostile(sp.load_run(run_dir), tmp_path, ["--checkpoint", run_dir], "case_4d.nii.gz", evaluate=6)
    assert report["ok"] >= 2 and report["http_413"] >= 4, report
