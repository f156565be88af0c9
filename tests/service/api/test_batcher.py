import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from model.funsd import Document, read_dataset
from model.runtime import PagePrediction, PageWords, PreparedPage, Runtime
from service.api.batcher import BatcherClosedError, MicroBatcher
from tests.exported import ExportedModel


@pytest.fixture(scope="module")
def runtime(exported_model: ExportedModel) -> Runtime:
    """fp32: int8 graphs quantise activations per tensor over the whole batch, so their results can
    shift slightly with what else is in the batch; fp32 results are the same batched or alone."""
    return Runtime.load(exported_model.onnx_dir, "fp32", threads=1)


@pytest.fixture(scope="module")
def documents(synthetic_dataset: Path) -> list[Document]:
    return read_dataset(synthetic_dataset)


def page_of(document: Document, first_words: int | None = None) -> PageWords:
    words = [w for entity in document.entities for w in entity.words if w.text.strip()][:first_words]
    return PageWords([w.text for w in words], [w.box_px for w in words], document.width, document.height)


def requests(documents: Sequence[Document], count: int) -> list[list[PageWords]]:
    """`count` requests of one to three pages (some cut short, one empty)."""
    pages = [page_of(d, n) for d in documents for n in (None, 25)] + [PageWords([], [], 100, 100)]
    return [[pages[(i + k) % len(pages)] for k in range(1 + i % 3)] for i in range(count)]


def same(a: Sequence[PagePrediction], b: Sequence[PagePrediction]) -> bool:
    return [(p.tags, [(e.label, e.word_ids) for e in p.entities]) for p in a] == [
        (p.tags, [(e.label, e.word_ids) for e in p.entities]) for p in b
    ]


class Recording:
    """A real runtime that records the windows of each shared call, fails calls holding a poisoned page,
    and can be slowed down."""

    def __init__(self, runtime: Runtime, delay_s: float = 0.0) -> None:
        self.runtime, self.delay_s = runtime, delay_s
        self.calls: list[int] = []
        self.poisoned: set[int] = set()

    def prepare(self, pages: Sequence[PageWords]) -> list[PreparedPage]:
        prepared = self.runtime.prepare(pages)
        self.poisoned |= {id(p) for page, p in zip(pages, prepared, strict=True) if "POISON" in page.words}
        return prepared

    def run_prepared(self, pages: Sequence[PreparedPage]) -> list[PagePrediction]:
        self.calls.append(sum(len(p.windows) for p in pages))
        time.sleep(self.delay_s)
        if any(id(p) in self.poisoned for p in pages):
            raise RuntimeError("poisoned page")
        return self.runtime.run_prepared(pages)


def test_concurrent_requests_share_calls_and_a_bad_one_fails_alone(runtime, documents):
    batches = requests(documents, 20)
    batches[7] = [page_of(documents[0]), PageWords(["a"], [(0, 0, 1, 1)], 0, 100)]  # zero page width
    expected = {i: runtime.predict_pages(pages) for i, pages in enumerate(batches) if i != 7}
    recording = Recording(runtime)

    async def main() -> list:
        async with MicroBatcher(recording, max_windows=8, max_wait_s=0.2) as batcher:
            return await asyncio.gather(*(batcher.submit(p) for p in batches), return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[7], ValueError) and "page 1: page size" in str(results[7])
    for index, predictions in expected.items():
        assert not isinstance(results[index], BaseException), results[index]
        assert same(results[index], predictions), index
    assert 1 < len(recording.calls) < 19
    assert all(windows <= 8 + 3 for windows in recording.calls)  # a request may top a batch up past 8


def test_a_failing_shared_call_is_retried_so_only_the_culprit_fails(runtime, documents):
    batches = requests(documents, 6)
    batches[2] = [page_of(documents[1]), PageWords(["POISON"], [(0, 0, 1, 1)], 10, 10)]
    recording = Recording(runtime)

    async def main() -> list:
        async with MicroBatcher(recording, max_windows=64, max_wait_s=0.2) as batcher:
            return await asyncio.gather(*(batcher.submit(p) for p in batches), return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[2], RuntimeError) and str(results[2]) == "poisoned page"
    for index, pages in enumerate(batches):
        if index != 2:
            assert same(results[index], runtime.predict_pages(pages)), index
    assert len(recording.calls) == 1 + len(batches)  # the shared call, then each request alone


def test_the_event_loop_keeps_running_during_model_calls(runtime, documents):
    recording = Recording(runtime, delay_s=0.5)
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            gaps.append(time.perf_counter() - last)
            last = time.perf_counter()

    async def main() -> None:
        stop = asyncio.Event()
        ticks = asyncio.create_task(ticker(stop))
        async with MicroBatcher(recording, max_wait_s=0.0) as batcher:
            await batcher.submit([page_of(documents[0])])
        stop.set()
        await ticks

    asyncio.run(main())
    assert len(gaps) > 10 and max(gaps) < 0.3


def test_close_finishes_accepted_requests_and_refuses_new_ones(runtime, documents):
    batches = requests(documents, 5)

    async def main() -> tuple[list, MicroBatcher]:
        batcher = MicroBatcher(Recording(runtime, delay_s=0.05), max_windows=2, max_wait_s=0.0)
        tasks = [asyncio.create_task(batcher.submit(p)) for p in batches]
        await asyncio.sleep(0)  # every submit has started
        await batcher.close()
        assert all(task.done() for task in tasks)
        with pytest.raises(BatcherClosedError):
            await batcher.submit(batches[0])
        return [task.result() for task in tasks], batcher

    results, _ = asyncio.run(main())
    for pages, predictions in zip(batches, results, strict=True):
        assert same(predictions, runtime.predict_pages(pages))


def test_a_cancelled_request_does_not_disturb_the_others(runtime, documents):
    async def main() -> list[PagePrediction]:
        async with MicroBatcher(Recording(runtime, delay_s=0.1), max_wait_s=0.05) as batcher:
            doomed = asyncio.create_task(batcher.submit([page_of(documents[0])]))
            kept = asyncio.create_task(batcher.submit([page_of(documents[1])]))
            await asyncio.sleep(0.02)
            doomed.cancel()
            return await kept

    assert same(asyncio.run(main()), runtime.predict_pages([page_of(documents[1])]))


@pytest.mark.parametrize(("windows", "wait"), [(0, 0.01), (4, -1.0)])
def test_bad_settings_are_refused(runtime, windows, wait):
    with pytest.raises(ValueError):
        MicroBatcher(runtime, max_windows=windows, max_wait_s=wait)
