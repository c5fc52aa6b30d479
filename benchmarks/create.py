"""Creation figure: contacts created one by one with `POST /api/v1/contacts`, each with a
new phone number, by wrk (Debian's package: a C load generator, so that the client's own
cost stays small) at several concurrencies for a fixed time, against a real `kontak serve`.

    python -m benchmarks.create [--seconds 10] [--concurrency 1 8 32] [--postgres URL]

On an empty database (`make bench` runs it on the N contacts of the search figures).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.harness import Figure, Kontak, Server, print_table

LUA = r"""
local counter = 0
local id = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  id = wrk.thread:get("id")
end
request = function()
  counter = counter + 1
  local n = id * 10000000 + counter + %(offset)d
  local body = string.format('{"name":"Baru %%d","phone":"0899%%08d"}', n, n)
  return wrk.format("POST", "/api/v1/contacts", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(token)s",
  }, body)
end
"""


def figures(
    kontak: Kontak,
    server: Server,
    seconds: int,
    concurrencies: list[int],
    engine: str = "SQLite",
) -> list[Figure]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return [Figure("POST /contacts", 0, 0, "skipped", "wrk is not installed (make bench)")]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, connections in enumerate(concurrencies):
            script = Path(tmp) / f"create{i}.lua"
            script.write_text(LUA % {"offset": i * 1_000_000, "token": server.token})
            threads = min(connections, 2)
            done = subprocess.run(
                [
                    wrk,
                    *("-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"),
                    *("--latency", "-s", str(script), server.base),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            text = done.stdout
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
            p99 = re.search(r"99%\s+([\d.]+\w+)", text).group(1)  # type: ignore[union-attr]
            p50 = re.search(r"50%\s+([\d.]+\w+)", text).group(1)  # type: ignore[union-attr]
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
            total = re.search(r"(\d+) requests in", text).group(1)  # type: ignore[union-attr]
            out.append(
                Figure(
                    f"POST /contacts, {engine}, {connections} connection(s)",
                    int(total),
                    1,
                    f"{rate:,.0f} req/s",
                    f"p50 {p50}, p99 {p99}; non-2xx {errors.group(1) if errors else 0}; "
                    f"wrk -t{threads} -c{connections} -d{seconds}s",
                    "≥ 500 req/s, p99 ≤ 50 ms",
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--postgres", help="admin URL: create on a new PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kontak = Kontak(Path(tmp), args.postgres)
        try:
            with kontak.serve() as server:
                engine = "PostgreSQL" if args.postgres else "SQLite"
                print_table(figures(kontak, server, args.seconds, args.concurrency, engine))
        finally:
            kontak.drop()


if __name__ == "__main__":
    main()
