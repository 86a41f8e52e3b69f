"""The FastAPI app of ``lvg serve``: OpenAI-compatible image generation, captioning, health and metrics.

The contract (shared with the web page in ``static/``) is ``docs/serve-api.md``. (No ``from __future__ import
annotations`` here: FastAPI reads the handlers' annotations at runtime, and one names a per-app model.)
"""

import asyncio
import base64
import copy
import dataclasses
import io
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from lvg import __version__
from lvg.pipelines import load_pipeline as _load_any_pipeline
from lvg.pipelines.planned import PlannedPipeline, UnsupportedPromptError
from lvg.ranges import bounded, check_ranges
from lvg.resources import DEFAULT_MODEL_NAME
from lvg.sampling.config import (
    FIELDS,
    MAX_IMAGES_PER_PROMPT,
    MAX_SEED,
    RANGES,
    SAMPLING_FIELDS,
    GenerationConfig,
    api_name,
    check_seed_span,
    check_seeds,
)
from lvg.serve.auth import ApiKeys, RateLimiter
from lvg.serve.batching import (
    Batcher,
    CaptionKey,
    ClientDisconnected,
    DeadlineExceeded,
    EditJob,
    EditKey,
    GenerationJob,
    JobDropped,
    ModelKey,
    PipelineRunner,
    QueueFullError,
)
from lvg.serve.errors import ErrorResponse, error_response
from lvg.serve.metrics import ServeMetrics
from lvg.serve.middleware import LOG_KEY, ServeMiddleware
from lvg.serve.safety import PromptFilter
from lvg.serve.uploads import ALLOWED_TYPES, ImageRejected, decode_image

logger = logging.getLogger("lvg.serve")
STATIC_DIR = Path(__file__).resolve().parent / "static"
SIZES = ("64x64", "96x96", "128x128", "192x192", "256x256", "384x384", "512x512")  # the canvas or an upscale
MAX_PROMPT_CHARS = 4000  # a cheap bound before tokenizing; the real limit is in tokens
# GenerationConfig's fields this API takes: n (num_images), seed and the sampling settings (reranking and verify
# need components a served model may lack, and are not part of the API)
SERVED_FIELDS = tuple(f for f in FIELDS if f in ("num_images", "seed", *SAMPLING_FIELDS))
FAILED_LOAD = "not ready: the model failed to load (the server log says why)"
# a served model's name: the API's "model" and a path segment of /v1/models/{model}
MODEL_NAME = re.compile(r"\w[\w.:@+-]{0,127}")


def check_model_name(name: Any) -> str:
    """``name`` when it can name a served model, else a ValueError saying what a name may hold."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise ValueError(f"model name {name!r} must be 1 to 128 letters, digits or . _ - : + @, starting with a "
                         f"letter, digit or _")  # fmt: skip
    return name


def model_name_of(folder: str | os.PathLike | None) -> str:
    """The name a model folder is served under when none is given: the folder's own name (characters a name cannot
    hold become ``-``), or ``shapes-default`` for the shipped default model (None)."""
    if folder is None:
        return DEFAULT_MODEL_NAME
    name = re.sub(r"[^\w.:@+-]+", "-", Path(os.path.abspath(folder)).name).strip(".:@+-")[:128]
    return name or "model"


@dataclass
class ServeSettings:
    """Settings of one server (``lvg serve`` flags map onto these).

    The served models are ``models`` (name -> folder, None: the shipped default; the first is the default model of a
    request that names none), or ``model_dir`` alone: one model, named after its folder (:func:`model_name_of`).
    After construction ``models`` always holds them all and ``model_dir`` is the default model's folder.
    ``adapters`` (name -> an adapter folder, or a list of them: a planner adapter and a painter adapter) are served
    as models too, each on the served model whose planner and painter its folders were trained on."""

    model_dir: str | os.PathLike | None = None  # None: the shipped default model
    models: Mapping[str, str | os.PathLike | None] | None = None  # name -> folder; None: {name of model_dir: model_dir}
    # name -> an adapter folder or a list of them (planner and painter adapters, applied together); None: none
    adapters: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]] | None = None
    host: str = "127.0.0.1"
    port: int = bounded(0, 65535, default=8000)
    api_keys_file: str | os.PathLike | None = None  # None: no auth
    max_batch_size: int = bounded(1, None, default=16)  # images per pipeline call
    max_wait_ms: float = bounded(0.0, None, default=20)  # how long a request may wait for others to share its call
    queue_size: int = bounded(1, None, default=64)  # images waiting; beyond it, 429
    request_timeout_s: float = bounded(0.0, None, lo_open=True, default=60.0)
    # a request's headers must arrive within this; then 408 and the connection closes
    header_timeout_s: float = bounded(0.0, None, lo_open=True, default=10.0)
    body_timeout_s: float = bounded(0.0, None, lo_open=True, default=30.0)  # and its body within this; then 408
    max_images_per_request: int = bounded(1, MAX_IMAGES_PER_PROMPT, default=8)
    max_body_bytes: int = bounded(1, None, default=1_000_000)
    max_upload_bytes: int = bounded(1, None, default=2_000_000)
    max_upload_pixels: int = bounded(1, None, default=4_000_000)
    rate_limit_per_minute: int = bounded(0, None, note="0 turns it off", default=120)  # per API key
    blocklist_files: Sequence[str | os.PathLike] | None = None  # None: the shipped EN + ZH lists
    log_prompts: bool = False
    batching: bool = True
    # torch threads for the whole process (lvg.serve.server.serve sets them). 1 by default: measured on a shared
    # 2-core CPU under load, n=2 calls took 0.19-0.23 s with 1 thread and 1.5-8.5 s with 2 (a multi-threaded op
    # waits for its slowest thread, and a busy core stalls it); concurrency comes from batching requests instead.
    threads: int = bounded(1, 1024, default=1)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.models is not None:
            self._check_models()
        else:
            self.models = {model_name_of(self.model_dir): self.model_dir}
        if not isinstance(self.adapters, Mapping | None):
            raise ValueError("adapters must map adapter names to their folders")
        adapters = {check_model_name(name): folder for name, folder in (self.adapters or {}).items()}
        for name, folder in adapters.items():
            folders = folder if isinstance(folder, list | tuple) else [folder]
            if not folders or not all(isinstance(f, str | os.PathLike) for f in folders):
                raise ValueError(f"adapters[{name!r}] must be an adapter folder or a list of them, got {folder!r}")
            if name in self.models:
                raise ValueError(f"the adapter {name!r} has the name of a served model: name it differently")
        self.adapters = adapters

    def _check_models(self) -> None:
        if not isinstance(self.models, Mapping) or not self.models:
            raise ValueError("models must map at least one model name to its folder")
        models = {check_model_name(name): folder for name, folder in self.models.items()}
        for name, folder in models.items():
            if folder is not None and not isinstance(folder, str | os.PathLike):
                raise ValueError(f"models[{name!r}] must be a model folder or None (the shipped model), got {folder!r}")
        first = next(iter(models.values()))
        if self.model_dir is not None and (first is None or Path(self.model_dir) != Path(first)):
            raise ValueError("give model_dir (one model) or models (several), not both")
        self.models, self.model_dir = models, first


# ---------------------------------------------------------------------- API models


class ImageGenerationRequest(BaseModel):
    """OpenAI Images API request, plus lvg's sampling fields (added by :func:`generation_request_model` from
    :class:`~lvg.sampling.GenerationConfig`'s fields: their names, bounds and help are declared there once).
    Types are strict: ``"n": "2"`` and ``"n": true`` are 422, not coerced (an integer is still a valid float)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="English or Chinese prompt")
    response_format: Literal["b64_json"] = Field("b64_json", description="only base64 PNG is supported")
    size: Literal[SIZES] | None = Field(
        None, description="the model's canvas (null: as generated, 64x64 for Shapes World) or an integer upscale of it"
    )
    model: str | None = Field(
        None, description="the model to use: an id from GET /v1/models (null: the default model, the first listed)"
    )
    user: str | None = Field(None, description="ignored (OpenAI compatibility)")
    allow_unsupported: bool = Field(
        False,
        description="a prompt the model refuses (outside its world, too many objects, a contradiction, zero objects) "
        "is a 422 naming the reason (code unsupported_prompt); true draws a best effort instead",
    )
    # not a field of this API (image j uses seed + j); refused rather than silently ignored
    seeds: SkipJsonSchema[Any] = Field(None, exclude=True)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt must not be blank")
        return v

    @field_validator("seeds")
    @classmethod
    def _no_seeds_list(cls, v: Any) -> None:
        if v is not None:
            check_seeds(v)  # names the first bad item (seeds[0] must be an integer in [0, ...])
            raise ValueError("per-image seeds are not part of this API: send seed (image j uses seed + j)")
        return None

    @field_validator("seed", check_fields=False)  # (seed and n are added by generation_request_model)
    @classmethod
    def _seeds_handed_out_are_valid(cls, v: int | None, info: ValidationInfo) -> int | None:
        n = info.data.get("n")
        if v is not None and isinstance(n, int):  # every seed handed out (seed + j) must be one the API accepts
            check_seed_span(v, n)
        return v

    @model_validator(mode="after")
    def _valid_generation_config(self) -> "ImageGenerationRequest":
        self.generation_config()  # the one set of rules (GenerationConfigError is a ValueError: a 422)
        return self

    def generation_config(self, base: GenerationConfig | None = None) -> GenerationConfig:
        """The request's sampling settings (``n`` images, its ``seed``) as a :class:`~lvg.sampling.GenerationConfig`,
        over ``base`` (the served model's own defaults) for the fields the request leaves null."""
        given = {k: getattr(self, api_name(k)) for k in SERVED_FIELDS if getattr(self, api_name(k)) is not None}
        return GenerationConfig.from_kwargs(base, allow_unsupported=self.allow_unsupported, **given)


def _generation_fields(max_images: int) -> dict[str, Any]:
    """The request's :class:`~lvg.sampling.GenerationConfig` fields, as pydantic ``(type, Field)`` pairs: ``n``
    bounded by ``max_images``, ``seed``, and the sampling settings (null: the served model's own)."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(GenerationConfig):
        if f.name not in SERVED_FIELDS:
            continue
        rng, text = RANGES[f.name], f.metadata.get("help", "")
        if f.name == "num_images":
            fields[api_name(f.name)] = (int, Field(1, ge=1, le=max_images, description=f"{text} (1..{max_images})"))
            continue
        tp = int if rng.integer else float
        extra = {} if rng.integer else {"allow_inf_nan": False}
        note = "null: random" if f.name == "seed" else "null: the model's own"
        fields[api_name(f.name)] = (tp | None, Field(None, **rng.pydantic(), **extra, description=f"{text} ({note})"))
    return fields


def generation_request_model(max_images: int) -> type[ImageGenerationRequest]:
    """The request model, with :class:`~lvg.sampling.GenerationConfig`'s served fields and ``n`` bounded by this
    server's ``max_images_per_request``."""
    return create_model("ImageGenerationRequest", __base__=ImageGenerationRequest, **_generation_fields(max_images))


class ImageData(BaseModel):
    b64_json: str = Field(description="PNG, base64")
    seed: int = Field(description="the seed that reproduces this image")
    seed_string: str = Field(
        description="the same seed as decimal digits: exact in JavaScript, whose numbers round seeds above 2**53"
    )


class ImagesResponse(BaseModel):
    created: int = Field(description="Unix time, seconds")
    data: list[ImageData]


class CaptionResponse(BaseModel):
    caption: str
    lang: str


class ModelInfo(BaseModel):
    """One served model, as OpenAI's Models API describes a model."""

    id: str = Field(description="the name requests give as model")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time, seconds (when this server started)")
    owned_by: str = "lvg"
    parent: str | None = Field(
        None, description="an adapter's base: the served model it adapts (null: a base model, or an adapter not loaded)"
    )
    adapts: list[str] | None = Field(
        None,
        description="an adapter's components: some of planner, painter, gan painter (null: a base model, or an "
        "adapter not loaded)",
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo] = Field(description="every served model; the first is the default")


class ApiError(Exception):
    """An error response raised from a handler."""

    def __init__(self, status: int, message: str, type_: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.headers = status, message, type_, param, headers
        self.code = code


def unknown_model(name: str) -> ApiError:
    """The 404 for a model this server does not serve (OpenAI's shape and code)."""
    return ApiError(404, f"the model {name!r} does not exist; GET /v1/models lists the served models",
                    "invalid_request_error", param="model", code="model_not_found")  # fmt: skip


def _field_error(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message}])


def _field_name(loc: Sequence[Any]) -> str:
    """``("body", "n")`` -> ``"n"``; a JSON syntax error (``("body", 12)``) -> ``"body"``."""
    if len(loc) > 1 and loc[0] in ("body", "query", "path", "header", "cookie") and isinstance(loc[1], str):
        return ".".join(str(x) for x in loc[1:])
    return str(loc[0]) if loc else "body"


def load_pipeline(model_dir: str | os.PathLike | None) -> Any:
    """Load the pipeline the model folder declares (module-level so tests can replace it)."""
    return _load_any_pipeline(model_dir)


# ---------------------------------------------------------------------- state


@dataclass(eq=False)
class ServedModel:
    """One served model: its pipeline once loaded (with its runner, and a copy of its tokenizer for the event loop:
    the worker thread uses the original), or why it failed to load. An adapter (``folder``: its adapter folder, or a
    list of them) is served on ``parent``, the served model whose planner and painter it was trained on, once
    found."""

    name: str
    folder: str | os.PathLike | Sequence[str | os.PathLike] | None
    pipeline: Any = None
    runner: PipelineRunner | None = None
    tokenizer: Any = None
    load_error: str | None = None
    adapter: bool = False
    parent: str | None = None
    adapts: list[str] | None = None  # an adapter's components, once loaded (planner, painter, gan painter)

    def prompt_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])


class ServeState:
    """Everything one app shares between requests: the served models, one batch queue and worker for all of them."""

    def __init__(
        self, settings: ServeSettings, pipeline: Any = None, pipelines: Mapping[str, Any] | None = None
    ) -> None:
        if pipelines is not None:
            if pipeline is not None or not pipelines:
                raise ValueError("give pipeline (the default model's) or pipelines (at least one), not both")
            settings = dataclasses.replace(settings, model_dir=None,
                                           models={n: settings.models.get(n) for n in pipelines})  # fmt: skip
        self.settings = settings
        self.metrics = ServeMetrics()
        self.keys = ApiKeys.from_file(settings.api_keys_file) if settings.api_keys_file is not None else None
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.prompt_filter = PromptFilter.from_files(settings.blocklist_files)
        self.batcher = Batcher(self._run_batch, max_batch_size=settings.max_batch_size,
                               max_wait_s=settings.max_wait_ms / 1000, queue_size=settings.queue_size,
                               batching=settings.batching, on_depth=self.metrics.queue_depth.set,
                               on_batch=self._on_batch)  # fmt: skip
        self.models = {name: ServedModel(name, folder) for name, folder in settings.models.items()}
        self.models.update(
            {name: ServedModel(name, folder, adapter=True) for name, folder in settings.adapters.items()}
        )
        self.default_model = next(iter(self.models))
        self.created = int(time.time())
        self._loader: threading.Thread | None = None
        self.draining = False
        for name in self.models:
            self.metrics.model_ready.labels(model=name).set(0)
        ready = pipelines if pipelines is not None else {} if pipeline is None else {self.default_model: pipeline}
        for name, pipe in ready.items():
            self.set_pipeline(pipe, name)

    @property
    def pipeline(self) -> Any:
        """The default model's pipeline (None until it is loaded)."""
        return self.models[self.default_model].pipeline

    @property
    def load_error(self) -> str | None:
        """Why the first model that failed to load failed, or None."""
        return next((m.load_error for m in self.models.values() if m.load_error), None)

    def set_pipeline(self, pipeline: Any, model: str | None = None) -> None:
        """Serve ``pipeline`` as ``model`` (default: the default model)."""
        served = self.models[self.default_model if model is None else model]
        served.runner = PipelineRunner(pipeline, batch_size=self.settings.max_batch_size)
        served.tokenizer = copy.deepcopy(pipeline.text_tokenizer)
        served.load_error = None
        served.pipeline = pipeline
        self.metrics.model_ready.labels(model=served.name).set(1)

    def start_loading(self) -> None:
        """Load the models not yet loaded (once), in order on a daemon thread, a folder served under several names
        once; readiness turns 200 when all are loaded. A model that fails to load leaves the others serving."""
        todo = [m for m in self.models.values() if m.pipeline is None]
        if not todo or (self._loader is not None and self._loader.is_alive()):
            return

        def load() -> None:
            loaded: dict[str | None, Any] = {}  # real path (None: the shipped model) -> its pipeline
            hashes: dict[tuple[str, str], str] = {}  # (served model, planner|painter) -> SHA-256, once
            for served in todo:  # the models first, then the adapters (self.models' order)
                try:
                    if served.adapter:
                        self.set_pipeline(self._adapted(served, hashes), served.name)
                    else:
                        where = None if served.folder is None else os.path.realpath(served.folder)
                        if where not in loaded:
                            loaded[where] = load_pipeline(served.folder)
                        self.set_pipeline(loaded[where], served.name)
                except Exception as e:  # reported by /readyz and the log; the server stays up, this model not ready
                    served.load_error = f"{type(e).__name__}: {e}"
                    logger.error("cannot load the model %s: %s", served.name, served.load_error)
                    continue
                logger.info("model %s loaded", served.name)
            if all(m.pipeline is not None for m in self.models.values()):
                logger.info("all models loaded; ready")

        for served in todo:
            served.load_error = None
        self._loader = threading.Thread(target=load, name="lvg-load", daemon=True)
        self._loader.start()

    def _adapted(self, served: ServedModel, hashes: dict[tuple[str, str], str]) -> Any:
        """The pipeline of the adapter ``served``: a shallow copy of the loaded model whose planner (and painter) its
        folders were trained on (found by their weights' SHA-256), with each adapter applied to the copy only
        (:meth:`~lvg.pipelines.planned.PlannedPipeline.load_adapter`: a new planner or painter); the rest stays
        shared with that model, which is unchanged. Sets ``served.parent``."""
        from lvg.models.adapter_files import ADAPTER_META, adapter_json, weights_sha256

        folders = list(served.folder) if isinstance(served.folder, list | tuple) else [served.folder]
        wants = []  # (the component it adapts, its base's SHA-256)
        for folder in folders:
            meta = adapter_json(folder)
            if meta is None:
                raise FileNotFoundError(f"{folder} is not an lvg adapter folder (no {ADAPTER_META})")
            role = meta.get("role")
            wants.append((role if role in PlannedPipeline.painter_roles else "planner", meta.get("base_sha256")))
        if len({part for part, _ in wants}) != len(wants):
            raise ValueError(f"the adapter {served.name} has two folders for one component "
                             f"({', '.join(map(str, folders))}): at most one adapter per planner, painter and GAN "
                             "painter")  # fmt: skip

        def sha(base: ServedModel, part: str) -> str | None:
            if (base.name, part) not in hashes:
                p = base.pipeline
                module = p.planner.lm if part == "planner" else p.painter_of(p.painter_roles[part])  # as load_adapter
                hashes[(base.name, part)] = None if module is None else weights_sha256(module)
            return hashes[(base.name, part)]

        for base in self.models.values():
            if base.adapter or base.pipeline is None or not hasattr(base.pipeline, "load_adapter"):
                continue
            if all(want is not None and sha(base, part) == want for part, want in wants):
                break
        else:
            what = " and ".join(sorted({part for part, _ in wants}))
            raise ValueError(f"no served model has the {what} the adapter {served.name} "
                             f"({', '.join(map(str, folders))}) was trained on: serve that model too (--model NAME=DIR)")  # fmt: skip
        # a shallow copy: load_adapter replaces only the copy's planner or painter (a warning names labels the
        # painter cannot paint); a painter adapter's model paints with the painter it adapts
        kind = base.pipeline.painter_of_adapters(folders)
        pipeline = copy.copy(base.pipeline if kind is None else base.pipeline.use_painter(kind)).load_adapter(*folders)
        served.parent, served.adapts = base.name, sorted(part for part, _ in wants)
        return pipeline

    def begin_drain(self) -> None:
        """Refuse new requests (503); those in flight finish."""
        self.draining = True

    def _run_batch(self, key: Any, payloads: list[Any]) -> list[Any]:  # on the worker thread
        served = self.models.get(key.model) if isinstance(key, ModelKey) else None
        if served is None or served.runner is None:
            raise RuntimeError("the model is not loaded")
        return served.runner(key.key, payloads)

    def _on_batch(self, key: Any, images: int) -> None:
        self.metrics.batch_size.observe(images)
        if isinstance(key, ModelKey) and isinstance(key.key, GenerationConfig):
            self.metrics.images.inc(images)
            self.metrics.model_images.labels(model=key.model).inc(images)

    def ready_or_raise(self, model: str | None = None) -> ServedModel:
        """The served model ``model`` (None: the default) when it can take a request; else 503 (draining, loading or
        failed to load) or 404 (no such model)."""
        if self.draining:
            raise ApiError(503, "the server is shutting down", headers={"Retry-After": "5"})
        served = self.models.get(self.default_model if model is None else model)
        if served is None:
            raise unknown_model(model or "")
        if served.pipeline is None:
            why = "the model failed to load" if served.load_error else "the model is still loading"
            raise ApiError(503, why, headers={"Retry-After": "5"})
        return served

    def model_info(self, served: ServedModel) -> ModelInfo:
        return ModelInfo(id=served.name, created=self.created, parent=served.parent, adapts=served.adapts)

    async def run(self, request: Request, key: Any, cost: int, payload: Any) -> Any:
        """Queue one job and wait for it, mapping queue outcomes to HTTP errors."""
        try:
            job = self.batcher.submit(key, cost, payload, self.settings.request_timeout_s)
        except QueueFullError as e:
            raise ApiError(429, "the server is busy: the queue is full", "queue_full",
                           headers={"Retry-After": str(e.retry_after)}) from None  # fmt: skip
        try:
            return await self.batcher.wait(job, request.is_disconnected)
        except DeadlineExceeded:
            raise ApiError(504, f"the request did not finish within {self.settings.request_timeout_s:g} s") from None
        except ClientDisconnected:
            raise ApiError(499, "the client disconnected") from None
        except JobDropped:
            raise ApiError(503, "the server is shutting down", headers={"Retry-After": "5"}) from None
        except UnsupportedPromptError as e:  # the planner refused the prompt: OpenAI's error shape, with the reason
            raise ApiError(422, str(e), "invalid_request_error", param="prompt", code="unsupported_prompt") from None
        except ValueError as e:  # the pipeline refused the input
            raise ApiError(422, str(e)) from None


def _png_b64(image: Image.Image, side: int) -> str:
    if image.size != (side, side):
        image = image.resize((side, side), Image.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------------- app


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorResponse} for c in codes}


def create_app(settings: ServeSettings | None = None, pipeline: Any = None,
               pipelines: Mapping[str, Any] | None = None) -> FastAPI:  # fmt: skip
    """The app. ``pipeline``: the default model's, already built; ``pipelines``: name -> pipeline, already built, the
    served models then (the first is the default; the folders in ``settings.models`` are not read). Models not given
    load in the background at startup (``/readyz`` 503 until all are loaded)."""
    settings = settings if settings is not None else ServeSettings()
    state = ServeState(settings, pipeline, pipelines)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.draining = False
        state.batcher.start()
        state.start_loading()
        try:
            yield
        finally:
            state.begin_drain()
            await state.batcher.stop()

    app = FastAPI(
        title="lvg",
        version=__version__,
        description="Text -> image and image -> caption with one unified causal LM. Image generation follows the "
        "OpenAI Images API (`b64_json` only) plus lvg's sampling fields.",
        docs_url=None,  # the CDN-based pages would not work offline; /openapi.json stays
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.lvg = state
    app.add_middleware(ServeMiddleware, state=state)
    _add_exception_handlers(app)
    _add_routes(app, state)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    return app


def _add_exception_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.type, exc.headers, exc.param, code=exc.code)

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # no "input" in the details: it may hold the prompt
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        parts = [f"{_field_name(d['loc'])}: {d['msg']}" for d in details]
        param = _field_name(details[0]["loc"]) if details else None
        return error_response(422, "; ".join(parts) or "invalid request", param=param, detail=details)

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        logger.error("internal error on %s %s: %r", request.method, request.url.path, exc)
        return error_response(500, "internal server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)


def _add_routes(app: FastAPI, state: ServeState) -> None:
    settings = state.settings  # (create_app's own, or the one naming the models given as pipelines)

    async def read_upload(upload: UploadFile, param: str) -> Any:
        """An uploaded image, decoded within the server's limits: 415 for a type it does not take, 413 above the byte
        limit, 422 for bytes that do not decode or exceed the pixel limit (``param``: the form field, in errors)."""
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        if ctype not in ALLOWED_TYPES:
            raise ApiError(415, f"unsupported image type {ctype or 'none'!r}; send one of {', '.join(ALLOWED_TYPES)}",
                           param=param)  # fmt: skip
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise ApiError(413, f"the image is larger than {settings.max_upload_bytes} bytes", param=param)
        try:
            return await asyncio.to_thread(decode_image, data, ctype, settings.max_upload_pixels)
        except ImageRejected as e:
            raise ApiError(422, str(e), param=param) from None

    GenerationRequest = generation_request_model(settings.max_images_per_request)  # noqa: N806

    @app.post("/v1/images/generations", response_model=ImagesResponse, tags=["images"],
              responses=_errors(400, 401, 404, 413, 422, 429, 503, 504), summary="Create images from a prompt")  # fmt: skip
    async def create_images(body: GenerationRequest, request: Request) -> ImagesResponse:  # type: ignore[valid-type]
        """Generate ``n`` images with ``model`` (null: the default); image ``j`` uses seed ``seed + j`` and reproduces
        byte for byte."""
        served = state.ready_or_raise(body.model)
        info = request.scope.setdefault(LOG_KEY, {})
        info["model"], info["n"] = served.name, body.n
        if settings.log_prompts:
            info["prompt"] = body.prompt
        limit = served.pipeline.max_prompt_tokens
        tokens = served.prompt_tokens(body.prompt)
        if tokens > limit:
            raise _field_error("prompt", f"the prompt is {tokens} tokens long; the model accepts at most {limit}")
        blocked = state.prompt_filter.check(body.prompt)
        if blocked is not None:
            raise ApiError(400, blocked.reason, "content_policy", param="prompt")
        config = body.generation_config(served.pipeline.generation_config)
        # a drawn seed leaves room for its n images (image j uses seed + j <= MAX_SEED)
        seed = config.seed if config.seed is not None else secrets.randbelow(MAX_SEED - config.num_images + 2)
        # the batching key: requests for the same model with equal settings share a call
        key = ModelKey(served.name, config.replace(num_images=1, seed=None))
        images = await state.run(request, key, config.num_images, GenerationJob(body.prompt, config.num_images, seed))
        canvas = images[0].width  # from the model's config
        side = canvas if body.size is None else int(body.size.split("x")[0])
        if side % canvas:
            raise _field_error(
                "size", f"size must be {canvas}x{canvas} (the model's canvas) or an integer upscale of it"
            )
        encoded = await asyncio.to_thread(lambda: [_png_b64(im, side) for im in images])
        return ImagesResponse(created=int(time.time()),
                              data=[ImageData(b64_json=b, seed=seed + j, seed_string=str(seed + j)) for j, b in enumerate(encoded)])  # fmt: skip

    @app.post("/v1/images/edits", response_model=ImagesResponse, tags=["images"],
              responses=_errors(401, 404, 413, 415, 422, 429, 501, 503, 504), summary="Edit an image by instruction")  # fmt: skip
    async def create_edit(
        request: Request,
        image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF image to edit")],
        prompt: Annotated[
            str,
            Form(
                min_length=1,
                max_length=MAX_PROMPT_CHARS,
                description="the instruction, e.g. 'make the circle blue' or '把正方形移到左上角'",
            ),
        ],
        model: Annotated[str | None, Form(description="an id from GET /v1/models (absent: the default model)")] = None,
        seed: Annotated[int, Form(ge=0, le=MAX_SEED, description="the editor's seed")] = 0,
        allow_unsupported: Annotated[bool, Form(description="draw an instruction the model refuses anyway")] = False,
    ) -> ImagesResponse:
        """Edit one image with ``model``'s editor (OpenAI's image-edit route, with an instruction as the prompt): the
        reader reads its layout, the editor rewrites it, the painter repaints what changed. An instruction the model
        cannot carry out is a 422 naming the reason (code ``unsupported_prompt``)."""
        served = state.ready_or_raise(model)
        request.scope.setdefault(LOG_KEY, {})["model"] = served.name
        if not getattr(served.pipeline, "can_edit", False):  # (a pipeline that does not say it edits does not)
            raise ApiError(501, "the served model cannot edit images (it has no editor)", "not_implemented")
        if not prompt.strip():
            raise _field_error("prompt", "prompt must not be blank")
        blocked = state.prompt_filter.check(prompt)
        if blocked is not None:
            raise ApiError(400, blocked.reason, "content_policy", param="prompt")
        picture = await read_upload(image, "image")
        key = ModelKey(served.name, EditKey(seed, allow_unsupported))
        edited = await state.run(request, key, 1, EditJob(picture, prompt))
        encoded = await asyncio.to_thread(lambda: [_png_b64(im, im.width) for im in edited])
        return ImagesResponse(created=int(time.time()),
                              data=[ImageData(b64_json=b, seed=seed, seed_string=str(seed)) for b in encoded])  # fmt: skip

    @app.post("/v1/captions", response_model=CaptionResponse, tags=["captions"],
              responses=_errors(401, 404, 413, 415, 422, 429, 503, 504), summary="Caption an image")  # fmt: skip
    async def create_caption(
        request: Request,
        file: Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF image")],
        lang: Annotated[Literal["en", "zh"], Form(description="caption language")] = "en",
        model: Annotated[str | None, Form(description="an id from GET /v1/models (absent: the default model)")] = None,
    ) -> CaptionResponse:
        """Caption one image in the canonical grammar of ``lang`` with ``model`` (absent: the default)."""
        served = state.ready_or_raise(model)
        request.scope.setdefault(LOG_KEY, {})["model"] = served.name
        if not served.pipeline.can_caption:
            raise ApiError(501, "the served model cannot caption images (it has no reader)", "not_implemented")
        image = await read_upload(file, "file")
        caption = await state.run(request, ModelKey(served.name, CaptionKey(lang)), 1, image)
        return CaptionResponse(caption=caption, lang=lang)

    @app.get("/v1/models", response_model=ModelList, tags=["models"], responses=_errors(401, 429, 503),
             summary="List the served models")  # fmt: skip
    async def list_models() -> ModelList:
        """Every model this server serves, loaded or not (a request for one still loading is 503); the first is the
        default of a request that names none."""
        return ModelList(data=[state.model_info(m) for m in state.models.values()])

    @app.get("/v1/models/{model}", response_model=ModelInfo, tags=["models"], responses=_errors(401, 404, 429, 503),
             summary="Describe a served model")  # fmt: skip
    async def retrieve_model(model: str) -> ModelInfo:
        """The served model ``model``; 404 (``model_not_found``) when this server does not serve it."""
        served = state.models.get(model)
        if served is None:
            raise unknown_model(model)
        return state.model_info(served)

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness", responses={503: {"description": "loading or draining"}})
    async def readyz() -> JSONResponse:
        if state.draining:
            return JSONResponse({"status": "draining"}, 503)
        if any(m.pipeline is None for m in state.models.values()):  # ready once every model is loaded
            # never the load error itself (it holds paths and exception text): that is in the server log
            body = {"status": "failed", "error": FAILED_LOAD} if state.load_error else {"status": "loading"}
            return JSONResponse(body, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            return error_response(404, "the web page is not installed")
        return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})
