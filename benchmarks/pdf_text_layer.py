"""Born-digital PDF throughput: pages per second through the whole pipeline (text layer, no OCR; PDF
rasterisation for the image stream; model; decoding), with the bundled model.

    .venv/bin/python benchmarks/pdf_text_layer.py --pages 20

The PDF is generated here (Helvetica form lines, `tests/fixtures/fake_pdf.py`), so nothing is downloaded.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from model.runtime import Runtime
from service.pipeline import extract_document
from service.registry import serving_model_dir
from service.schemas import ExtractOptions
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the PDF writer lives with the tests
from tests.fixtures.fake_pdf import make_pdf, text_page  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pdf_text_layer.json"
FIELDS = ("Name:", "Date:", "Company:", "Phone:", "Invoice No.:", "Total:", "Address:", "Reference:")


def form_lines(page: int) -> list[str]:
    return [f"{FIELDS[i % len(FIELDS)]} value {page}-{i} of the form" for i in range(22)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    runtime = Runtime.load(serving_model_dir(settings), "int8", threads=2)
    data = make_pdf([text_page(form_lines(p)) for p in range(args.pages)])
    extract_document(data, ExtractOptions(), settings, runtime)  # warm-up
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = extract_document(data, ExtractOptions(), settings, runtime)
        seconds.append(time.perf_counter() - started)
    best = min(seconds)
    words = sum(len(p.words) for p in result.pages)
    record = {"pages": args.pages, "words": words, "seconds": seconds, "pages_per_second": args.pages / best}
    record["timings_ms"] = result.timings_ms.model_dump()
    RESULTS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{args.pages} pages, {words} words: {args.pages / best:.1f} pages/s (best of {args.repeats})")
    print(json.dumps(record["timings_ms"]))


if __name__ == "__main__":
    main()
