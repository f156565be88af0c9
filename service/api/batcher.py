"""An asyncio micro-batcher in front of `model.runtime.Runtime`: concurrent requests share model calls.

`await batcher.submit(pages)` validates and encodes the request's pages in a worker thread (a bad request
fails right there, alone), then queues it. One worker task takes the oldest request and keeps gathering
more until `max_windows` model windows are collected or `max_wait_s` has passed, runs ONE runtime call for
all of them in a thread (the event loop never blocks) and hands each request its own pages' results. If a
shared call fails, its requests are retried one by one so only the culprit gets the error. `close()` stops
taking requests, finishes every request already accepted, then ends the worker.
"""

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from model.runtime import PagePrediction, PageWords, PreparedPage

DEFAULT_MAX_WINDOWS = 16
DEFAULT_MAX_WAIT_S = 0.010


class PageRuntime(Protocol):
    """The two halves of `Runtime.predict_pages` that the batcher calls separately."""

    def prepare(self, pages: Sequence[PageWords]) -> list[PreparedPage]: ...

    def run_prepared(self, pages: Sequence[PreparedPage]) -> list[PagePrediction]: ...


class BatcherClosedError(RuntimeError):
    """The batcher no longer takes requests."""


@dataclass
class _Request:
    pages: list[PreparedPage]
    future: asyncio.Future[list[PagePrediction]]

    @property
    def windows(self) -> int:
        return sum(len(page.windows) for page in self.pages)


_STOP = object()


class MicroBatcher:
    """Gathers concurrent `submit` calls into shared runtime calls. Use inside one event loop."""

    def __init__(
        self,
        runtime: PageRuntime,
        max_windows: int = DEFAULT_MAX_WINDOWS,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
    ) -> None:
        if max_windows < 1 or max_wait_s < 0:
            raise ValueError("max_windows must be >= 1 and max_wait_s >= 0")
        self.runtime, self.max_windows, self.max_wait_s = runtime, max_windows, max_wait_s
        self.runtime_calls = 0  # shared calls made, retries included (for tests and metrics)
        self._queue: asyncio.Queue[_Request | object] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._preparing = 0
        self._prepared = asyncio.Event()
        self._prepared.set()

    async def __aenter__(self) -> "MicroBatcher":
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="micro-batcher")

    async def submit(self, pages: Sequence[PageWords]) -> list[PagePrediction]:
        """Predictions for `pages`; ValueError for bad pages, BatcherClosedError after `close()`."""
        if self._closed:
            raise BatcherClosedError("the batcher is closed")
        self.start()
        self._preparing += 1
        self._prepared.clear()
        try:
            prepared = await asyncio.to_thread(self.runtime.prepare, list(pages))
        finally:
            self._preparing -= 1
            if not self._preparing:
                self._prepared.set()
        future: asyncio.Future[list[PagePrediction]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(prepared, future))
        return await future

    async def close(self) -> None:
        """Refuse new requests, finish the accepted ones (those still being prepared too), stop."""
        self._closed = True
        await self._prepared.wait()
        if self._worker is not None:
            self._queue.put_nowait(_STOP)
            await self._worker
            self._worker = None

    async def _work(self) -> None:
        while True:
            first = await self._queue.get()
            if first is _STOP:
                return
            assert isinstance(first, _Request)
            batch, stop = await self._gather(first)
            await self._run(batch)
            if stop:
                return

    async def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """Requests from the queue until `max_windows` or `max_wait_s` (True when the stop signal came)."""
        batch, windows = [first], first.windows
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while windows < self.max_windows:
            item = await self._next(deadline)
            if item is None:
                break
            if item is _STOP:
                return batch, True
            assert isinstance(item, _Request)
            batch.append(item)
            windows += item.windows
        return batch, False

    async def _next(self, deadline: float) -> object | None:
        """The next queued item, or None when `deadline` (loop time) passes first."""
        with contextlib.suppress(asyncio.QueueEmpty):
            return self._queue.get_nowait()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), remaining)
        except TimeoutError:
            return None

    async def _run(self, batch: list[_Request]) -> None:
        """One shared runtime call; on failure, each request again on its own."""
        self.runtime_calls += 1
        pages = [page for request in batch for page in request.pages]
        try:
            results = await asyncio.to_thread(self.runtime.run_prepared, pages)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc)
                return
            for request in batch:
                await self._run([request])
            return
        start = 0
        for request in batch:
            _settle(request.future, results[start : start + len(request.pages)])
            start += len(request.pages)


def _settle(future: asyncio.Future[list[PagePrediction]], outcome: list[PagePrediction] | Exception) -> None:
    if future.done():  # the caller gave up (cancelled)
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class BatchableRuntime(PageRuntime, Protocol):
    """A runtime the batcher can split (prepare / run_prepared) and callers can also call whole."""

    def predict_pages(self, pages: Sequence[PageWords]) -> list[PagePrediction]: ...


class BatchedRuntime:
    """A runtime for a blocking pipeline thread whose model calls go through a `MicroBatcher` on the event
    loop, so that concurrent requests share session calls. Everything else (meta, label set, model id)
    is the wrapped runtime's."""

    def __init__(
        self, runtime: BatchableRuntime, batcher: MicroBatcher, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.runtime, self.batcher, self.loop = runtime, batcher, loop

    def __getattr__(self, name: str) -> object:
        return getattr(self.runtime, name)

    def predict_pages(self, pages: Sequence[PageWords]) -> list[PagePrediction]:
        """Blocking (call it from a worker thread, never from the loop): this request's predictions."""
        return asyncio.run_coroutine_threadsafe(self.batcher.submit(pages), self.loop).result()


class Batchers:
    """One `MicroBatcher` per loaded runtime of a process (a replaced runtime gets a new one). The most
    recently used `keep` are kept; an older one is closed (it finishes its accepted requests first)."""

    def __init__(
        self, max_windows: int = DEFAULT_MAX_WINDOWS, max_wait_s: float = DEFAULT_MAX_WAIT_S, keep: int = 4
    ) -> None:
        self.max_windows, self.max_wait_s, self.keep = max_windows, max_wait_s, keep
        self._batchers: OrderedDict[int, tuple[BatchableRuntime, MicroBatcher]] = OrderedDict()
        self._lock = threading.Lock()

    def wrap(self, runtime: BatchableRuntime, loop: asyncio.AbstractEventLoop) -> BatchedRuntime:
        """`runtime` behind its batcher (thread-safe; the batcher's worker runs on `loop`)."""
        with self._lock:
            entry = self._batchers.get(id(runtime))
            if entry is None or entry[0] is not runtime:
                entry = (runtime, MicroBatcher(runtime, self.max_windows, self.max_wait_s))
                self._batchers[id(runtime)] = entry
            self._batchers.move_to_end(id(runtime))
            while len(self._batchers) > self.keep:
                _, (_, old) = self._batchers.popitem(last=False)
                asyncio.run_coroutine_threadsafe(old.close(), loop)
        return BatchedRuntime(runtime, entry[1], loop)

    async def close(self) -> None:
        """Finish the accepted requests of every batcher and stop them."""
        with self._lock:
            batchers = [batcher for _, batcher in self._batchers.values()]
            self._batchers.clear()
        for batcher in batchers:
            await batcher.close()
