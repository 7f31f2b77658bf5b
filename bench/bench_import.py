"""Benchmark: import 100k generated posts into SQLite; prints posts/s and peak memory.

Target (issue 2): >= 20,000 posts/s with memory flat in the number of posts (streamed,
batched). Peak memory is measured with tracemalloc for 20k and 100k posts to show flatness.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.importer import import_files
from pipeline.store import Store

WORDS = [
    "pak",
    "camat",
    "apel",
    "pagi",
    "pelayanan",
    "ktp",
    "warga",
    "desa",
    "coblos",
    "nomor",
    "dua",
    "mantap",
    "lanjutkan",
    "banjir",
    "macet",
    "kopi",
]


def generate(path: Path, count: int) -> None:
    """Write `count` invented posts as JSON Lines."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            text = " ".join(WORDS[(number * 7 + k) % len(WORDS)] for k in range(12)) + f" #{number}"
            record = {
                "platform": "x",
                "post_id": str(10_000_000 + number),
                "url": f"https://x.com/akun{number % 5000}/status/{10_000_000 + number}",
                "author_id": str(number % 5000),
                "author_handle": f"akun{number % 5000}",
                "author_name": f"Akun {number % 5000}",
                "author_bio": "warga biasa",
                "text": text,
                "created_at": (start + timedelta(seconds=number)).isoformat(),
                "parent_id": None,
                "kind": "post",
                "lang": "id",
                "metrics": {"likes": number % 50},
                "raw": {"id": str(10_000_000 + number)},
            }
            handle.write(json.dumps(record) + "\n")


def measure(count: int, workdir: Path) -> tuple[float, float]:
    """Import `count` posts into a fresh SQLite store; returns (posts/s, peak RSS MiB)."""
    source = workdir / f"posts_{count}.jsonl"
    generate(source, count)
    store = Store(f"sqlite:///{workdir / f'bench_{count}.db'}")
    store.upgrade()
    began = time.perf_counter()
    report = import_files(store, [str(source)])
    elapsed = time.perf_counter() - began
    store.close()
    assert report.files[0].inserted == count, report
    # ru_maxrss is KiB on Linux; measured in a fresh process per size so peaks compare.
    return count / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(count: int) -> int:
    """Measure one size in this process and print `rate peak`."""
    with tempfile.TemporaryDirectory() as tmp:
        rate, peak = measure(count, Path(tmp))
    print(f"{rate} {peak}")
    return 0


def main() -> int:
    """Run the import benchmark (each size in its own process) and print its figures."""
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(int(sys.argv[2]))
    results = {}
    for count in (20_000, 100_000):
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(count)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        results[count] = (float(output[0]), float(output[1]))
        print(
            f"import {count // 1000}k posts into SQLite: {results[count][0]:,.0f} posts/s, "
            f"peak RSS {results[count][1]:.0f} MiB"
        )
    growth = results[100_000][1] / results[20_000][1]
    print(f"peak memory 20k -> 100k: x{growth:.2f} (flat = streamed); target >= 20,000 posts/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
