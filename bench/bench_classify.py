"""Benchmark the classifier: posts/s and peak memory scoring 100k generated posts.

Also measures, in the same run, the naive baseline of running Sastrawi's `stem()` over each
whole text, and checks that memory stays flat when `netra classify` streams a large file.
Run with `make bench` (or `python bench/bench_classify.py [--posts N]`). Uses the shipped model.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

# One core: keep numerical libraries from spreading work over threads (set before importing).
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifiers.corpus import load_corpus  # noqa: E402
from classifiers.model import current_model_dir, load_model  # noqa: E402
from classifiers.normalize import normalize_word, stem  # noqa: E402
from classifiers.profiles import load_profiles  # noqa: E402
from pipeline.classify import CORPUS_DIR, classify_file  # noqa: E402
from pipeline.progress import Progress  # noqa: E402

EXTRAS = ["#Pemilu2024", "#PrabowoGibran", "#AMIN", "@user", "https://t.co/x1", "✌️", "☝", "🔥",
          "no 2", "nomor urut 3", "01", "wkwkwk", "bangeeet", "gak", "yg", "anak2", "😂", "#BersamaBE"]  # fmt: skip


def generate_posts(count: int, seed: int = 7) -> list[str]:
    """Posts recombined from seed-corpus words, with typos and extras, so caches also miss."""
    rng = random.Random(seed)
    words = [w for text in load_corpus(CORPUS_DIR).texts for w in text.split()]
    posts = []
    for _ in range(count):
        start = rng.randrange(len(words))
        chosen = words[start : start + rng.randint(8, 28)]
        out = []
        for word in chosen:
            roll = rng.random()
            if roll < 0.02:  # an unseen typo: doubled letter or dropped vowel
                i = rng.randrange(len(word))
                word = word[: i + 1] + word[i:] if roll < 0.01 else word.replace("a", "", 1)
            out.append(word)
        if rng.random() < 0.5:
            out.insert(rng.randrange(len(out) + 1), rng.choice(EXTRAS))
        posts.append(" ".join(out))
    return posts


class _RssProgress(Progress):
    def __init__(self) -> None:
        self.done = 0
        self.samples: list[tuple[int, float]] = []

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.done % 10000 < count:
            self.samples.append((self.done, current_rss_mb()))


def current_rss_mb() -> float:
    """Resident set size now, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> int:
    """Run the benchmark and print a short report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--baseline-sample", type=int, default=5000)
    args = parser.parse_args()

    profiles = load_profiles(ROOT / "config" / "elections")
    model = load_model(current_model_dir(ROOT / "models"), profiles)
    # Three disjoint sets: warm-up, then fresh posts for each measurement, so every measured
    # pass meets unseen typos and word combinations (cache misses) like a real stream does.
    warm_up = generate_posts(10_000, seed=1)
    posts = generate_posts(args.posts, seed=7)
    other = generate_posts(args.posts, seed=11)
    mean_chars = sum(map(len, posts)) / len(posts)
    print(f"model {model.version}; {len(posts):,} generated posts, {mean_chars:.0f} characters avg")
    print("throughput in CPU seconds of this process (one core; wall-clock in brackets)")

    model.score(warm_up)  # warm-up: first-call costs, common words in the caches
    # The two modes take turns, 1,000 posts at a time, so both meet equally warm caches.
    cpu = {True: 0.0, False: 0.0}
    wall = {True: 0.0, False: 0.0}
    for start in range(0, len(posts), 1000):
        for explain, sample in ((True, posts), (False, other)):
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            model.score(sample[start : start + 1000], explain=explain)
            cpu[explain] += time.process_time() - started_cpu
            wall[explain] += time.perf_counter() - started_wall
    for explain in (True, False):
        what = "score + explanation" if explain else "score only"
        print(
            f"{what:<40} {len(posts) / cpu[explain]:>9,.0f} posts/s "
            f"({len(posts) / wall[explain]:,.0f} wall, {len(posts):,} fresh posts)"
        )
    ours = len(posts) / cpu[True]

    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    # The naive design this one replaces: Sastrawi over each whole text, then the same
    # scikit-learn pipeline on the stemmed text (no word cache, no placeholders, no fast path).
    # Compared twice, on equal terms: both warmed on the same warm-up posts, and both cold.
    def naive(stemmer: object, sample: list[str]) -> tuple[float, float]:
        cpu = time.process_time()
        stemmed = [stemmer.stem(text) for text in sample]  # type: ignore[attr-defined]
        stem_only = len(sample) / (time.process_time() - cpu)
        data = np.empty(
            (len(stemmed), model.pipeline.named_steps["features"].n_features_in_), dtype=object
        )
        data[:, :2] = np.array(stemmed, dtype=object)[:, None]
        data[:, 2:] = ""  # the naive design has no stance cue stream
        model.pipeline.predict_proba(data)
        return stem_only, len(sample) / (time.process_time() - cpu)

    # Sastrawi's factory wraps its stemmer in a word cache of its own; without that cache,
    # every word of every text is stemmed again (the most literal "Sastrawi per whole text").
    uncached_sample = other[: max(1, args.baseline_sample // 5)]
    stem_uncached, naive_uncached = naive(
        StemmerFactory().create_stemmer().delegatedStemmer, uncached_sample
    )
    warm_stemmer = StemmerFactory().create_stemmer()
    for text in warm_up:
        warm_stemmer.stem(text)
    stem_warm, naive_warm = naive(warm_stemmer, other[: args.baseline_sample])
    cold_sample = generate_posts(args.baseline_sample, seed=17)
    stem_cold, naive_cold = naive(StemmerFactory().create_stemmer(), cold_sample)
    # ours from cold too: empty word and stem caches, a freshly loaded model
    normalize_word.cache_clear()
    stem.cache_clear()
    cold_model = load_model(current_model_dir(ROOT / "models"), profiles)
    cpu = time.process_time()
    for start in range(0, len(cold_sample), 1000):
        cold_model.score(cold_sample[start : start + 1000])
    ours_cold = len(cold_sample) / (time.process_time() - cpu)
    print(f"{'baseline, warm: Sastrawi stem() per text':<40} {stem_warm:>9,.0f} posts/s")
    print(f"{'baseline, warm: that + sklearn pipeline':<40} {naive_warm:>9,.0f} posts/s")
    print(f"{'baseline, cold: Sastrawi stem() per text':<40} {stem_cold:>9,.0f} posts/s")
    print(f"{'baseline, cold: that + sklearn pipeline':<40} {naive_cold:>9,.0f} posts/s")
    print(f"{'baseline, uncached: Sastrawi stem()':<40} {stem_uncached:>9,.0f} posts/s")
    print(f"{'baseline, uncached: that + sklearn':<40} {naive_uncached:>9,.0f} posts/s")
    print(f"{'ours, cold: score + explanation':<40} {ours_cold:>9,.0f} posts/s")
    print(
        f"speed-up, score + explanation vs the naive pipeline ({args.baseline_sample:,} posts): "
        f"warm {ours / naive_warm:.1f}x, cold {ours_cold / naive_cold:.1f}x; "
        f"vs Sastrawi alone: warm {ours / stem_warm:.1f}x, cold {ours_cold / stem_cold:.1f}x"
    )
    print(
        f"speed-up vs the naive pipeline with Sastrawi's uncached stemmer "
        f"({len(uncached_sample):,} posts): {ours / naive_uncached:.1f}x "
        f"(target 5x is judged against the cached baselines above)"
    )

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "posts.csv"
        with source.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text"])
            writer.writerows((f"b{i}", text) for i, text in enumerate(posts))
        progress = _RssProgress()
        classify_file(str(source), str(Path(folder) / "out.csv"), model=model, progress=progress)
        samples = progress.samples or [(progress.done, current_rss_mb())]  # short runs
        first, last = samples[0], samples[-1]
        print(
            f"streaming netra classify: RSS {first[1]:.0f} MiB after {first[0]:,} rows, "
            f"{last[1]:.0f} MiB after {last[0]:,} rows"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process): {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
