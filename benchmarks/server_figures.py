"""Figures measured over HTTP on loopback against a real `kontak serve` (SQLite):
list/search latency (p50/p95 over many requests), export time and server memory, and the
rate of contact creation one by one.

    python -m benchmarks.server_figures --rows 100000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2

from benchmarks.generate import rows, write_csv
from benchmarks.import_csv import prepare, tree_rss_kb


def kontak(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kontak.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed_get(http: httpx2.Client, path: str, params: dict[str, str], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        response = http.get(path, params=params)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return times


def _sample_rss(pid: int, done: threading.Event, peak: list[int]) -> None:
    while not done.is_set():
        peak[0] = max(peak[0], tree_rss_kb(pid))
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--creates", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "KONTAK_DATA_DIR": str(work / "data"), "NO_COLOR": "1"}
        env.pop("KONTAK_DATABASE_URL", None)
        prepare(env)
        token = kontak(env, "token", "create", "bench@contoh.id").stdout.strip()
        csv_path = write_csv(work / "seed.csv", args.rows)
        kontak(env, "import", str(csv_path), "--org", "bench")
        sample = rows(args.rows)

        port = 18000 + random.randint(0, 999)
        server = subprocess.Popen(
            [sys.executable, "-m", "kontak.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx2.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx2.TransportError:
                    time.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx2.Client(base_url=base, headers=headers, timeout=120) as http:
                target = sample[len(sample) // 2]
                queries = {
                    "exact phone": {"q": target[2]},
                    "exact email": {"q": target[1]},
                    "name prefix": {"q": target[0].split()[0][:4]},
                    "name substring": {"q": target[0].split()[1][2:6]},
                    "tag filter": {"tag": "vip"},
                    "first page": {},
                }
                print(f"contacts stored: {args.rows:,}  (requests per query: {args.requests})")
                for label, params in queries.items():
                    times = timed_get(http, "/api/v1/contacts", params, args.requests)
                    print(
                        f"GET /contacts {label:15s} p50 {statistics.median(times):7.1f} ms  p95 {percentile(times, 95):7.1f} ms"
                    )

                for fmt in ("csv", "xlsx"):
                    peak = [0]
                    done = threading.Event()
                    sampler = threading.Thread(target=_sample_rss, args=(server.pid, done, peak))
                    sampler.start()
                    start = time.perf_counter()
                    size = 0
                    with http.stream(
                        "GET", "/api/v1/contacts/export", params={"format": fmt}
                    ) as response:
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                    elapsed = time.perf_counter() - start
                    done.set()
                    sampler.join()
                    print(
                        f"export {fmt:4s}: {elapsed:6.1f} s, {size / 1e6:.0f} MB, server peak RSS {peak[0] / 1024:.0f} MB"
                    )

            local = threading.local()

            def create(i: int) -> float:
                # One keep-alive client per thread, as an integration would hold: a new
                # client per request costs ~30 ms of its own (it builds an SSL context).
                if not hasattr(local, "client"):
                    local.client = httpx2.Client(base_url=base, headers=headers, timeout=60)
                start = time.perf_counter()
                response = local.client.post(
                    "/api/v1/contacts", json={"name": f"Baru {i}", "phone": f"0899{i:08d}"}
                )
                response.raise_for_status()
                return (time.perf_counter() - start) * 1000

            create(999_999)  # warm-up: the first phone loads libphonenumber's region data
            for concurrency in (1, 8):
                start = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    offset = concurrency * 1_000_000
                    latencies = list(pool.map(create, range(offset, offset + args.creates)))
                elapsed = time.perf_counter() - start
                print(
                    f"POST /contacts x{args.creates} at concurrency {concurrency}: {args.creates / elapsed:6.0f} req/s, p99 {percentile(latencies, 99):6.1f} ms, max {max(latencies):6.0f} ms (httpx2, one keep-alive client per thread)"
                )
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
