"""Series selection rules: which DICOM series of a study is t1, t1ce, t2 or flair.

The rules are a YAML file (the shipped default is ``dicom_rules.yaml`` next to this module; its
comments explain the format): per sequence, ``match`` and ``exclude`` regular expressions over
SeriesDescription and ProtocolName, plus global ``ignore`` patterns and ``ignore_image_types``.
:func:`choose_series` applies them and refuses ambiguity as one line naming the series.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sigplex.core.errors import UserError
from sigplex.datasets.dicom import Series
from sigplex.datasets.nifti import MODALITIES

DEFAULT_RULES = Path(__file__).with_name("dicom_rules.yaml")


@dataclass(frozen=True)
class Rules:
    path: Path
    sha256: str
    ignore: tuple[re.Pattern, ...]
    ignore_image_types: tuple[str, ...]
    match: dict  # sequence -> tuple of patterns
    exclude: dict  # sequence -> tuple of patterns


def _patterns(values, path: Path, key: str) -> tuple[re.Pattern, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UserError(f"{path}: {key}: expected a list of regular expressions (strings)")
    out = []
    for v in values:
        try:
            out.append(re.compile(v, re.IGNORECASE))
        except re.error as exc:
            raise UserError(f"{path}: {key}: {v!r} is not a valid regular expression ({exc})") from None
    return tuple(out)


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and check a rules file (None: the shipped defaults); mistakes are one line naming the key."""
    import yaml

    path = Path(path) if path else DEFAULT_RULES
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise UserError(f"data.dicom_rules {path}: cannot read the rules file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sequences"), dict):
        raise UserError(f"{path}: expected a mapping with 'sequences' (t1, t1ce, t2, flair)")
    unknown = sorted(set(data["sequences"]) - set(MODALITIES))
    if unknown:
        raise UserError(f"{path}: sequences: unknown {', '.join(map(str, unknown))}; expected t1, t1ce, t2, flair")
    match, exclude = {}, {}
    for seq in MODALITIES:
        entry = data["sequences"].get(seq) or {}
        if not isinstance(entry, dict):
            raise UserError(f"{path}: sequences.{seq}: expected a mapping with 'match' and 'exclude'")
        match[seq] = _patterns(entry.get("match"), path, f"sequences.{seq}.match")
        exclude[seq] = _patterns(entry.get("exclude"), path, f"sequences.{seq}.exclude")
        if not match[seq]:
            raise UserError(f"{path}: sequences.{seq}.match: expected at least one pattern")
    types = data.get("ignore_image_types") or []
    if not isinstance(types, list):
        raise UserError(f"{path}: ignore_image_types: expected a list of ImageType values")
    return Rules(path, hashlib.sha256(text.encode()).hexdigest(), _patterns(data.get("ignore"), path, "ignore"),
                 tuple(str(t).upper() for t in types), match, exclude)


def _hit(patterns, texts) -> bool:
    return any(p.search(t) for p in patterns for t in texts if t)


def candidates(series: Series, rules: Rules) -> list[str]:
    """The sequences whose rules ``series`` satisfies (usually zero or one)."""
    if series.modality != "MR" or set(v.upper() for v in series.image_type) & set(rules.ignore_image_types):
        return []
    texts = (series.description, series.protocol)
    if _hit(rules.ignore, texts):
        return []
    return [seq for seq in MODALITIES if _hit(rules.match[seq], texts) and not _hit(rules.exclude[seq], texts)]


def choose_series(study: Path, series: list[Series], rules: Rules) -> dict[str, Series | None]:
    """``{sequence: Series or None}``; a sequence with two candidates or a series fitting two sequences is an error."""
    found: dict[str, list[Series]] = {seq: [] for seq in MODALITIES}
    for s in series:
        seqs = candidates(s, rules)
        if len(seqs) > 1:
            raise UserError(f"{study}: ambiguous series: {s.label()} fits {' and '.join(seqs)} under the rules in "
                            f"{rules.path}; edit the rules (data.dicom_rules) so that it fits one")
        if seqs:
            found[seqs[0]].append(s)
    for seq, hits in found.items():
        if len(hits) > 1:
            raise UserError(f"{study}: ambiguous series for {seq}: {', '.join(h.label() for h in hits)} all fit "
                            f"the rules in {rules.path}; edit the rules (data.dicom_rules) so that one fits")
    return {seq: (hits[0] if hits else None) for seq, hits in found.items()}


def describe_found(series: list[Series], limit: int = 12) -> str:
    """The study's series in one line, for 'missing' messages."""
    shown = [s.label() for s in series[:limit]]
    more = f" and {len(series) - limit} more" if len(series) > limit else ""
    return ", ".join(shown) + more if shown else "none"
