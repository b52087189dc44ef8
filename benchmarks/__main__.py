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


def machine_label() -> str:
    """The CPU a result belongs to: its model name (sections of RESULTS.md are per benchmark and CPU)."""
    from sigplex.core.device import cpu_info

    return cpu_info()["model"]


def _stamp(quick: bool) -> str:
    import torch

    from sigplex.core.device import kernel_libraries
    from sigplex.core.runtime import reusing_freed_memory

    lib = kernel_libraries()
    return (f"_Measured {time.strftime('%Y-%m-%d')}{' (--quick)' if quick else ''} on {machine_label()} "
            f"({_platform.machine()}, ISA {', '.join(lib['isa']) or 'baseline'}, torch dispatch {lib['capability']}), "
            f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"BLAS {lib['blas']}, oneDNN {lib['onednn']}"
            f"{', freed memory reused (sigplex.core.runtime)' if reusing_freed_memory() else ''}._")


def _is_measurement(column: str, cell: str) -> bool:
    """Times, ratios and other float cells are measurements; names, sizes and other integers say the configuration."""
    if column in ("ours_s", "peer_s", "ratio") or cell in ("", "None", "nan"):
        return True
    try:
        int(cell)
    except ValueError:
        try:
            float(cell)
        except ValueError:
            return False
        return True
    return False


def _row_key(columns: list[str], cells: list[str]) -> tuple:
    """A table row's configuration: its non-measurement cells (sizes, peer and engine names...)."""
    return tuple(c for k, c in zip(columns, cells) if not _is_measurement(k, c))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _sections(rows: list[dict], quick: bool, old: dict[str, list[str]]) -> dict[str, list[str]]:
    """One markdown section per benchmark and CPU, with the date and machine; rows of configurations this
    run did not measure stay from ``old`` (the section's previous lines) when the columns are the same."""
    keys = ["ours_s", "peer", "peer_s", "ratio"]
    out = {}
    for bench in dict.fromkeys(r["bench"] for r in rows):
        title = f"{bench} — {machine_label()}"
        mine = [r for r in rows if r["bench"] == bench]
        notes = sorted({str(r["note"]) for r in mine if r.get("note")})
        extra = [k for k in dict.fromkeys(k for r in mine for k in r) if k not in keys and k not in ("bench", "note")]
        columns = keys + extra
        table = [[str(r.get(k, "")) for k in columns] for r in mine]
        previous = [_cells(line) for line in old.get(title, []) if line.startswith("| ")]
        if previous and previous[0] == columns:
            fresh = {_row_key(columns, cells) for cells in table}
            kept = [cells for cells in previous[1:] if _row_key(columns, cells) not in fresh]
            table = kept + table
        lines = [f"## {title}", "", _stamp(quick), ""]
        lines += [f"{n}" for n in notes] + ([""] if notes else [])
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cells) + " |" for cells in table]
        out[title] = lines
    return out


HEADER = ["# Benchmark results", "",
          "Written by `python -m benchmarks NAME` (that benchmark's sections) or `python -m benchmarks all`. "
          "One section per benchmark and CPU: a run replaces the rows of the configurations it measured on "
          "its CPU and keeps the rest. "
          "ratio = peer time / ours (> 1: sigplex is faster) unless a benchmark's note says otherwise."]


def write_results(rows: list[dict], path: Path, quick: bool) -> None:
    """Update RESULTS.md: merge ``rows`` into their (benchmark, CPU) sections by configuration."""
    from sigplex.core.fileio import atomic_write_bytes

    sections: dict[str, list[str]] = {}
    if path.is_file():
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
    sections.update(_sections(rows, quick, sections))
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
        write_results(rows, Path(args.output), args.quick)
        return 0
    if args.name not in available():
        print(f"unknown benchmark {args.name!r}; expected one of: all, {', '.join(available())}", file=sys.stderr)
        return 2
    write_results(run_one(args.name, args.quick, args.device), Path(args.output), args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
