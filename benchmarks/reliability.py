"""The long reliability checks, in one script: mutated model folders, schema fuzzing of the server, and a soak.

    python benchmarks/reliability.py [--mutants 1000] [--fuzz-examples 300] [--soak 1000] [--no-write]

1. Mutants (``benchmarks/fuzz_models.py``): every file of ``models/shapes-default`` mutated (truncation, empty,
   huge header length, garbage header, wrong shape and dtype, NaN/inf weights, non-JSON, wrong JSON types,
   missing and extra keys, missing files, symlink loops, pickles beside the weights), each loaded through the real
   CLI (``lvg generate``) in a forked child with a timeout. Counted: clear one-line errors, harmless exits,
   tracebacks, hangs, signals.
2. Schema fuzzing: schemathesis generates requests for every operation in ``/openapi.json`` of a server on
   127.0.0.1 serving a tiny untrained one-stage model (it can caption; the shipped model answers captions with 501);
   counted: responses by status (target: no 5xx).
3. Soak: ``--soak`` requests from 4 clients against ``lvg serve`` (a subprocess on 127.0.0.1, the shipped
   model); the server's resident memory after the first 100 and after the last request, and latency p50/p99 of
   the first 100 and the last 100 requests.

Writes the "reliability" section of BENCHMARKS.md (``benchmarks/_report.py``) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "shapes-default"
sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------------- 1. mutants


def mutants(limit: int | None, timeout: float = 60.0) -> dict[str, Any]:
    from fuzz_models import all_mutants, run_mutants, summarize

    todo = all_mutants(MODEL)
    if limit is not None and limit < len(todo):
        step = len(todo) / limit
        todo = [todo[int(i * step)] for i in range(limit)]
    t0 = time.perf_counter()
    results = run_mutants(todo, MODEL, timeout=timeout)
    by_kind: dict[str, dict[str, int]] = {}
    for r in results:
        kind = by_kind.setdefault(r.mutant.split(":")[0], {})
        kind[r.verdict] = kind.get(r.verdict, 0) + 1
    return {"mutants": len(results), "seconds": time.perf_counter() - t0, "counts": summarize(results),
            "by_kind": by_kind,
            "kinds": len({r.mutant.split(":")[0] for r in results}),
            "files": len({r.mutant.split(":")[1] for r in results}),
            "failures": [r.__dict__ for r in results if not r.verdict.startswith("ok")][:20]}  # fmt: skip


# ---------------------------------------------------------------------- 2. schema fuzzing


class ThreadServer:
    """uvicorn serving ``app`` on a free 127.0.0.1 port, on a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadServer:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not become ready in 120 s")

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def schema_fuzz(pipeline: Any = None, max_examples: int = 100, api_key: str | None = None) -> dict[str, Any]:
    """Schemathesis over every operation of ``/openapi.json`` (positive and negative examples, bounded), against a
    server on 127.0.0.1 (``pipeline``: a loaded one; None: the test suite's fake). Returns counts by status."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    from lvg.serve.app import ServeSettings, create_app

    if pipeline is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_serve import FakePipeline

        pipeline = FakePipeline()
    statuses: dict[str, dict[int, int]] = {}
    errors: list[str] = []
    app = create_app(ServeSettings(rate_limit_per_minute=0, request_timeout_s=30, max_wait_ms=0), pipeline)
    t0 = time.perf_counter()
    with ThreadServer(app) as srv:
        schema = schemathesis.openapi.from_url(srv.url + "/openapi.json")
        for result in schema.get_all_operations():
            op = result.ok()

            @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate], database=None)  # fmt: skip
            @given(case=op.as_strategy())
            def run(case: Any) -> None:
                r = case.call(base_url=srv.url, timeout=60)
                counts = statuses.setdefault(case.operation.label, {})
                counts[r.status_code] = counts.get(r.status_code, 0) + 1
                if r.status_code >= 500 and len(errors) < 10:
                    errors.append(f"{case.operation.label} {r.status_code}: {str(case.body)[:200]!r} -> {r.text[:200]}")

            run()
        statuses["POST /v1/captions (image bytes)"] = upload_fuzz(srv.url, max_examples)
    total = sum(sum(c.values()) for c in statuses.values())
    server_errors = sum(n for c in statuses.values() for s, n in c.items() if s >= 500)
    return {"operations": statuses, "requests": total, "server_errors": server_errors, "examples": errors,
            "seconds": time.perf_counter() - t0}  # fmt: skip


def upload_fuzz(url: str, n: int, seed: int = 0) -> dict[int, int]:
    """``n`` image uploads that get past the content-type check: valid PNG/JPEG/GIF/WebP of random sizes, truncated
    and bit-flipped ones, random bytes, and a PNG header declaring 20000x20000 pixels. Returns counts by status."""
    import io
    import random
    import struct
    import zlib

    import httpx
    from PIL import Image

    rng = random.Random(seed)
    counts: dict[int, int] = {}
    bomb = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb += struct.pack(">I", zlib.crc32(bomb[12:29])) + b"\x00" * 16
    for i in range(n):
        fmt, ctype = rng.choice([("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"),
                                 ("WEBP", "image/webp")])  # fmt: skip
        buf = io.BytesIO()
        Image.new("RGB", (rng.randint(1, 300), rng.randint(1, 300)), tuple(rng.randrange(256) for _ in "rgb")).save(
            buf, format=fmt
        )
        data = bytearray(buf.getvalue())
        kind = i % 5
        if kind == 1:
            data = data[: rng.randint(0, len(data))]
        elif kind == 2:
            for _ in range(8):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 3:
            data = bytearray(rng.randbytes(rng.randint(0, 4096)))
        elif kind == 4 and i % 10 == 4:
            data, ctype = bytearray(bomb), "image/png"
        r = httpx.post(url + "/v1/captions", files={"file": ("x", bytes(data), ctype)},
                       data={"lang": rng.choice(["en", "zh"])}, timeout=60)  # fmt: skip
        counts[r.status_code] = counts.get(r.status_code, 0) + 1
    return counts


# ---------------------------------------------------------------------- 3. soak


def soak(requests: int, clients: int = 4) -> dict[str, Any]:
    """``requests`` generations from ``clients`` concurrent clients against a real ``lvg serve`` (shipped model)."""
    import httpx
    from load_test import Server, percentile, proc_status

    prompts = [json.loads(line)["en"] for line in (ROOT / "benchmarks" / "shapes_prompts.jsonl").open()][:50]
    latencies: list[tuple[int, float]] = []  # (request index, seconds)
    statuses: dict[int, int] = {}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, Server(MODEL, True, ["--rate-limit", "0"], Path(tmp)) as srv:
        rss["ready"] = proc_status(srv.proc.pid).get("VmRSS", float("nan"))

        async def main() -> None:
            counter = iter(range(requests))
            async with httpx.AsyncClient(timeout=60) as client:

                async def worker() -> None:
                    for i in counter:
                        t0 = time.perf_counter()
                        r = await client.post(srv.url + "/v1/images/generations",
                                              json={"prompt": prompts[i % len(prompts)], "seed": i})  # fmt: skip
                        latencies.append((i, time.perf_counter() - t0))
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if len(latencies) == 100:
                            rss["after_100"] = proc_status(srv.proc.pid).get("VmRSS", float("nan"))

                await asyncio.gather(*(worker() for _ in range(clients)))

        t0 = time.perf_counter()
        asyncio.run(main())
        seconds = time.perf_counter() - t0
        rss["end"] = proc_status(srv.proc.pid).get("VmRSS", float("nan"))
        rss["peak"] = proc_status(srv.proc.pid).get("VmHWM", float("nan"))
    ordered = [s for _, s in sorted(latencies)]
    first, last = ordered[:100], ordered[-100:]
    return {"requests": len(latencies), "clients": clients, "seconds": seconds, "statuses": statuses, "rss_mib": rss,
            "growth": rss["end"] / rss["after_100"] - 1,
            "first_100": {"p50": percentile(first, 50), "p99": percentile(first, 99)},
            "last_100": {"p50": percentile(last, 50), "p99": percentile(last, 99)}}  # fmt: skip


# ---------------------------------------------------------------------- report


def report(m: dict | None, f: dict | None, s: dict | None, cmd: str) -> str:
    lines = [f"Command: `{cmd}` (`OMP_NUM_THREADS=1`; one core shared with a training job).", ""]
    if m is not None:
        c = m["counts"]
        bad = {k: v for k, v in c.items() if not k.startswith("ok")}
        lines += ["**Mutated model folders** (`benchmarks/fuzz_models.py`, each loaded by `lvg generate` in a forked "
                  "child, 60 s timeout, 2 GiB address-space budget):", "",
                  "| mutants | kinds | files | clear one-line error | harmless (exit 0, image written) | "
                  "tracebacks | hangs | signals | other failures | seconds |", "|---|---|---|---|---|---|---|---|---|---|",
                  f"| {m['mutants']} | {m['kinds']} | {m['files']} | {c.get('ok-error', 0)} | {c.get('ok-exit0', 0)} | "
                  f"{c.get('traceback', 0)} | {c.get('hang', 0)} | {c.get('signal', 0)} | "
                  f"{sum(v for k, v in bad.items() if k not in ('traceback', 'hang', 'signal'))} "
                  f"| {m['seconds']:.0f} |", ""]  # fmt: skip
        lines += ["| mutation | mutants | clear error | harmless exit 0 | failures |", "|---|---|---|---|---|"]
        for kind, counts in sorted(m["by_kind"].items(), key=lambda kv: -sum(kv[1].values())):
            fails = sum(v for k, v in counts.items() if not k.startswith("ok"))
            lines.append(f"| {kind} | {sum(counts.values())} | {counts.get('ok-error', 0)} | "
                         f"{counts.get('ok-exit0', 0)} | {fails} |")  # fmt: skip
        lines.append("")
        for fail in m["failures"][:5]:
            lines.append(f"- failure `{fail['mutant']}` ({fail['verdict']}): `{fail['stderr'][-200:]}`")
        lines.append("")
    if f is not None:
        lines += ["**Schema fuzzing** (schemathesis over `/openapi.json`, positive and negative examples, on "
                  "127.0.0.1, serving an untrained tiny one-stage model so that `/v1/captions` runs too; the last row: as "
                  "many uploads of valid, truncated, bit-flipped and random image bytes and a 20000x20000 PNG header):", "", "| operation | responses by status |", "|---|---|"]  # fmt: skip
        for op, counts in f["operations"].items():
            lines.append(f"| `{op}` | {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))} |")
        lines += ["", f"{f['requests']} requests in {f['seconds']:.0f} s; **5xx: {f['server_errors']}**.", ""]
    if s is not None:
        r = s["rss_mib"]
        lines += [f"**Soak**: {s['requests']} requests from {s['clients']} clients in {s['seconds']:.0f} s against "
                  f"`lvg serve` (the shipped model, 127.0.0.1); statuses {s['statuses']}.", "",
                  "| | after startup | after 100 requests | after the last | peak |", "|---|---|---|---|---|",
                  f"| server RSS (MiB) | {r['ready']:.0f} | {r['after_100']:.0f} | {r['end']:.0f} | {r['peak']:.0f} |",
                  "", f"Memory growth from request 100 to the end: **{100 * s['growth']:+.1f}%** (from startup, "
                  f"warm-up included: {100 * (r['end'] / r['ready'] - 1):+.1f}%).", "",
                  "| latency (ms) | p50 | p99 |", "|---|---|---|",
                  f"| first 100 requests | {1000 * s['first_100']['p50']:.0f} | {1000 * s['first_100']['p99']:.0f} |",
                  f"| last 100 requests | {1000 * s['last_100']['p50']:.0f} | {1000 * s['last_100']['p99']:.0f} |",
                  ""]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mutants", type=int, default=1000, help="mutants to run (0: skip)")
    p.add_argument("--fuzz-examples", type=int, default=300, help="schemathesis examples per operation (0: skip)")
    p.add_argument("--soak", type=int, default=1000, help="soak requests (0: skip)")
    p.add_argument("--no-write", action="store_true", help="print, do not write BENCHMARKS.md")
    args = p.parse_args()
    m = mutants(args.mutants) if args.mutants else None
    if m is not None:
        print(json.dumps({k: v for k, v in m.items() if k != "failures"}), flush=True)
    f = None
    if args.fuzz_examples:  # a model that can caption, so /v1/captions runs its real path (the shipped one: 501)
        from load_test import build_untrained_model

        from lvg.pipelines import load_pipeline

        with tempfile.TemporaryDirectory() as tmp:
            f = schema_fuzz(load_pipeline(build_untrained_model(Path(tmp) / "tiny", "tiny")), args.fuzz_examples)
        print(json.dumps(f, default=str), flush=True)
    s = soak(args.soak) if args.soak else None
    if s is not None:
        print(json.dumps(s), flush=True)
    cmd = "python benchmarks/reliability.py " + " ".join(sys.argv[1:])
    body = report(m, f, s, cmd.strip())
    print(body)
    if not args.no_write:
        from _report import write_section

        write_section("reliability", "## Reliability (`python benchmarks/reliability.py`)\n\n" + body)
    failed = (m and any(not k.startswith("ok") for k in m["counts"])) or (f and f["server_errors"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
