"""How a message's dataclass fields travel in msgpack and come back as the types the class declares.

msgpack knows maps, lists and scalars: enums go as their values and come back as the enum, tuples go
as lists and come back as tuples, and a ModelInfo goes as a map. Each class's field names and enum
fields are read once (typing.get_type_hints is slow) and kept.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any

from npu_worker.backend import ModelInfo


@dataclass(frozen=True)
class FieldSchema:
    """A message class's field names and which of them hold enums (read once per class)."""

    names: tuple[str, ...]
    enums: dict[str, type[Enum]]


SCHEMAS: dict[type, FieldSchema] = {}


def schema_of(cls: type) -> FieldSchema:
    schema = SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        enums = {n: t for n, t in hints.items() if isinstance(t, type) and issubclass(t, Enum)}
        schema = SCHEMAS[cls] = FieldSchema(tuple(f.name for f in dataclasses.fields(cls)), enums)
    return schema


def field_names(cls: type) -> tuple[str, ...]:
    return schema_of(cls).names


def typed(cls: type, name: str, value: Any) -> Any:
    """`value` of field `name` as the class declares it: enums from their values, tuples from lists."""
    enum = schema_of(cls).enums.get(name)
    if enum is not None:
        return enum(value)
    return tuple(value) if isinstance(value, list) else value


def model_to_wire(info: ModelInfo) -> dict[str, Any]:
    data = dataclasses.asdict(info)
    data["capabilities"] = sorted(info.capabilities)
    return data


def model_from_wire(data: dict[str, Any]) -> ModelInfo:
    image_size = data.get("image_size")
    return ModelInfo(
        **{
            **data,
            "capabilities": frozenset(data.get("capabilities", ())),
            "image_size": tuple(image_size) if image_size else None,
        }
    )
