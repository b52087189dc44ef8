"""Run side-by-side benchmarks: ``python -m benchmarks NAME [--quick] [--device D]`` or ``python -m benchmarks all``.

Each benchmark is a module ``benchmarks/<name>.py`` with ``run(quick: bool) -> list[dict]``;
every dict has at least ``bench, ours_s, peer, peer_s, ratio`` (ratio = peer_s / ours_s, so
> 1 means sigplex is faster). Lines are printed as JSON; ``all`` also writes RESULTS.md.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import platform as _platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_"))


def run_one(name: str, quick: bool, device: str | None = None) -> list[dict]:
    """``benchmarks.NAME.run(quick)``; ``device`` goes to the benchmarks whose ``run`` takes one (CPU for the rest)."""
    module = importlib.import_module(f"benchmarks.{name}")
    takes_device = "device" in inspect.signature(module.run).parameters
    rows = module.run(quick=quick, **({"device": device} if device and takes_device else {}))
    for r in rows:
        print(json.dumps(r), flush=True)
    return rows


def _sections(rows: list[dict], quick: bool) -> dict[str, list[str]]:
    """One markdown section per benchmark (its own columns), with the date and machine it ran on."""
    import torch

    from sigplex.core.runtime import reusing_freed_memory

    keys = ["ours_s", "peer", "peer_s", "ratio"]
    stamp = (f"_Measured {time.strftime('%Y-%m-%d')}{' (--quick)' if quick else ''} on {_platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
             f"{', freed memory reused (sigplex.core.runtime)' if reusing_freed_memory() else ''}._")
    out = {}
    for bench in dict.fromkeys(r["bench"] for r in rows):
        mine = [r for r in rows if r["bench"] == bench]
        notes = sorted({str(r["note"]) for r in mine if r.get("note")})
        extra = [k for k in dict.fromkeys(k for r in mine for k in r) if k not in keys and k not in ("bench", "note")]
        lines = [f"## {bench}", "", stamp, ""]
        lines += [f"{n}" for n in notes] + ([""] if notes else [])
        lines += ["| " + " | ".join(keys + extra) + " |", "|" + "---|" * (len(keys) + len(extra))]
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys + extra) + " |" for r in mine]
        out[bench] = lines
    return out


HEADER = ["# Benchmark results", "",
          "Written by `python -m benchmarks NAME` (that benchmark's sections) or `python -m benchmarks all`. "
          "ratio = peer time / ours (> 1: sigplex is faster) unless a benchmark's note says otherwise."]


def write_results(rows: list[dict], path: Path, quick: bool, replace_all: bool = False) -> None:
    """Update RESULTS.md: replace the sections of the benchmarks in ``rows`` (all sections with ``replace_all``)."""
    from sigplex.core.fileio import atomic_write_bytes

    sections: dict[str, list[str]] = {}
    if path.is_file() and not replace_all:
        current = None
        for line in path.read_text().splitlines():
            if line.startswith("## "):
                current = line[3:].strip()
                sections[current] = [line]
            elif current is not None:
                sections[current].append(line)
        for name in sections:
            while sections[name] and not sections[name][-1].strip():
                sections[name].pop()
    sections.update(_sections(rows, quick))
    lines = list(HEADER)
    for body in sections.values():
        lines += [""] + body
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode(), overwrite=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"one of: all, {', '.join(available())}")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"), help="the results file whose sections are updated")
    parser.add_argument("--device", help="cpu, cuda, cuda:N: for the benchmarks that take one (device_check, "
                                         "swin_unetr_infer, swin_unetr_train, window_attention_3d)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    from sigplex.core.runtime import reuse_freed_memory

    # as the platform CLI does (CPU only); peers run in this process, so they get it too
    reuse_freed_memory(args.device or ("auto" if args.name == "device_check" else None))
    if args.name == "all":
        rows = []
        for name in available():
            rows += run_one(name, args.quick, args.device)
        write_results(rows, Path(args.output), args.quick, replace_all=True)
        return 0
    if args.name not in available():
        print(f"unknown benchmark {args.name!r}; expected one of: all, {', '.join(available())}", file=sys.stderr)
        return 2
    write_results(run_one(args.name, args.quick, args.device), Path(args.output), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
