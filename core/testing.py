"""Checks a plugin's own tests can call: every registered model through forward, backward, adapters and export.

The core runs them on every installed model (tests/core/test_all_models.py); a plugin author who
installed the wheel calls them from the plugin's tests::

    from sigplex.core.testing import check_model
    import my_plugin.model  # registers "my_net"

    def test_my_net(tmp_path):
        check_model("my_net", export_to=tmp_path)

Each check raises ``AssertionError`` saying what failed.
"""
from __future__ import annotations

from pathlib import Path


def _entry(name: str):
    from . import models

    return models.model_entry(name)


def _first_tensor(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    return _first_tensor(out[0] if isinstance(out, (list, tuple)) else next(iter(out.values())))


def _tiny(name: str):
    import torch

    entry = _entry(name)
    torch.manual_seed(0)
    model = entry.build_tiny()
    x = entry.example_input()
    return model, (x if isinstance(x, tuple) else (x,))


def check_forward_backward(name: str) -> None:
    """The tiny model's eval forward is deterministic and finite, train mode gives the same shape, and
    every trainable parameter gets a finite gradient."""
    import torch

    model, args = _tiny(name)
    model.eval()
    with torch.no_grad():
        a, b = _first_tensor(model(*args)), _first_tensor(model(*args))
    assert torch.equal(a, b), f"{name}: the eval forward is not deterministic"
    assert torch.isfinite(a).all(), f"{name}: the eval forward gives NaN or infinite values"
    model.train()
    out = _first_tensor(model(*args))
    assert out.shape == a.shape, f"{name}: train-mode output {tuple(out.shape)} differs from eval {tuple(a.shape)}"
    out.float().square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), \
        f"{name}: missing or non-finite gradients"


def check_adapters(name: str) -> None:
    """The model declares ``adapter_targets``, and LoRA on its default targets starts as a no-op."""
    import torch

    from .adapters import apply_adapter

    assert isinstance(getattr(_entry(name).cls, "adapter_targets", None), dict), \
        f"{name} declares no adapter_targets (a dict of adapter kind -> module-name globs)"
    model, args = _tiny(name)
    model.eval()
    with torch.no_grad():
        before = _first_tensor(model(*args))
    apply_adapter(model, "lora:r=2")
    with torch.no_grad():
        after = _first_tensor(model(*args))
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5, msg=f"{name}: LoRA at start changes the output")
    assert any(p.requires_grad for p in model.parameters()), f"{name}: nothing to train after apply_adapter"


def check_export(name: str, folder: str | Path, atol: float = 1e-4) -> None:
    """The tiny model exports to ONNX and ONNX Runtime agrees with PyTorch within ``atol`` (skipped for a
    model registered with ``exportable=False``)."""
    from .exporter import export_model

    entry = _entry(name)
    if not entry.exportable:
        return
    model, args = _tiny(name)
    result = export_model(model.eval(), args if len(args) > 1 else args[0], format="onnx",
                          output=Path(folder) / f"{name}.onnx")
    assert result["max_abs_diff"] <= atol, f"{name}: ONNX differs from PyTorch by {result['max_abs_diff']:.3g}"


def check_model(name: str, export_to: str | Path | None = None) -> None:
    """All the checks above; the export only when ``export_to`` names a folder for the ONNX file."""
    check_forward_backward(name)
    check_adapters(name)
    if export_to is not None:
        check_export(name, export_to)


# --- hostile inputs ------------------------------------------------------------------------------
def hostile_inputs(task, prepared, folder: str | Path, samples=None) -> list:
    """Hostile variants (:class:`sigplex.core.hostile.HostileInput`) of the task's valid inputs, written
    below ``folder``: the core's generic ones and the task's ``format_variants``. ``samples`` (paths of
    valid inputs) replaces ``task.sample_inputs`` for tasks that declare none (contract v1 plugins).

    Bombs and over-limit arrays are sized past the current input limit: hold a small one
    (``sigplex.core.limits.input_limit``) while generating and checking."""
    from .hostile import HostileInput, generic_variants

    folder = Path(folder)
    samples = [Path(p) for p in (samples or task.sample_inputs(prepared, folder / "valid"))]
    if not samples:
        raise AssertionError(f"task {task.name!r} declares no sample_inputs(prepared, folder); pass samples=")
    found = []
    for i, sample in enumerate(samples[:3]):
        found.append(HostileInput("valid", _copy(sample, folder / f"variants{i}" / "valid"), valid=True))
        found += generic_variants(sample, folder / f"variants{i}", task.format_variants)
    return found


def _copy(sample: Path, folder: Path) -> Path:
    """``sample`` (a file or folder) copied into ``folder``: each sample's outputs get a folder of their own."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sample.name
    if sample.is_dir():
        shutil.copytree(sample, target)
    else:
        shutil.copyfile(sample, target)
    return target


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def check_hostile_inputs(predictor, folder: str | Path, cli_args: list[str], *, samples=None,
                         limit_mb: float = 32.0, serve: bool = True, evaluate: int = 0) -> dict:
    """Run every hostile input through ``platform predict`` (in-process, one batch and single inputs)
    and through ``platform serve``'s app, and assert the contract of docs/cli.md: exit 0 with finite
    outputs, or a one-line refusal naming the file (exit 2, HTTP 400; 413 when over the limit);
    never exit 1, HTTP 500, a traceback or NaN/Inf in an output. ``cli_args`` name the model for the
    CLI (``["--checkpoint", RUN]`` or ``["--plugin", NAME]``). ``evaluate=N`` also gives N of the
    variants to ``platform evaluate --data`` (exit 0, or 2 with one line). Returns counts per outcome."""
    from .limits import input_limit

    folder = Path(folder)
    with input_limit(limit_mb):
        variants = hostile_inputs(predictor.task, predictor.prepared, folder / "in", samples)
    problems: list[str] = []
    report = _check_batch(variants, folder / "batch", cli_args, limit_mb, problems)
    for variant in [v for v in variants if v.name in ("empty", "random-bytes")][:2]:
        _check_single(variant, folder / "single", cli_args, limit_mb, predictor, problems)
    if serve:
        report.update(_check_serve(predictor, variants, limit_mb, problems))
    if evaluate:
        report["evaluate_refused"] = _check_evaluate(variants[:evaluate], cli_args, limit_mb, problems)
    report["variants"] = len(variants)
    assert not problems, f"{len(problems)} broken answer(s) of {len(variants)} hostile inputs:\n" + "\n".join(problems)
    return report


def _run_cli(args: list[str]) -> tuple[int, str, str]:
    """``platform ARGS`` in this process: (exit code, stdout, stderr); what ``main`` sets for a CLI process
    (warning filters, notices on stderr, PYTHONWARNINGS) is put back afterwards."""
    import contextlib
    import io
    import os
    import warnings

    from .cli import main
    from .errors import NOTICES

    out, err = io.StringIO(), io.StringIO()
    saved = dict(NOTICES), os.environ.get("PYTHONWARNINGS")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        NOTICES.update(saved[0])
        if saved[1] is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = saved[1]
    return code, out.getvalue(), err.getvalue()


def _check_batch(variants, out: Path, cli_args, limit_mb, problems) -> dict:
    import json

    code, stdout, stderr = _run_cli(["predict", *cli_args, "--input", *[v.path for v in variants], "--output", out,
                                     "--max-input-mb", limit_mb])
    assert code in (0, 2, 3), f"batch predict exited {code}: {stderr[-2000:]}"
    _expect(problems, "Traceback" not in stderr, f"batch predict printed a traceback: {stderr[-2000:]}")
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    by_input = {r["input"]: r for r in records}
    counts = {"ok": 0, "refused": 0}
    for v in variants:
        # a folder that is not an input itself is walked: the inputs found inside answer for it
        found = [by_input[str(v.path)]] if str(v.path) in by_input else \
            [r for key, r in by_input.items() if key.startswith(f"{v.path}/")]
        if not found:
            problems.append(f"{v.name}: no manifest record for {v.path} or an input inside it")
        for r in found:
            _check_record(v, r, problems, counts)
    return counts


def _check_record(v, r: dict, problems: list[str], counts: dict) -> None:
    """One manifest record of variant ``v``: a valid sample predicted, a refusal as the contract says, or
    finite outputs."""
    if r["status"] == "failed" and v.valid:
        problems.append(f"valid sample {v.path.name}: refused: {r['error']}")
    elif r["status"] == "failed":
        _check_refusal(v, r["error"], r["error_type"] == "UserError", problems)
        counts["refused"] += 1
    else:
        _expect(problems, not v.too_large, f"{v.name}: over the input limit by design, yet predicted")
        for f in r["outputs"]:
            _expect_finite(problems, Path(f), v.name)
        counts["ok"] += 1
    return counts


def _check_refusal(variant, message: str, user_error: bool, problems) -> None:
    if not user_error:
        problems.append(f"{variant.name}: an internal error, not a refusal: {message}")
        return
    _expect(problems, len(_lines(message)) == 1, f"{variant.name}: the refusal is not one line: {message!r}")
    named = {str(variant.path), variant.path.name, variant.path.parent.name}
    _expect(problems, any(n in message for n in named), f"{variant.name}: the refusal does not name the file: {message}")
    if variant.too_large:
        _expect(problems, "--max-input-mb" in message,
                f"{variant.name}: over the limit, refused for another reason: {message}")


def _check_single(variant, out: Path, cli_args, limit_mb, predictor, problems) -> None:
    suffix = (predictor.task.output_suffixes or ("",))[0]
    code, _, stderr = _run_cli(["predict", *cli_args, "--input", variant.path, "--output",
                                out / f"{variant.name}{suffix}", "--max-input-mb", limit_mb])
    _expect(problems, code == 2, f"{variant.name}: single-input predict exited {code}, expected 2: {stderr[-2000:]}")
    lines = [ln for ln in _lines(stderr) if not ln.startswith("warning:") and not ln.startswith("using ")]
    _expect(problems, len(lines) == 1 and lines[0].startswith("error: "), f"{variant.name}: stderr {stderr!r}")


def _check_evaluate(variants, cli_args, limit_mb, problems) -> int:
    refused = 0
    for v in variants:
        code, _, stderr = _run_cli(["evaluate", *cli_args, "--data", v.path, "--max-input-mb", limit_mb])
        lines = [ln for ln in _lines(stderr) if not ln.startswith("warning:") and not ln.startswith("using ")]
        refused += code == 2
        _expect(problems, code in (0, 2), f"evaluate --data {v.name}: exited {code}: {stderr[-1000:]}")
        _expect(problems, code == 0 or (len(lines) == 1 and lines[0].startswith("error: ")),
                f"evaluate --data {v.name}: stderr {stderr!r}")
    return refused


def _check_serve(predictor, variants, limit_mb, problems) -> dict:
    import asyncio
    import tempfile

    import httpx

    from .serve import create_app

    app = create_app(predictor, max_input_mb=limit_mb)
    statuses: dict[str, int] = {}

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as client:
            for v in variants:
                if v.path.is_symlink() or (v.path.is_dir() and any(p.is_symlink() for p in v.path.rglob("*"))):
                    continue  # a symlink cannot be uploaded
                parts = [v.path] if v.path.is_file() else sorted(p for p in v.path.rglob("*") if p.is_file())
                base = v.path if v.path.is_dir() else v.path.parent
                files = [("file", (str(p.relative_to(base)), p.read_bytes())) for p in parts]
                r = await client.post("/predict", files=files) if files else \
                    await client.post("/predict", content=b"", headers={"content-type": "multipart/form-data"})
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                _check_answer(v, r)

    def _check_answer(v, r):
        if r.status_code not in (200, 400, 413):
            problems.append(f"{v.name}: HTTP {r.status_code}: {r.text[:500]}")
            return
        if r.status_code == 200:
            _expect(problems, not v.too_large, f"{v.name}: over the input limit by design, yet answered 200")
            name = r.headers.get("content-disposition", "").split("filename=")[-1].strip('"')
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / (name or "prediction")
                path.write_bytes(r.content)
                _check_finite_answer(path, v.name, problems)
            return
        message = r.json()["error"]
        _expect(problems, not v.valid, f"valid sample {v.path.name}: HTTP {r.status_code} ({message})")
        _expect(problems, len(_lines(message)) == 1 and "Traceback" not in message, f"{v.name}: {message!r}")
        _expect(problems, (r.status_code == 413) == v.too_large, f"{v.name}: HTTP {r.status_code} ({message})")

    asyncio.run(go())
    return {f"http_{k}": n for k, n in sorted(statuses.items())}


def _check_finite_answer(path: Path, name: str, problems) -> None:
    import zipfile

    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            zf.extractall(path.parent / "unzipped")
        for f in (path.parent / "unzipped").iterdir():
            _expect_finite(problems, f, name)
    else:
        _expect_finite(problems, path, name)


def _expect(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def _expect_finite(problems: list[str], path: Path, name: str) -> None:
    try:
        check_finite_file(path, name)
    except AssertionError as exc:
        problems.append(str(exc))


def check_finite_file(path: Path, name: str = "") -> None:
    """Assert an output file holds no NaN or infinite number (see :func:`sigplex.core.outputs.nonfinite_values`)."""
    from .outputs import nonfinite_values

    found = nonfinite_values(Path(path))
    assert found is None, f"{name + ': ' if name else ''}{Path(path).name}: holds {found}"
