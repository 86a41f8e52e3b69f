"""Micro-batching with backpressure: concurrent requests merged into pipeline calls on one worker thread.

Requests become ``Job``s in a bounded FIFO queue (its size counted in images). One dispatcher task on the
event loop takes the oldest job, waits up to ``max_wait_s`` after its arrival for more jobs with the *same
key* (an equal :class:`~lvg.sampling.GenerationConfig`, or the same caption language, of the same served model:
see :class:`ModelKey`) until ``max_batch_size`` images are queued, and runs them as one pipeline call on a single
worker thread, so torch never runs on the event loop and never on two threads at once. A job whose client has
gone, or whose deadline has passed, is dropped from the queue before it runs; a job already running finishes and
its result is discarded.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lvg.sampling.config import GenerationConfig


class QueueFullError(Exception):
    """The queue cannot take the job now; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The job's deadline passed before its result was ready."""


class ClientDisconnected(Exception):
    """The client went away while its job waited."""


class JobDropped(Exception):
    """The job was dropped (cancelled, or the server is shutting down)."""


@dataclass(eq=False)
class Job:
    """One request's work: ``cost`` images of ``payload``, batchable with jobs of an equal ``key``."""

    key: Hashable
    cost: int
    payload: Any
    enqueued: float  # loop time
    deadline: float  # loop time
    future: asyncio.Future = field(repr=False)
    started: bool = False


RunBatch = Callable[[Hashable, list[Any]], list[Any]]


class Batcher:
    """Bounded queue + dispatcher + one worker thread. Create it anywhere; it starts on the running loop."""

    def __init__(self, run_batch: RunBatch, *, max_batch_size: int = 16, max_wait_s: float = 0.02,
                 queue_size: int = 64, batching: bool = True,
                 on_depth: Callable[[int], None] | None = None,
                 on_batch: Callable[[Hashable, int], None] | None = None) -> None:  # fmt: skip
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self.batching = batching
        self.on_depth = on_depth
        self.on_batch = on_batch
        self._queue: list[Job] = []
        self._pending = 0  # images queued, not yet running
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batch_seconds = 1.0  # running estimate of one pipeline call, for Retry-After

    @property
    def pending_images(self) -> int:
        return self._pending

    def start(self) -> None:
        """Start the dispatcher on the running event loop (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        self._wakeup = asyncio.Event()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lvg-worker")
        self._task = asyncio.get_running_loop().create_task(self._dispatch(), name="lvg-batcher")
        if self._queue:
            self._wakeup.set()

    async def stop(self) -> None:
        """Stop the dispatcher; queued jobs fail with ``JobDropped``; a running pipeline call is abandoned."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for job in self._queue:
            if not job.future.done():
                job.future.set_exception(JobDropped("the server is shutting down"))
                _consume(job.future)
        self._queue.clear()
        self._set_pending(0)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def retry_after(self) -> int:
        """Seconds a refused client should wait: about the time to drain the queue, at least 1."""
        batches = 1 + self._pending / max(1, self.max_batch_size)
        return max(1, math.ceil(self._batch_seconds * batches))

    def submit(self, key: Hashable, cost: int, payload: Any, timeout_s: float) -> Job:
        """Queue a job; ``QueueFullError`` when ``cost`` more images would overflow a non-empty queue."""
        self.start()
        if self._pending > 0 and self._pending + cost > self.queue_size:
            raise QueueFullError(self.retry_after())
        loop = asyncio.get_running_loop()
        now = loop.time()
        job = Job(key, cost, payload, now, now + timeout_s, loop.create_future())
        self._queue.append(job)
        self._set_pending(self._pending + cost)
        assert self._wakeup is not None
        self._wakeup.set()
        return job

    def cancel(self, job: Job) -> bool:
        """Drop ``job`` if it has not started (True); a running job cannot be stopped (False)."""
        if job.started or job not in self._queue:
            return False
        self._queue.remove(job)
        self._set_pending(self._pending - job.cost)
        if not job.future.done():
            job.future.cancel()
        return True

    async def wait(self, job: Job, is_disconnected: Callable[[], Awaitable[bool]] | None = None,
                   poll_s: float = 0.1) -> Any:  # fmt: skip
        """The job's result. Raises ``DeadlineExceeded`` at its deadline and ``ClientDisconnected`` when
        ``is_disconnected()`` turns true (both drop the job if it has not started), ``JobDropped`` when it was
        dropped, or the pipeline's own exception."""
        loop = asyncio.get_running_loop()
        try:
            while not job.future.done():
                remaining = job.deadline - loop.time()
                if remaining <= 0:
                    raise DeadlineExceeded("the request's deadline passed")
                await asyncio.wait({job.future}, timeout=min(poll_s, remaining))
                if not job.future.done() and is_disconnected is not None and await is_disconnected():
                    raise ClientDisconnected("the client disconnected")
            if job.future.cancelled():
                raise JobDropped("the job was cancelled")
            return job.future.result()
        finally:
            if not job.future.done():
                self.cancel(job)
                _consume(job.future)

    # ------------------------------------------------------------------ dispatcher

    def _set_pending(self, n: int) -> None:
        self._pending = n
        if self.on_depth is not None:
            self.on_depth(n)

    def _expire(self, now: float) -> None:
        for job in [j for j in self._queue if j.deadline <= now]:
            self._queue.remove(job)
            self._set_pending(self._pending - job.cost)
            if not job.future.done():
                job.future.set_exception(DeadlineExceeded("the request's deadline passed before it ran"))
                _consume(job.future)

    def _queued_cost(self, key: Hashable) -> int:
        return sum(j.cost for j in self._queue if j.key == key)

    def _take(self) -> list[Job]:
        """The oldest job plus, in arrival order, jobs of the same key while they fit in one batch."""
        head = self._queue[0]
        batch, total = [head], head.cost
        if self.batching:
            for job in self._queue[1:]:
                if job.key == head.key:
                    if total + job.cost > self.max_batch_size:
                        break
                    batch.append(job)
                    total += job.cost
        for job in batch:
            self._queue.remove(job)
            job.started = True
        self._set_pending(self._pending - total)
        return batch

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self._expire(loop.time())
            if not self._queue:
                continue
            head = self._queue[0]
            if self.batching:  # the batching window: from the head's arrival, until the batch is full
                while self._queued_cost(head.key) < self.max_batch_size:
                    remaining = head.enqueued + self.max_wait_s - loop.time()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except TimeoutError:
                        break
                self._expire(loop.time())
                if not self._queue:
                    continue
            batch = self._take()
            self._wakeup.set()  # look at the queue again after this batch
            await self._run(loop, batch)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[Job]) -> None:
        key, total = batch[0].key, sum(j.cost for j in batch)
        t0 = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self.run_batch, key, [j.payload for j in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the pipeline returned {len(results)} results for {len(batch)} requests")
        except asyncio.CancelledError:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(JobDropped("the server is shutting down"))
                    _consume(job.future)
            raise
        except Exception as e:  # the pipeline's error goes to every request of the batch
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(e)
                    _consume(job.future)
        else:
            for job, result in zip(batch, results):
                if not job.future.done():
                    _settle(job.future, result)
        finally:
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.perf_counter() - t0)
        if self.on_batch is not None:
            self.on_batch(key, total)


def _settle(future: asyncio.Future, result: Any) -> None:
    """Complete ``future`` with ``result``, or with it as the exception when a batch reports one per request."""
    if isinstance(result, Exception):
        future.set_exception(result)
        _consume(future)
    else:
        future.set_result(result)


def _consume(future: asyncio.Future) -> None:
    """Mark a future's exception as retrieved (its waiter may be gone), silencing asyncio's warning."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


# ---------------------------------------------------------------------- pipeline jobs


@dataclass(frozen=True)
class GenerationJob:
    """``n`` images of ``prompt``; image ``j`` uses seed ``seed + j``, exactly as the pipeline alone would."""

    prompt: str
    n: int
    seed: int


@dataclass(frozen=True)
class CaptionKey:
    lang: str


@dataclass(frozen=True)
class EditKey:
    """An edit job's settings: the editor's seed and whether a refused instruction is drawn anyway."""

    seed: int
    allow_unsupported: bool


@dataclass(frozen=True)
class EditJob:
    image: Any
    instruction: str


@dataclass(frozen=True)
class ModelKey:
    """The batching key of a served model's job: jobs share a pipeline call only when both the ``model`` and its
    ``key`` (a :class:`~lvg.sampling.GenerationConfig` or a :class:`CaptionKey`) are equal, so one call never mixes
    models."""

    model: str
    key: Hashable


class PipelineRunner:
    """``RunBatch`` over a pipeline: one call per batch of equal keys.

    A generation key is the :class:`~lvg.sampling.GenerationConfig` itself (``num_images=1``, no seed): its jobs are
    merged into one call with one seed per image (``seeds=``), so each image is what its request alone would give.
    """

    def __init__(self, pipeline: Any, batch_size: int = 32) -> None:
        self.pipeline = pipeline
        self.batch_size = batch_size

    def _caption_one(self, image: Any, lang: str) -> str | ValueError:
        try:
            return self.pipeline.caption([image], lang=lang)[0]
        except ValueError as e:
            return e

    def __call__(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        if isinstance(key, CaptionKey):
            try:
                return list(self.pipeline.caption(list(payloads), lang=key.lang))
            except ValueError:  # one unreadable image must not fail the others: each on its own, errors per request
                if len(payloads) == 1:
                    raise
                return [self._caption_one(p, key.lang) for p in payloads]
        if isinstance(key, EditKey):  # each image read and edited on its own; errors per request
            return [self._edit_one(key, p) for p in payloads]
        if not isinstance(key, GenerationConfig):
            raise TypeError(f"unknown job key {key!r}")
        try:
            return self._generate(key, payloads)
        except ValueError:  # one refused prompt must not fail the requests it was batched with: each on its own
            if len(payloads) == 1:
                raise
            return [self._generate_one(key, p) for p in payloads]

    def _edit_one(self, key: EditKey, job: EditJob) -> list[Any] | ValueError:
        try:
            out = self.pipeline.edit(job.image, job.instruction, seed=key.seed, allow_unsupported=key.allow_unsupported)
            return [out.image]
        except ValueError as e:
            return e

    def _generate_one(self, key: GenerationConfig, payload: GenerationJob) -> list[Any] | ValueError:
        try:
            return self._generate(key, [payload])[0]
        except ValueError as e:
            return e

    def _generate(self, key: GenerationConfig, payloads: list[GenerationJob]) -> list[list[Any]]:
        prompts = [p.prompt for p in payloads for _ in range(p.n)]
        seeds = [p.seed + j for p in payloads for j in range(p.n)]
        images = list(self.pipeline(prompts, config=key, seeds=seeds, batch_size=self.batch_size).images)
        out, i = [], 0
        for p in payloads:
            out.append(images[i : i + p.n])
            i += p.n
        return out
