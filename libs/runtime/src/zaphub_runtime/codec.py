"""Encoding of bus payloads: pydantic models to JSON bytes and back."""

from typing import TypeVar

from pydantic import BaseModel

__all__ = ["decode", "encode"]

M = TypeVar("M", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=False).encode()


def decode(model: type[M], raw: bytes) -> M:
    return model.model_validate_json(raw)
