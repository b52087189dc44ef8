"""Adapter spec strings: ``kind:key=value,...`` ⇄ typed (pydantic) specs, with one-line errors.

Grammar::

    spec     := kind [":" item ("," item)*]
    item     := key "=" value
    targets  := glob ("|" glob)*          (fnmatch globs over module names)

Several specs may be joined with ``;`` (``lora:r=8;bottleneck:dim=32``). Each kind defines a
:class:`AdapterSpec` subclass; its fields are the accepted keys, and each field's
``expect`` text is what a bad value's error message says was expected.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import UserError
from .registry import get_kind


def spec_field(default: Any, expect: str, **constraints) -> Any:
    """A spec field whose error message says ``<key>: expected <expect>``."""
    return Field(default, json_schema_extra={"expect": expect}, **constraints)


class AdapterSpec(BaseModel):
    """Base of every kind's spec: ``targets`` plus the kind's own keys (set ``kind``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str] = ""

    targets: tuple[str, ...] | None = spec_field(
        None, "module-name globs separated by '|', e.g. *.qkv|*.proj"
    )

    @field_validator("targets", mode="before")
    @classmethod
    def _split_targets(cls, value):
        if isinstance(value, str):
            value = value.split("|")
        if value is None:
            return None
        value = tuple(str(v).strip() for v in value)
        if not value or any(not v for v in value):
            raise ValueError("empty glob")
        return value

    def to_string(self) -> str:
        """Canonical spec string (every set key, in field order; targets last if set); parses back."""
        items = []
        for name in type(self).model_fields:
            if name == "targets" or getattr(self, name) is None:
                continue
            items.append(f"{name}={_fmt(getattr(self, name))}")
        if self.targets:
            items.append("targets=" + "|".join(self.targets))
        return self.kind + (":" + ",".join(items) if items else "")

    def without_targets(self) -> "AdapterSpec":
        return self.model_copy(update={"targets": None})

    def with_targets(self, targets) -> "AdapterSpec":
        return self.model_copy(update={"targets": tuple(targets)})

    def __str__(self) -> str:
        return self.to_string()


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "|".join(map(str, value))
    return str(value)


def _expect(spec_cls: type[AdapterSpec], name: str) -> str:
    info = spec_cls.model_fields.get(name)
    extra = (info.json_schema_extra if info is not None else None) or {}
    return extra.get("expect", "a valid value") if isinstance(extra, dict) else "a valid value"


def build_spec(spec_cls: type[AdapterSpec], values: dict[str, Any], where: str) -> AdapterSpec:
    """Validate ``values`` into ``spec_cls``; any problem is a one-line UserError prefixed ``where``."""
    keys = [k for k in spec_cls.model_fields]
    for key in values:
        if key not in spec_cls.model_fields:
            raise UserError(f"{where}: unknown key {key!r}; expected one of {', '.join(keys)}")
    try:
        return spec_cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err.get("loc") else "?"
        got = values.get(key, err.get("input"))
        raise UserError(f"{where}: {key}: expected {_expect(spec_cls, key)}, got {got!r}") from None


def parse_one(text: str) -> AdapterSpec:
    """Parse one ``kind:key=value,...`` string."""
    where = f"adapter spec {text!r}"
    text = text.strip()
    if not text:
        raise UserError("adapter spec '': expected 'kind:key=value,...', e.g. 'lora:r=8'")
    kind_name, _, rest = text.partition(":")
    kind_name = kind_name.strip()
    try:
        kind = get_kind(kind_name)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    values: dict[str, str] = {}
    for item in filter(None, (i.strip() for i in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserError(f"{where}: {item!r}: expected key=value")
        if key in values:
            raise UserError(f"{where}: key {key!r} given twice")
        values[key] = value.strip()
    return build_spec(kind.Spec, values, where)


def parse_specs(spec: Any) -> list[AdapterSpec]:
    """Turn a spec string (``;``-separated for several), a typed spec, or a list of them into specs."""
    if isinstance(spec, AdapterSpec):
        return [spec]
    if isinstance(spec, str):
        parts = [p for p in (s.strip() for s in spec.split(";")) if p]
        if not parts:
            raise UserError("adapter spec '': expected 'kind:key=value,...', e.g. 'lora:r=8'")
        return [parse_one(p) for p in parts]
    if isinstance(spec, (list, tuple)):
        return [s for item in spec for s in parse_specs(item)]
    raise UserError(f"adapter spec: expected a string like 'lora:r=8' or a typed spec, got {type(spec).__name__}")
