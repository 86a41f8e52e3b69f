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
import secrets
import threading
import time
from collections.abc import Sequence
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
from lvg.ranges import bounded, check_ranges
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
    GenerationJob,
    JobDropped,
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


@dataclass
class ServeSettings:
    """Settings of one server (``lvg serve`` flags map onto these)."""

    model_dir: str | os.PathLike | None = None  # None: the shipped default model
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
    model: str | None = Field(None, description="ignored (OpenAI compatibility): the server serves one model")
    user: str | None = Field(None, description="ignored (OpenAI compatibility)")
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
        return GenerationConfig.from_kwargs(base, **given)


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


class ApiError(Exception):
    """An error response raised from a handler."""

    def __init__(self, status: int, message: str, type_: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.headers = status, message, type_, param, headers


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


class ServeState:
    """Everything one app shares between requests."""

    def __init__(self, settings: ServeSettings, pipeline: Any = None) -> None:
        self.settings = settings
        self.metrics = ServeMetrics()
        self.keys = ApiKeys.from_file(settings.api_keys_file) if settings.api_keys_file is not None else None
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.prompt_filter = PromptFilter.from_files(settings.blocklist_files)
        self.batcher = Batcher(self._run_batch, max_batch_size=settings.max_batch_size,
                               max_wait_s=settings.max_wait_ms / 1000, queue_size=settings.queue_size,
                               batching=settings.batching, on_depth=self.metrics.queue_depth.set,
                               on_batch=self._on_batch)  # fmt: skip
        self.pipeline: Any = None
        self.runner: PipelineRunner | None = None
        self.tokenizer: Any = None  # a copy of the pipeline's, for the event loop (the worker uses the original)
        self.load_error: str | None = None
        self._loader: threading.Thread | None = None
        self.draining = False
        if pipeline is not None:
            self.set_pipeline(pipeline)

    def set_pipeline(self, pipeline: Any) -> None:
        self.runner = PipelineRunner(pipeline, batch_size=self.settings.max_batch_size)
        self.tokenizer = copy.deepcopy(pipeline.text_tokenizer)
        self.pipeline = pipeline

    def start_loading(self) -> None:
        """Load the model on a daemon thread (once); readiness turns 200 when it is done."""
        if self.pipeline is not None or (self._loader is not None and self._loader.is_alive()):
            return

        def load() -> None:
            try:
                pipe = load_pipeline(self.settings.model_dir)
                self.set_pipeline(pipe)
            except Exception as e:  # reported by /readyz and the log; the server stays up, not ready
                self.load_error = f"{type(e).__name__}: {e}"
                logger.error("cannot load the model: %s", self.load_error)
                return
            logger.info("model loaded; ready")

        self.load_error = None
        self._loader = threading.Thread(target=load, name="lvg-load", daemon=True)
        self._loader.start()

    def begin_drain(self) -> None:
        """Refuse new requests (503); those in flight finish."""
        self.draining = True

    def _run_batch(self, key: Any, payloads: list[Any]) -> list[Any]:  # on the worker thread
        if self.runner is None:
            raise RuntimeError("the model is not loaded")
        return self.runner(key, payloads)

    def _on_batch(self, key: Any, images: int) -> None:
        self.metrics.batch_size.observe(images)
        if isinstance(key, GenerationConfig):
            self.metrics.images.inc(images)

    def ready_or_raise(self) -> None:
        if self.draining:
            raise ApiError(503, "the server is shutting down", headers={"Retry-After": "5"})
        if self.pipeline is None:
            why = "the model failed to load" if self.load_error else "the model is still loading"
            raise ApiError(503, why, headers={"Retry-After": "5"})

    def prompt_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

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


def create_app(settings: ServeSettings | None = None, pipeline: Any = None) -> FastAPI:
    """The app. With ``pipeline=None`` the model loads in the background at startup (``/readyz`` 503 until then)."""
    settings = settings if settings is not None else ServeSettings()
    state = ServeState(settings, pipeline)

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
        return error_response(exc.status, exc.message, exc.type, exc.headers, exc.param)

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
    settings = state.settings
    GenerationRequest = generation_request_model(settings.max_images_per_request)  # noqa: N806

    @app.post("/v1/images/generations", response_model=ImagesResponse, tags=["images"],
              responses=_errors(400, 401, 413, 422, 429, 503, 504), summary="Create images from a prompt")  # fmt: skip
    async def create_images(body: GenerationRequest, request: Request) -> ImagesResponse:  # type: ignore[valid-type]
        """Generate ``n`` images; image ``j`` uses seed ``seed + j`` and reproduces byte for byte."""
        state.ready_or_raise()
        info = request.scope.setdefault(LOG_KEY, {})
        info["n"] = body.n
        if settings.log_prompts:
            info["prompt"] = body.prompt
        limit = state.pipeline.max_prompt_tokens
        tokens = state.prompt_tokens(body.prompt)
        if tokens > limit:
            raise _field_error("prompt", f"the prompt is {tokens} tokens long; the model accepts at most {limit}")
        blocked = state.prompt_filter.check(body.prompt)
        if blocked is not None:
            raise ApiError(400, blocked.reason, "content_policy", param="prompt")
        config = body.generation_config(state.pipeline.generation_config)
        # a drawn seed leaves room for its n images (image j uses seed + j <= MAX_SEED)
        seed = config.seed if config.seed is not None else secrets.randbelow(MAX_SEED - config.num_images + 2)
        key = config.replace(num_images=1, seed=None)  # the batching key: requests with equal settings share a call
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

    @app.post("/v1/captions", response_model=CaptionResponse, tags=["captions"],
              responses=_errors(401, 413, 415, 422, 429, 503, 504), summary="Caption an image")  # fmt: skip
    async def create_caption(
        request: Request,
        file: Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF image")],
        lang: Annotated[Literal["en", "zh"], Form(description="caption language")] = "en",
    ) -> CaptionResponse:
        """Caption one image in the canonical grammar of ``lang``."""
        state.ready_or_raise()
        if not state.pipeline.can_caption:
            raise ApiError(501, "the served model cannot caption images (it has no reader)", "not_implemented")
        ctype = (file.content_type or "").split(";")[0].strip().lower()
        if ctype not in ALLOWED_TYPES:
            raise ApiError(415, f"unsupported image type {ctype or 'none'!r}; send one of {', '.join(ALLOWED_TYPES)}",
                           param="file")  # fmt: skip
        data = await file.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise ApiError(413, f"the image is larger than {settings.max_upload_bytes} bytes", param="file")
        try:
            image = await asyncio.to_thread(decode_image, data, ctype, settings.max_upload_pixels)
        except ImageRejected as e:
            raise ApiError(422, str(e), param="file") from None
        caption = await state.run(request, CaptionKey(lang), 1, image)
        return CaptionResponse(caption=caption, lang=lang)

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness", responses={503: {"description": "loading or draining"}})
    async def readyz() -> JSONResponse:
        if state.draining:
            return JSONResponse({"status": "draining"}, 503)
        if state.pipeline is None:
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
