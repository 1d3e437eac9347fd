"""Sentences per second: cxrdata's batched RadGraph runner vs the radgraph package's one-at-a-time call.

The model is BERT-base-sized with random weights (the real DyGIE architecture, built in radgraph's own
format by tests/radgraph_tiny.py), so speed and memory are those of RadGraph-XL while the outputs are
meaningless. The sentences are synthetic, 4-30 words. Run by hand, not by CI:

    python benchmarks/radgraph_batching.py                       # CPU or GPU, whichever torch sees
    python benchmarks/radgraph_batching.py --device cpu --threads 1 --n 96 --n-reference 32

The runners take turns for ``--repeats`` rounds and each reports its best wall-clock and best CPU time
(``process_time``), so that load from other processes on a shared machine hits them alike; with
``--threads 1`` the CPU-time figure is nearly immune to such load (two torch threads on two busy cores
can be ten times slower than one). It also checks that the batched results equal the
package's on the reference sentences.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def synthetic_sentences(n: int, seed: int = 0) -> list[str]:
    """Seeded sentences of 4-30 words (mean about 12) from the tiny model's word list."""
    from radgraph_tiny import WORDS

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = min(30, max(4, int(rng.gauss(12, 6))))
        words = [rng.choice(WORDS) for _ in range(k)]
        if rng.random() < 0.3:
            words.insert(rng.randrange(1, k), f"{rng.randint(1, 9)}.{rng.randint(0, 9)}")
        out.append(" ".join(words).capitalize() + ".")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--n", type=int, default=256, help="sentences per batched run")
    parser.add_argument("--n-reference", type=int, default=64, help="sentences for the one-at-a-time run")
    parser.add_argument("--batch-sizes", default="1,8,32,64")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (CPUs may be shared)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--cache", type=Path, help="model cache to build into / reuse (default: a temp dir)")
    args = parser.parse_args()

    import torch
    from radgraph import RadGraph
    from radgraph_tiny import build_random_radgraph

    from cxrdata.extract.radgraph import _resolve_device, offline_hub
    from cxrdata.extract.radgraph_batch import BatchedRadGraph

    cache = args.cache or Path(tempfile.mkdtemp(prefix="radgraph-bench-"))
    if not (cache / "radgraph-xl" / "weights.th").is_file():
        t0 = time.perf_counter()
        build_random_radgraph(cache, size="base")
        print(f"built a BERT-base-size random RadGraph-XL in {time.perf_counter() - t0:.0f} s at {cache}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = _resolve_device(args.device)
    with offline_hub(), contextlib.redirect_stdout(io.StringIO()):
        rg = RadGraph(model_type="radgraph-xl", model_cache_dir=str(cache), cuda=cuda)
    on_gpu = rg.device.type == "cuda"
    name = torch.cuda.get_device_name(rg.device) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    n_params = sum(p.numel() for p in rg.model.parameters())
    print(f"device: {name}; model: {n_params / 1e6:.0f} M parameters; torch {torch.__version__}")

    sentences = synthetic_sentences(args.n)
    reference_sentences = sentences[: args.n_reference]
    words = sum(len(s.split()) for s in sentences) / len(sentences)
    print(f"{len(sentences)} sentences, {words:.1f} words on average\n")

    def sync() -> None:
        if on_gpu:
            torch.cuda.synchronize()

    sizes = [int(b) for b in args.batch_sizes.split(",")]
    runners = {size: BatchedRadGraph(rg, batch_size=size) for size in sizes}
    rg([sentences[0]])  # warm-up
    reference = [rg([s])["0"] for s in reference_sentences]
    identical = True
    for runner in runners.values():  # warm-up, and the results to compare
        result = runner(sentences)
        identical &= result.annotations[: len(reference)] == reference and not result.errors

    def one_at_a_time() -> None:
        for s in reference_sentences:
            rg([s])

    runs: dict[str, tuple[Callable[[], object], int]] = {
        "radgraph package, one at a time": (one_at_a_time, len(reference_sentences)),
        **{f"cxrdata batched, batch size {size}": (lambda r=runner: r(sentences), len(sentences))
           for size, runner in runners.items()},
    }
    # Rounds over all runners, best time of each: contention on a shared machine hits them alike.
    best = dict.fromkeys(runs, float("inf"))
    best_cpu = dict.fromkeys(runs, float("inf"))
    peaks: dict[str, float] = {}
    for _ in range(args.repeats):
        for label, (run, _n) in runs.items():
            if on_gpu:
                torch.cuda.reset_peak_memory_stats(rg.device)
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            sync()
            best[label] = min(best[label], time.perf_counter() - t0)
            best_cpu[label] = min(best_cpu[label], time.process_time() - c0)
            if on_gpu:
                peaks[label] = torch.cuda.max_memory_allocated(rg.device) / 2**30

    ref_label = next(iter(runs))
    ref_rate = runs[ref_label][1] / best[ref_label]
    ref_cpu_rate = runs[ref_label][1] / best_cpu[ref_label]
    print(f"{'runner':<36}{'sentences':>10}{'sent/s':>9}{'speed-up':>9}{'sent/CPU-s':>12}{'speed-up':>9}"
          + ("  GPU peak" if on_gpu else ""))
    for label, (_run, n) in runs.items():
        rate, cpu_rate = n / best[label], n / best_cpu[label]
        line = (f"{label:<36}{n:>10}{rate:>9.1f}{rate / ref_rate:>8.1f}x"
                f"{cpu_rate:>12.1f}{cpu_rate / ref_cpu_rate:>8.1f}x")
        print(line + (f"  {peaks[label]:.2f} GiB" if on_gpu else ""))
    print(f"\npeak process RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print(f"batched results identical to the package's on {len(reference)} sentences: {identical}")


if __name__ == "__main__":
    main()
