"""Model latency on CPU: our encoder in torch eager fp32, ONNX fp32 and ONNX int8, against transformers'
LayoutLMv3-base token classifier (random weights), per page at 512 text tokens.

Our model sees 512 text tokens + 49 visual tokens (7 x 7 grid on a 224 x 224 image); LayoutLMv3-base sees 512
text tokens + 197 visual tokens (14 x 14 patches of the same image + its [CLS]). Times are the model call only
(no OCR, tokenisation or decoding; the torch models under `torch.inference_mode`, their fastest eager mode),
median over `--repeats` runs, with `--threads` intra-op threads everywhere. The models take turns: each
model's runs come in `--blocks` blocks (each after `--warmup` untimed runs), alternating between models in a
rotating order, so that a shared machine's drift in speed (it moves by a third within minutes) reaches all of
them alike instead of whichever ran last. Per-page latency = batch time / batch size. Results go to
`benchmarks/results/latency.json` and a markdown table on stdout.

    .venv/bin/python benchmarks/latency.py --repeats 20
    .venv/bin/python benchmarks/latency.py --repeats 20 --model runs/funsd/best   # a trained model

Without `--model` our model is the MiniLM-size config with random weights (latency does not depend on them).
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from model.artifact import ArtifactMeta
from model.config import FUNSD_ENTITY_LABELS, LabelSet, ModelConfig, minilm_config
from model.features import INPUT_NAMES, load_tokenizer, vocab_sha256
from model.nn.network import EntityTagger
from model.onnx_meta import ENTITY_LOGITS, VARIANT_FILES
from model.runtime import open_session
from model.train.checkpoint import load_model, save_model
from model.train.export import example_inputs, export_onnx, tool_versions
from model.train.minilm import minilm_tokenizer_path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latency.json"
TEXT_TOKENS = 512
BASELINE = "torch-fp32"

Call = Callable[[], object]


def interleaved_times(
    calls: Mapping[str, Call], repeats: int, warmup: int, blocks: int
) -> dict[str, list[float]]:
    """Each call's times in ms: `repeats` per call, taken in `blocks` blocks per call that alternate between
    the calls (starting one call further on each time). Each block starts with `warmup` untimed calls, so
    that every timed call runs with its own caches and threads warm, as in a serving process, while the
    machine's drift over the run reaches every model alike."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    per_block = [len(part) for part in np.array_split(np.arange(repeats), blocks)]
    for block, count in enumerate(per_block):
        shift = block % len(names)
        for name in names[shift:] + names[:shift]:
            for _ in range(warmup):
                calls[name]()
            for _ in range(count):
                started = time.perf_counter()
                calls[name]()
                times[name].append(1000 * (time.perf_counter() - started))
    return times


def full_inputs(config: ModelConfig, batch: int) -> dict[str, np.ndarray]:
    """`batch` unpadded rows of TEXT_TOKENS tokens."""
    inputs = example_inputs(config, batch, TEXT_TOKENS, seed=batch)
    inputs["attention_mask"][:] = 1
    return inputs


def random_model_dir(directory: Path) -> Path:
    """A MiniLM-size tagger with random weights, saved as a model artifact."""
    torch.manual_seed(0)
    config, labels = minilm_config(), LabelSet(FUNSD_ENTITY_LABELS)
    tokenizer_path = minilm_tokenizer_path()
    meta = ArtifactMeta(config, labels, vocab_sha256(load_tokenizer(tokenizer_path)))
    return save_model(EntityTagger(config, labels.num_tags), meta, tokenizer_path, directory)


def torch_call(model: torch.nn.Module, inputs: Mapping[str, np.ndarray]) -> Call:
    tensors = {name: torch.from_numpy(inputs[name]) for name in INPUT_NAMES}

    def call() -> object:
        with torch.inference_mode():
            return model(**tensors)

    return call


def onnx_call(path: Path, inputs: Mapping[str, np.ndarray], threads: int) -> Call:
    session = open_session(path, threads)
    feeds = dict(inputs)
    return lambda: session.run([ENTITY_LOGITS], feeds)


def layoutlmv3_call(batch: int, num_labels: int, seed: int = 0) -> Call:
    """transformers' LayoutLMv3-base token classifier, random weights, 512 tokens, 224 x 224 image."""
    from transformers import LayoutLMv3Config, LayoutLMv3ForTokenClassification

    torch.manual_seed(seed)
    model = LayoutLMv3ForTokenClassification(
        LayoutLMv3Config(max_position_embeddings=514, num_labels=num_labels)
    ).eval()
    rng = np.random.default_rng(seed)
    corners = np.sort(rng.integers(0, 1001, size=(batch, TEXT_TOKENS, 2, 2)), axis=2)
    tensors = {
        "input_ids": torch.from_numpy(rng.integers(5, 50000, size=(batch, TEXT_TOKENS))),
        "bbox": torch.from_numpy(np.concatenate([corners[:, :, 0], corners[:, :, 1]], axis=-1)),
        "attention_mask": torch.ones(batch, TEXT_TOKENS, dtype=torch.long),
        "pixel_values": torch.from_numpy(rng.uniform(-1, 1, size=(batch, 3, 224, 224)).astype(np.float32)),
    }

    def call() -> object:
        with torch.inference_mode():
            return model(**tensors).logits

    return call


def calls_for(
    model: torch.nn.Module, onnx_dir: Path, config: ModelConfig, batch: int, args: argparse.Namespace
) -> dict[str, Call]:
    """Each timed call, all loaded at once (they take turns in blocks, `interleaved_times`)."""
    inputs = full_inputs(config, batch)
    calls = {
        BASELINE: torch_call(model, inputs),
        "onnx-fp32": onnx_call(onnx_dir / VARIANT_FILES["fp32"], inputs, args.threads),
        "onnx-int8": onnx_call(onnx_dir / VARIANT_FILES["int8"], inputs, args.threads),
    }
    if not args.skip_layoutlmv3:
        calls["layoutlmv3-base-torch-fp32"] = layoutlmv3_call(batch, model.classifier.out_features)
    return calls


def measure(model, onnx_dir: Path, config: ModelConfig, args: argparse.Namespace) -> list[dict]:
    rows = []
    for batch in args.batch_sizes:
        calls = calls_for(model, onnx_dir, config, batch, args)
        times = interleaved_times(calls, args.repeats, args.warmup, args.blocks)
        for name, batch_times in times.items():
            batch_ms = statistics.median(batch_times)
            quartiles = statistics.quantiles(batch_times, n=4) if len(batch_times) > 1 else [batch_ms] * 3
            rows.append(
                {
                    "model": name,
                    "batch": batch,
                    "batch_ms": round(batch_ms, 2),
                    "per_page_ms": round(batch_ms / batch, 2),
                    "per_page_quartiles_ms": [round(quartiles[0] / batch, 2), round(quartiles[2] / batch, 2)],
                }
            )
            print(f"  {name:28s} batch {batch}: {batch_ms / batch:9.1f} ms/page", flush=True)
    return with_ratios(rows)


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each row's per-page time relative to our torch fp32 at the same batch size (> 1 = slower)."""
    base = {r["batch"]: r["per_page_ms"] for r in rows if r["model"] == BASELINE}
    return [r | {"vs_torch_fp32": round(r["per_page_ms"] / base[r["batch"]], 3)} for r in rows]


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| model | batch | ms / page (median) | quartiles | vs our torch fp32 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        low, high = r["per_page_quartiles_ms"]
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['per_page_ms']:.1f} | {low:.1f}-{high:.1f} | "
            f"{r['vs_torch_fp32']:.2f}x |"
        )
    return "\n".join(lines)


def file_sizes_mb(onnx_dir: Path) -> dict[str, float]:
    return {v: round((onnx_dir / name).stat().st_size / 2**20, 1) for v, name in VARIANT_FILES.items()}


def cpu_description() -> dict:
    """The CPU as Linux's /proc/cpuinfo names it, with the vector extensions that set our kernels' speed. The
    model name alone hides the generation ("AMD EPYC"); the family tells it (AMD: 25 = Zen 3/4, 26 = Zen 5).
    Hosts of one model name differ: the same int8 graph took 56 ms per page on one and 35 ms on another."""
    info: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        key, _, value = line.partition(":")
        if not line.strip():
            break  # the first processor is enough
        info.setdefault(key.strip(), value.strip())
    flags = set(info.get("flags", "").split())
    return {
        "model_name": info.get("model name", platform.processor()),
        "family": info.get("cpu family"),
        "model": info.get("model"),
        "vector_flags": sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "avx_vnni"))),
    }


def settings(args: argparse.Namespace, model_source: str, onnx_dir: Path) -> dict:
    return {
        "text_tokens": TEXT_TOKENS,
        "visual_tokens": {"ours": minilm_config().num_visual_tokens, "layoutlmv3-base": 197},
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "blocks": args.blocks,
        "model": model_source,
        "onnx_file_mb": file_sizes_mb(onnx_dir),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "cpu": cpu_description()},
        "versions": tool_versions(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before each block")
    parser.add_argument("--blocks", type=int, default=4, help="blocks per model, alternating between models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--model", type=Path, default=None, help="a saved model folder (default: random)")
    parser.add_argument("--skip-layoutlmv3", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as work:
        model_dir = args.model or random_model_dir(Path(work) / "model")
        model, meta = load_model(model_dir)
        print(f"exporting {model_dir} ...", flush=True)
        export_onnx(model_dir, Path(work) / "onnx")
        rows = measure(model, Path(work) / "onnx", meta.config, args)
        source = str(args.model) if args.model else "random MiniLM-size (model.config.minilm_config)"
        payload = {"settings": settings(args, source, Path(work) / "onnx"), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(rows))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
