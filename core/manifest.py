"""The manifest of a batch prediction: one record per input, the exit code they make, and shards.

:class:`ItemResult` is one line of ``manifest.jsonl`` and :func:`exit_code` the command's exit code
over them. ``platform predict ... --shard I/N`` predicts the inputs whose key (the path relative to the common
folder of *all* expanded inputs, so the share does not depend on the order they were listed in)
hashes to share ``I`` of ``N`` (1-based). It writes ``manifest.shard-I-of-N.jsonl``: a header line
``{"shard": I, "of": N, "inputs": count, "inputs_sha256": ..., "assigned": count}``, then one
record per input. ``platform manifest merge OUT`` checks the shards against each other and writes
``manifest.jsonl`` (and the combined table of tasks that have one).

>>> shard_of("a/x.npy", 5) == shard_of("a/x.npy", 5)
True
>>> parse_shard("2/5")
(2, 5)
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import UserError
from .fileio import atomic_write_text
from .outputs import write_combined_table

MANIFEST = "manifest.jsonl"
SHARD_MANIFEST = "manifest.shard-{i}-of-{n}.jsonl"
_SHARD_NAME = re.compile(r"^manifest\.shard-(\d+)-of-(\d+)\.jsonl$")


@dataclass
class ItemResult:
    """What happened to one input (one line of ``manifest.jsonl``)."""

    input: str
    outputs: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | skipped | partial | failed
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0
    sha256: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def exit_code(results: list[ItemResult]) -> int:
    """0 all ok/skipped; 3 some failed or partial; 2 all failed with user errors; 1 all failed, some internally."""
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        return 3 if any(r.status == "partial" for r in results) else 0
    if len(failed) < len(results):
        return 3
    return 2 if all(r.error_type == "UserError" for r in failed) else 1


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``1 <= I <= N``; a one-line error otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UserError(f"--shard {text}: expected I/N with 1 <= I <= N, e.g. --shard 2/5 (SLURM: "
                        "--shard $SLURM_ARRAY_TASK_ID/5 with --array=1-5)")
    return int(m.group(1)), int(m.group(2))


def shard_of(key: str, n: int) -> int:
    """The 1-based shard of the input ``key`` among ``n``: its sha256, not its position in the list."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) % n + 1


def input_key(path: Path, root: Path, error: str | None = None) -> str:
    """An input's key: its path relative to ``root`` (posix); an input that could not be used keeps its text."""
    if error is not None:
        return str(path)
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def shard_header(keys: list[str], shard: tuple[int, int], assigned: int, combined_table: bool = False) -> dict:
    """The header line of a shard manifest: which shard, and the whole input set it is a share of."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return {"shard": shard[0], "of": shard[1], "inputs": len(keys), "inputs_sha256": digest, "assigned": assigned,
            "combined_table": bool(combined_table)}


@dataclass
class MergeReport:
    """What ``manifest merge`` found: the merged records, the shards missing, inputs not covered."""

    records: list[dict] = field(default_factory=list)
    shards: int = 0
    missing_shards: list[int] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)  # shards whose manifest is still .partial
    inputs: int = 0
    not_covered: int = 0
    combined_table: bool = False

    def summary(self) -> str:
        """One line: shards found and missing, inputs covered, and the statuses."""
        counts = {s: sum(r.get("status") == s for r in self.records) for s in ("ok", "skipped", "partial", "failed")}
        missing = f"; missing shards {', '.join(map(str, self.missing_shards))}" if self.missing_shards else ""
        unfinished = f"; unfinished shards {', '.join(map(str, self.unfinished))}" if self.unfinished else ""
        return (f"merged {self.shards - len(self.missing_shards)} of {self.shards} shards{missing}{unfinished}: "
                f"{len(self.records)} of {self.inputs} inputs ({self.not_covered} not covered); "
                + ", ".join(f"{k} {v}" for k, v in counts.items()))

    def exit_code(self) -> int:
        """predict's exit codes over the merged records; anything not covered makes it 3 (2 when nothing is)."""
        code = exit_code([ItemResult(**r) for r in self.records]) if self.records else 2
        return max(code, 3) if code in (0, 3) and (self.missing_shards or self.not_covered) else code

def _read(path: Path) -> tuple[dict, list[dict]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    try:
        header, records = json.loads(lines[0]), [json.loads(ln) for ln in lines[1:]]
    except (IndexError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a shard manifest (a JSON header line, then JSON records): {exc}") from None
    if not isinstance(header, dict) or "shard" not in header or "inputs_sha256" not in header:
        raise UserError(f"{path}: the first line is no shard header (shard, of, inputs, inputs_sha256)")
    return header, records


def merge_manifests(out_dir: Path) -> MergeReport:
    """Read every ``manifest.shard-I-of-N.jsonl`` in ``out_dir``; check they are shares of one input set."""
    out_dir = Path(out_dir)
    found = sorted(p for p in out_dir.glob("manifest.shard-*-of-*.jsonl") if _SHARD_NAME.match(p.name))
    partial = sorted(p for p in out_dir.glob("manifest.shard-*-of-*.jsonl.partial"))
    if not found and not partial:
        raise UserError(f"{out_dir}: holds no shard manifests (manifest.shard-I-of-N.jsonl from predict --shard I/N)")
    report = MergeReport()
    headers = {}
    for path in found:
        header, records = _read(path)
        headers[path] = header
        report.records += records
    ns = {int(_SHARD_NAME.match(p.name).group(2)) for p in found} | {
        int(p.name.split("-of-")[1].split(".")[0]) for p in partial}
    if len(ns) != 1:
        raise UserError(f"{out_dir}: shard manifests of different splits ({', '.join(f'of {n}' for n in sorted(ns))}); "
                        "merge the shards of one --shard I/N run")
    sets = {(h["inputs"], h["inputs_sha256"]) for h in headers.values()}
    if len(sets) > 1:
        raise UserError(f"{out_dir}: the shard manifests were made from different input sets (their inputs_sha256 "
                        "differ); run every shard with the same --input list")
    report.shards = ns.pop()
    present = {int(h["shard"]) for h in headers.values()}
    report.unfinished = sorted(int(p.name.split("shard-")[1].split("-of-")[0]) for p in partial)
    report.missing_shards = [i for i in range(1, report.shards + 1) if i not in present]
    report.inputs = next(iter(sets))[0] if sets else 0
    report.combined_table = any(h.get("combined_table") for h in headers.values())
    seen = {r["input"] for r in report.records}
    report.not_covered = max(report.inputs - len(seen), 0) if sets else 0
    return report


class ManifestWriter:
    """``manifest.jsonl`` (``manifest.shard-I-of-N.jsonl`` under a shard ``header``) of one batch: records are
    appended to ``<name>.partial`` as they come, then written at once, in input order, by :meth:`close`."""

    def __init__(self, out_dir: Path, header: dict | None = None, combined_table: bool = False):
        self.out_dir, self.header, self.combined_table = Path(out_dir), header, combined_table
        self.name = MANIFEST if header is None else SHARD_MANIFEST.format(i=header["shard"], n=header["of"])
        self.partial = self.out_dir / (self.name + ".partial")
        self.records: list[dict] = []
        self.partial.write_text("" if header is None else json.dumps(header) + "\n")

    def add(self, result: ItemResult) -> None:
        self.records.append(result.as_dict())
        with open(self.partial, "a") as fh:
            fh.write(json.dumps(result.as_dict()) + "\n")

    def close(self, order: list[str] | None = None) -> Path:
        """Write the manifest (records sorted to ``order``, the inputs' order, when given) and the combined table."""
        records = self.records
        if order is not None:
            rank = {name: k for k, name in enumerate(order)}
            records = sorted(records, key=lambda r: rank.get(r["input"], len(rank)))
        head = [] if self.header is None else [self.header]
        atomic_write_text(self.out_dir / self.name, "".join(json.dumps(r) + "\n" for r in head + records))
        self.partial.unlink(missing_ok=True)
        if self.combined_table and self.header is None:  # shards: `platform manifest merge` writes it
            write_combined_table(self.out_dir, records)
        return self.out_dir / self.name


def write_merged(out_dir: Path, report: MergeReport) -> Path:
    """``manifest.jsonl`` of the merged shards (atomically), and the combined table of tasks that have one."""
    path = Path(out_dir) / MANIFEST
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in report.records))
    if report.combined_table:
        write_combined_table(Path(out_dir), report.records)
    return path
