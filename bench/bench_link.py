"""Benchmark: link 1M posts from 300k authors against a 100k-account registry; prints posts/s.

Target (issue 5): >= 50,000 posts/s. Exact lookups (user id, handle, profile URL) are dict
hits; fuzzy name comparison runs only for authors whose bio names a registered instansi or
wilayah, and only against registry persons sharing a name word. The registry and the authors
are generated (invented names); about 10% of unregistered authors name a registered region in
their bio and share first names with registered people, so the fuzzy path is exercised.

Reported: posts/s through `Linker.match` (cached per distinct author, as in a run), and the
cold rate over distinct authors (every author computed once, no cache).
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter

from pipeline.linker import Linker
from pipeline.registry import RegistryAccount

SEED = 20240214
REGISTRY_ACCOUNTS = 100_000
AUTHORS = 300_000
POSTS = 1_000_000
TARGET = 50_000


def words(text: str) -> list[str]:
    """A word list written as text."""
    return text.split()


FIRST = words(
    "budi siti agus dewi sri eko rina joko wahyu nur yuli dedi ahmad rudi fitri hendra lilis "
    "bayu mega teguh andi ratih slamet novita sugeng endah arif yanti ferry dian hanif rahmat "
    "putri dimas larasati bejo rizky nining asep darto ucup nadia tono ayu mardi ika rahayu "
    "bambang susilo wulan citra hadi prakoso agung sari indah kartika lestari yusuf maulana"
)
LAST = words(
    "santoso wahyuningsih kurniawan siregar gunawan marlina fauzi rahmawati hidayat anggraini "
    "prasetyo hidayah hartono handayani saputra suryani nugroho maulana puspita wibowo permata "
    "riyadi sari riyanto purwaningsih hakim kemenag kurniadi safitri hidayatullah lestari "
    "aditya wijaya setiawan sukaesih rahayu pangestu harahap kusumawati salim susanto utomo "
    "pratama nasution lubis simanjuntak tanjung sembiring ginting manurung panjaitan sitompul"
)
SYLLABLES = words("ka ri mu sa to wa ne li po da ja me ru bi go ha")
PLATFORMS = ("x", "facebook", "instagram", "tiktok", "youtube")
AGENCY_KINDS = (
    "Dinas Pendidikan",
    "Dinas Kesehatan",
    "Dinas Perhubungan",
    "Kecamatan",
    "BPS",
    "Bappeda",
    "Kantor Kemenag",
)


def region_names(rng: random.Random, count: int) -> list[str]:
    """Invented regency names of two syllable-words ("Kab. Sarimu Toja")."""
    names: set[str] = set()
    while len(names) < count:
        words = [
            "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title()
            for _ in range(2)
        ]
        names.add(" ".join(words))
    return sorted(names)


def build_registry(rng: random.Random) -> tuple[list[RegistryAccount], list[str]]:
    """100k invented accounts of about 80k people across 300 regencies."""
    regions = region_names(rng, 300)
    accounts: list[RegistryAccount] = []
    person = 0
    while len(accounts) < REGISTRY_ACCOUNTS:
        person += 1
        region = rng.choice(regions)
        nama = f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
        if rng.random() < 0.4:
            nama += f" {rng.choice(LAST).title()}"
        instansi = f"{rng.choice(AGENCY_KINDS)} Kab. {region}"
        for _ in range(1 if rng.random() < 0.75 else 2):
            number = len(accounts)
            platform = PLATFORMS[number % len(PLATFORMS)]
            mode = rng.random()
            handle = f"asn{number}_{nama.split()[0].lower()}"
            accounts.append(
                RegistryAccount(
                    id=number + 1,
                    nip=f"{person:018d}",
                    nama=nama,
                    instansi=instansi,
                    wilayah=f"Kab. {region}",
                    platform=platform,
                    handle=handle if mode < 0.85 else None,
                    user_id=str(10**9 + number) if mode < 0.6 else None,
                    url_handle=handle if mode >= 0.85 else None,
                )
            )
            if len(accounts) >= REGISTRY_ACCOUNTS:
                break
    return accounts, regions


Author = tuple[str, str | None, str | None, str | None, str | None, str | None]


def build_authors(
    rng: random.Random, accounts: list[RegistryAccount], regions: list[str]
) -> list[Author]:
    """300k authors: registered (by id, handle, URL), possible matches, self-declared, others."""
    authors: list[Author] = []
    for number in range(AUTHORS):
        roll = rng.random()
        platform = PLATFORMS[number % len(PLATFORMS)]
        if roll < 0.12:
            account = rng.choice(accounts)
            renamed = rng.random() < 0.1
            handle = f"baru{number}" if renamed else (account.handle or account.url_handle)
            author_id = account.user_id or str(5 * 10**9 + number)
            authors.append((account.platform, author_id, handle, account.nama, "", None))
        elif roll < 0.14:
            account = rng.choice(accounts)
            bio = (
                f"Guru di {account.instansi}" if rng.random() < 0.5 else "warga " + account.wilayah
            )
            name = account.nama + (" S.Pd" if rng.random() < 0.5 else "")
            authors.append((platform, str(6 * 10**9 + number), f"p{number}", name, bio, None))
        elif roll < 0.17:
            bio = rng.choice(("ASN Pemkab | abdi negara", "Guru PNS SD", "PNS Dinkes"))
            authors.append((platform, str(7 * 10**9 + number), f"s{number}", "Someone", bio, None))
        else:
            name = f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
            bio = (
                f"warga Kab. {rng.choice(regions)}"
                if rng.random() < 0.1
                else rng.choice(("pecinta kopi", "mahasiswa", "", "jualan online", "ibu 2 anak"))
            )
            authors.append((platform, str(8 * 10**9 + number), f"u{number}", name, bio, None))
    return authors


def main() -> int:
    """Build the registry and authors, then time linking; prints the figures."""
    rng = random.Random(SEED)
    accounts, regions = build_registry(rng)
    authors = build_authors(rng, accounts, regions)
    posts = [rng.randrange(AUTHORS) for _ in range(POSTS)]

    began = time.perf_counter()
    linker = Linker(accounts)
    built = time.perf_counter() - began
    print(f"registry index: {len(accounts):,} accounts in {built:.2f} s")

    uncached = Linker(accounts, cache_size=1)  # a one-entry cache: every author computed
    began = time.perf_counter()
    for author in authors:
        uncached.match(*author)
    cold = time.perf_counter() - began
    print(f"cold, distinct authors: {AUTHORS / cold:,.0f} authors/s ({cold:.2f} s)")

    linker = Linker(accounts)
    levels: Counter[str | None] = Counter()
    match = linker.match
    began = time.perf_counter()
    for index in posts:
        levels[match(*authors[index]).level] += 1
    elapsed = time.perf_counter() - began
    rate = POSTS / elapsed
    print(
        f"link {POSTS:,} posts from {AUTHORS:,} authors: {rate:,.0f} posts/s ({elapsed:.2f} s); "
        f"target >= {TARGET:,} posts/s: {'met' if rate >= TARGET else 'NOT met'}"
    )
    print("levels: " + ", ".join(f"{level or 'none'}={count:,}" for level, count in levels.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
