"""What evaluation and serving need from a pipeline, as typed protocols (structural: no base class to inherit).

:class:`lvg.Pipeline`, :class:`~lvg.pipelines.diffusion.PeerDiffusionPipeline` and test doubles satisfy them by
shape. A text -> image pipeline is called as ``pipe(prompts, config=GenerationConfig(...), seeds=..., batch_size=...)``
(the config's fields may also come as keyword arguments) and returns an object with ``images``, ``prompts`` and
``seeds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from lvg.sampling.config import GenerationConfig


class GenerationOutput(Protocol):
    """The result of a text -> image call: image ``j`` with its prompt and the seed that reproduces it."""

    images: list[Image.Image]
    prompts: list[str]
    seeds: list[int]
    unsupported: list[str | None]  # why a prompt drawn with allow_unsupported was refused (empty: no analysis)


@runtime_checkable
class TextToImagePipeline(Protocol):
    """``pipe(prompts, config=..., seeds=..., batch_size=..., **settings) -> GenerationOutput``."""

    def __call__(self, prompt: str | list[str], config: GenerationConfig | None = None, *,
                 seeds: list[int] | None = None, batch_size: int = 32, **settings: Any) -> GenerationOutput: ...  # fmt: skip


@runtime_checkable
class CaptioningPipeline(Protocol):
    """``pipe.caption(images, lang=..., num_beams=...) -> caption(s)`` in the canonical grammar of ``lang``."""

    def caption(self, image: Any, lang: str = "en", num_beams: int = 1) -> str | list[str]: ...


class UnifiedPipeline(TextToImagePipeline, CaptioningPipeline, Protocol):
    """Both directions, plus the parts the extended report measures (``image_tokenizer``, optional ``clip``)."""

    image_tokenizer: Any
    clip: Any


__all__ = ["CaptioningPipeline", "GenerationOutput", "TextToImagePipeline", "UnifiedPipeline"]
