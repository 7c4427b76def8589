"""The subject of a study: a model, how it expects its pixels, and where it came from.

A :class:`Subject` is built once per command (or per notebook) and handed
down to every stage (OIP search, dataset examples, activations, the gallery).
It resolves the model's :class:`~oipscope.model.encoding.InputEncoding` once, and its
sub-models are cached by :mod:`oipscope.model.loading`, so compiled loops are reused.
Library functions also accept a bare Keras model: :func:`as_subject` wraps it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .encoding import InputEncoding, resolve_encoding
from .loading import (
    feature_submodel,
    flattened,
    image_input_shape,
    load_model,
    output_submodel,
    preactivation_submodel,
    with_input_size,
)

__all__ = ["Subject", "as_subject", "open_subject"]


@dataclass(frozen=True, eq=False)
class Subject:
    """A Keras model with its input encoding (and its file, when it has one).

    Attributes:
        model: the Keras model (one image input); one that nests models (a pretrained base
            inside a classifier) is :func:`~oipscope.model.loading.flattened`, so that their layers
            can be chosen.
        encoding: how pixels become its input.
        path: the model file, if loaded from one (its sha256 goes into results).
        input_size: ``(height, width)`` for a model that takes images of any size
            (:func:`~oipscope.model.loading.with_input_size`); None keeps the model's own (and a
            size a fixed-size model has already becomes None).
    """

    model: Any
    encoding: InputEncoding = field(default_factory=InputEncoding.standardize)
    path: Path | None = None
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        model = self.model
        if self.input_size is not None:
            size = tuple(int(side) for side in self.input_size)
            model = with_input_size(model, *size)
            # the size is part of what decides a run only where it changed the model
            object.__setattr__(self, "input_size", None if model is self.model else size)
        object.__setattr__(self, "model", flattened(model))  # nested models' layers become its own
        self.encoding.check_channels(self.input_shape[2])

    @property
    def name(self) -> str:
        return str(self.model.name)

    @cached_property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the model's image input."""
        return image_input_shape(self.model)

    @cached_property
    def model_hash(self) -> str | None:
        """sha256 of the model file, or None without a file."""
        if self.path is None:
            return None
        from ..files import file_sha256

        return file_sha256(self.path)

    def feature_submodel(self, layer_name: str):
        """Sub-model from the image input to a layer with feature maps (cached)."""
        return feature_submodel(self.model, layer_name)

    def output_submodel(self, layer_name: str, prefix: str = "out_"):
        """Sub-model from the image input to any layer's output (cached)."""
        return output_submodel(self.model, layer_name, prefix)

    def preactivation_submodel(self, layer_name: str):
        """Like :meth:`feature_submodel` with the layer's own activation left out, or None."""
        return preactivation_submodel(self.model, layer_name)

    def target_submodel(self, layer_name: str, objective="channel"):
        """The sub-model an objective climbs: the layer's output, or for class logits
        the layer before its activation (the pre-softmax output)."""
        from ..ascent.objective import parse_objective

        if parse_objective(objective).logits:
            pre = self.preactivation_submodel(layer_name)
            if pre is not None:
                return pre
        return self.feature_submodel(layer_name)

    def encode(self, pixels):
        """Pixels (0..255) → model input, with this subject's encoding."""
        return self.encoding.encode(pixels)


def as_subject(model_or_subject, encoding: InputEncoding | None = None,
               path: str | os.PathLike | None = None, input_size: tuple[int, int] | None = None) -> Subject:
    """A Subject as it is, or a Keras model wrapped with its resolved encoding (a model that
    nests models is :func:`~oipscope.model.loading.flattened` first, so its inner layers can be chosen;
    ``input_size`` fixes the size of a model that takes any)."""
    if isinstance(model_or_subject, Subject):
        return model_or_subject
    model = flattened(model_or_subject)  # nested models' layers become the model's own
    return Subject(model, resolve_encoding(model, encoding), Path(path) if path is not None else None, input_size)


def open_subject(path: str | os.PathLike, encoding: InputEncoding | None = None, *,
                 safe_mode: bool = True, input_size: tuple[int, int] | None = None) -> Subject:
    """Load a model file and resolve its encoding (given, from its layers, or assumed)."""
    return as_subject(load_model(path, safe_mode=safe_mode), encoding, path, input_size)
