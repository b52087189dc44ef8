"""The ``platform`` command (also installed as ``sigplex``): plugins, train, evaluate, predict, export, card.

Exit codes: 0 ok, 2 an error the user can fix (one line, no traceback), 1 an internal error,
3 some inputs of a batch prediction failed (the others were written; see manifest.jsonl).
``--verbose`` shows tracebacks. See docs/cli.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from .engines import CHOICES
from .errors import PartialOutput, UserError, first_line, one_line
from .limits import DEFAULT_MAX_INPUT_MB, input_limit


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="show tracebacks")

    p = argparse.ArgumentParser(prog="platform", description="sigplex: deep learning for medical images, audio and signals",
                                parents=[common])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser("plugins", help="list installed plugins", parents=[common])
    psub = plugins.add_subparsers(dest="plugins_command", metavar="list|new")
    plist = psub.add_parser("list", help="name, version, distribution, tasks and status of every plugin", parents=[common])
    plist.add_argument("--json", action="store_true", help="print JSON")

    def task_args(sp, required=True):
        sp.add_argument("--plugin", required=required,
                        help="plugin name (see 'platform plugins list')" + ("" if required else
                                                                             "; read from the run's run.json if omitted"))
        sp.add_argument("--task", help="task of the plugin (default: its first)")

    def set_arg(sp, example="trainer.max_steps=50"):
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. --set {example} (repeatable)")

    def engine_arg(sp):
        sp.add_argument("--engine", default="torch", choices=CHOICES,
                        help="run the model in torch (eager), torch.compile, ONNX Runtime (RUN/export/model.onnx, "
                             "exported if missing), or the fastest of them here by a measured probe (auto)")

    train = sub.add_parser("train", help="train a task", parents=[common])
    task_args(train, required=False)
    train.add_argument("--data", help="data file or folder (default: the task's embedded data)")
    train.add_argument("--config", help="YAML file or preset name")
    set_arg(train)
    train.add_argument("--adapter", help="fine-tune only an adapter, e.g. lora:r=8,alpha=16")
    train.add_argument("--init-from", help="run dir or weights file to start from")
    train.add_argument("--distill-from", help="teacher run dir or weights file: train this model as its student "
                                              "(see the distill.* config section)")
    train.add_argument("--max-steps", type=int, help="shortcut for --set trainer.max_steps=N")
    train.add_argument("--out", help="run directory to create (default: runs/PLUGIN-TASK-TIME)")
    train.add_argument("--resume", help="continue this run directory exactly where it stopped")
    train.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    train.add_argument("--nproc", type=int, default=1, help="processes on this machine (N > 1 runs torchrun)")

    ev = sub.add_parser("evaluate", help="evaluate a trained run", parents=[common])
    task_args(ev, required=False)
    ev.add_argument("--checkpoint",
                    help="run dir (its best checkpoint), a checkpoint folder, or a bare weights file (with --plugin); "
                         "default: the task's shipped weights")
    ev.add_argument("--config", help="with a bare weights file: YAML file or preset name for the model")
    ev.add_argument("--data", help="labelled data to evaluate on, all of it (default: the run's test split)")
    set_arg(ev, "data.fill=ffill")
    ev.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    engine_arg(ev)
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.add_argument("--max-input-mb", type=float, default=DEFAULT_MAX_INPUT_MB,
                    help="the most memory one input may hold, in MB (default 2048; larger inputs are refused)")

    pr = sub.add_parser("predict", help="run a trained model on new input", parents=[common])
    task_args(pr, required=False)
    pr.add_argument("--checkpoint", help="run dir, checkpoint folder or bare weights file (default: the task's "
                                         "shipped weights)")
    pr.add_argument("--config", help="with a bare weights file: YAML file or preset name for the model")
    pr.add_argument("--input", required=True, nargs="+", metavar="PATH",
                    help="one or more files, folders, quoted globs or manifests (*.manifest.txt, or a CSV whose "
                         "first column is 'path')")
    pr.add_argument("--output", required=True,
                    help="output file for one input; a folder for several (outputs mirror the inputs' paths)")
    pr.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    pr.add_argument("--hash-paths", action="store_true",
                    help="record a hash instead of each input path in sidecars and the manifest")
    set_arg(pr, "data.fill=ffill")
    pr.add_argument("--shard", metavar="I/N", help="predict share I of N of the inputs (job arrays; see "
                                                   "'platform manifest merge')")
    pr.add_argument("--ray", nargs="?", const=True, metavar="ADDRESS",
                    help="predict on Ray actors: a local instance, or join ADDRESS (auto, HOST:PORT, ray://...)")
    pr.add_argument("--workers", type=int, default=2, help="with --ray: Ray actors, each loading the model once")
    pr.add_argument("--threads-per-worker", type=int, default=1, help="with --ray: torch threads per actor")
    pr.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    engine_arg(pr)
    pr.add_argument("--max-input-mb", type=float, default=DEFAULT_MAX_INPUT_MB,
                    help="the most memory one input may hold, in MB (default 2048; larger inputs are refused)")

    sv = sub.add_parser("serve", help="serve a trained model over HTTP (FastAPI + uvicorn)", parents=[common])
    task_args(sv, required=False)
    sv.add_argument("--checkpoint", help="run dir (default: the task's shipped weights, with --plugin)")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; others need a token)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--token-env", help="environment variable holding the bearer token clients must send")
    sv.add_argument("--max-body-mb", type=float, default=100.0, help="largest request body accepted")
    sv.add_argument("--max-input-mb", type=float, default=DEFAULT_MAX_INPUT_MB,
                    help="the most memory one input may hold, in MB (default 2048; larger inputs are refused)")
    sv.add_argument("--timeout-s", type=float, default=60.0, help="answer 503 when a prediction takes longer")
    sv.add_argument("--queue", type=int, default=8, help="requests that may wait; more get 429")
    sv.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    engine_arg(sv)

    man = sub.add_parser("manifest", help="manifests of batch predictions", parents=[common])
    msub = man.add_subparsers(dest="manifest_command", required=True)
    merge = msub.add_parser("merge", help="merge the shard manifests in OUTPUT into OUTPUT/manifest.jsonl",
                            parents=[common])
    merge.add_argument("output", help="the --output folder the shards wrote to")

    card = sub.add_parser("card", help="regenerate a run's model card (MODEL_CARD.md + card.json)", parents=[common])
    card.add_argument("run", help="run directory")

    new = psub.add_parser("new", help="write a ready plugin package with a task, a model and a passing test",
                          parents=[common])
    new.add_argument("name", help="plugin name (a Python identifier, e.g. ecg_beats)")
    new.add_argument("--dir", default=".", help="folder to create the package in (default: here)")

    ex = sub.add_parser("export", help="export a trained model to ONNX or TorchScript", parents=[common])
    task_args(ex, required=False)
    ex.add_argument("--checkpoint", required=True)
    ex.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    ex.add_argument("--output", help="output file (default: RUN/export/model.onnx or model.pt)")
    ex.add_argument("--overwrite", action="store_true")
    return p


def _cmd_plugins_list(args) -> int:
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    records = [r.as_dict() for r in pm.records.values()]
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    if not records:
        print("no plugins installed")
        return 0
    for r in records:
        tasks = ", ".join(t["name"] for t in r["tasks"]) or "-"
        status = r["status"] if r["status"] == "ok" else f"{r['status']} — {r['reason']}"
        print(f"{r['name']:<16} {r['version'] or '-':<9} {r['distribution'] or '-':<26} tasks: {tasks:<28} {status}")
    return 0


def _exec_torchrun(args, argv: list[str]) -> int:
    """Re-run this train command under torchrun with ``args.nproc`` processes."""
    from .run import default_run_dir

    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        rest.append(a)
    if not args.out and not args.resume:
        rest += ["--out", str(default_run_dir(args.plugin, args.task or "default"))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "sigplex.core.cli", *rest]
    sys.stdout.flush()
    os.execv(sys.executable, cmd)
    return 1  # not reached


def _cmd_train(args, argv) -> int:
    from . import api

    if not args.plugin and not args.resume:
        raise UserError("train: --plugin NAME is required (or --resume RUN_DIR, which names its plugin)")
    if args.nproc < 1:
        raise UserError(f"--nproc {args.nproc}: expected a positive number of processes")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _exec_torchrun(args, argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not (args.out or args.resume):
        raise UserError("--out is required when launched by torchrun (every process must write the same run)")
    if args.resume and (args.config or args.adapter or args.init_from or args.out or args.distill_from):
        raise UserError("--resume continues a run with its saved config; drop --config/--adapter/--init-from/--out/"
                        "--distill-from")
    run = api.fit(args.plugin, task=args.task, data=args.data, config=args.config, overrides=args.overrides,
                  adapter=args.adapter, init_from=args.init_from, max_steps=args.max_steps, out=args.out,
                  resume=args.resume, device=args.device, override_label="--set", distill_from=args.distill_from)
    if int(os.environ.get("RANK", "0")) == 0:
        summary = run.summary
        for split in ("val", "test"):
            if summary.get(split):
                print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in summary[split].items()))
        print(f"run directory: {run.path}")
    return 0


def _cmd_evaluate(args) -> int:
    from . import api

    metrics = api.evaluate(args.checkpoint, data=args.data, plugin=args.plugin, task=args.task,
                           overrides=args.overrides, device=args.device, config=args.config, engine=args.engine)
    if args.json:
        print(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            print(f"{k}: {v:.6g}")
    return 0


def _cmd_predict(args) -> int:
    from . import api
    from .batch import expand_inputs
    from .manifest import MANIFEST, SHARD_MANIFEST, exit_code, parse_shard
    from .outputs import check_suffix, has_output_suffix

    shard = parse_shard(args.shard) if args.shard else None

    predictor = api.load_predictor(args.checkpoint, plugin=args.plugin, task=args.task, overrides=args.overrides,
                                   device=args.device, engine=args.engine, config=args.config)
    if predictor.run is None and args.checkpoint is None:
        print(f"using the shipped weights {predictor.source} (no --checkpoint given)", file=sys.stderr)
    elif predictor.run is None:
        print(f"using the weights file {args.checkpoint} with the {predictor.plugin} task's config "
              f"(model {getattr(predictor.config.model, 'name', '?')})", file=sys.stderr)
    output = Path(args.output)
    items = expand_inputs(predictor.task, args.input)
    one = len(args.input) == 1 and len(items) == 1 and not output.is_dir()
    if one and output.suffix:
        check_suffix(predictor.task, output, hint=" (or a folder, for several inputs)")
    single = one and has_output_suffix(predictor.task, output) and shard is None and not args.ray
    if single:
        from .batch import predict_one

        try:
            r = predict_one(predictor, args.input[0], output, overwrite=args.overwrite, hash_paths=args.hash_paths)
        except PartialOutput as exc:
            for path in exc.written:
                print(f"wrote {path}")
            print(f"partial: {exc.reason} (run the same command again to retry)", file=sys.stderr)
            return exc.exit_code
        for path in r.outputs:
            print(f"{'already done (same model and input)' if r.status == 'skipped' else 'wrote'} {path}")
        return 0
    results = []
    if args.ray and shard:
        raise UserError("--ray with --shard: give one of them (Ray spreads the inputs itself)")
    for r in predictor.predict_many(args.input, output, overwrite=args.overwrite, hash_paths=args.hash_paths,
                                    shard=shard, ray=args.ray, workers=args.workers,
                                    threads_per_worker=args.threads_per_worker):
        results.append(r)
        if r.status in ("failed", "partial"):
            print(f"{r.status} {r.input}: {r.error}", file=sys.stderr)
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "partial", "failed")}
    partial = f", partial {counts['partial']}" if counts["partial"] else ""
    manifest = SHARD_MANIFEST.format(i=shard[0], n=shard[1]) if shard else MANIFEST
    print(f"predicted {counts['ok']}, already done {counts['skipped']}{partial}, failed {counts['failed']} of "
          f"{len(results)} inputs; manifest: {output / manifest}")
    return exit_code(results)


def _cmd_manifest_merge(args) -> int:
    from .manifest import merge_manifests, write_merged

    report = merge_manifests(Path(args.output))
    path = write_merged(Path(args.output), report)
    print(f"{report.summary()}; manifest: {path}")
    failed = [r for r in report.records if r.get("status") in ("failed", "partial")]
    for r in failed:
        print(f"{r['status']} {r['input']}: {r.get('error')}", file=sys.stderr)
    return report.exit_code()


def _cmd_serve(args) -> int:
    from .serve import serve

    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise UserError(f"--token-env {args.token_env}: that environment variable is not set or empty")
    if args.checkpoint is None and args.plugin is None:
        raise UserError("serve: give --checkpoint RUN_DIR, or --plugin NAME to serve the task's shipped weights")
    serve(args.checkpoint, plugin=args.plugin, task=args.task, host=args.host, port=args.port, token=token,
          max_body_mb=args.max_body_mb, timeout_s=args.timeout_s, device=args.device, engine=args.engine,
          queue_size=args.queue, max_input_mb=args.max_input_mb)
    return 0


def _cmd_card(args) -> int:
    from .api import regenerate_card

    print(f"wrote {regenerate_card(args.run)}")
    return 0


def _cmd_plugins_new(args) -> int:
    from .scaffold import new_plugin

    root = new_plugin(args.name, Path(args.dir))
    print(f"wrote {root}\nnext: pip install -e {root} && platform train --plugin {args.name} --max-steps 20")
    return 0


def _cmd_export(args) -> int:
    from . import api

    result = api.export(args.checkpoint, format=args.format, output=args.output, plugin=args.plugin,
                        task=args.task, overwrite=args.overwrite)
    diff = result.get("max_abs_diff")
    print(f"wrote {result['path']} ({args.format}" + (f", max abs diff vs PyTorch {diff:.2e})" if diff is not None else ")"))
    if result.get("note"):
        print(f"note: {result['note']}")
    return 0


def _quiet_dependencies() -> None:
    """Keep import-time warnings and log chatter of dependencies (MONAI, MNE, ...) out of normal output."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # torchrun children too
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("monai", "mne", "nibabel", "matplotlib", "torch", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _dispatch(parser, args, argv) -> int:
    if args.command == "plugins":
        if args.plugins_command == "new":
            return _cmd_plugins_new(args)
        if args.plugins_command != "list":
            parser.parse_args(["plugins", "--help"])
        return _cmd_plugins_list(args)
    if args.command == "card":
        return _cmd_card(args)
    if args.command == "manifest":
        return _cmd_manifest_merge(args)
    if args.command == "serve":
        return _cmd_serve(args)
    if args.command == "train":
        return _cmd_train(args, argv)
    if args.command == "evaluate":
        return _cmd_evaluate(args)
    if args.command == "predict":
        return _cmd_predict(args)
    if args.command == "export":
        return _cmd_export(args)
    parser.print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False) or os.environ.get("SIGPLEX_VERBOSE") == "1"
    from .errors import NOTICES

    NOTICES["stderr"] = True
    from .runtime import reuse_freed_memory

    # large tensors are reused, not page-faulted in anew, on the CPU (SIGPLEX_REUSE_FREED_MEMORY=0: off)
    reuse_freed_memory(getattr(args, "device", None) or ("auto" if args.command == "train" else None))
    if not verbose:
        _quiet_dependencies()
    try:
        with input_limit(getattr(args, "max_input_mb", DEFAULT_MAX_INPUT_MB)):
            return _dispatch(parser, args, argv)
    except UserError as exc:
        if verbose:
            traceback.print_exc()
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # internal error: one line unless --verbose
        if verbose:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {first_line(exc)} (run with --verbose for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
