"""Load test of ``lvg serve``: concurrent clients against the real server, batching ON vs OFF.

    python benchmarks/load_test.py [--model DIR] [--clients 8] [--seconds 20] [--n 1] [--no-write]

For each mode the server is started as a subprocess (``python -m lvg.cli serve``) on a free 127.0.0.1 port,
warmed up, then ``--clients`` concurrent clients send ``POST /v1/images/generations`` requests (``n`` images
each, prompts from ``benchmarks/shapes_prompts.jsonl``) for ``--seconds`` seconds or ``--max-requests``
requests, whichever comes first. Reported: throughput (images/s, requests/s), latency percentiles, errors by
HTTP status (target: none), and the server's resident memory (VmRSS) before and after the load, plus its peak
(VmHWM). Writes the "serve-load" section of BENCHMARKS.md (machine and date included) and prints it.

The model defaults to ``models/shapes-default`` when it is a complete model folder; otherwise an untrained
model of the shipped architecture (``base`` LM preset, default image tokenizer) is built in a temporary
folder: generation always samples 64 image codes per image, so its speed does not depend on training.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _report import write_section

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "shapes-default"
PROMPTS = Path(__file__).resolve().parent / "shapes_prompts.jsonl"
ENDPOINT = "/v1/images/generations"


# ---------------------------------------------------------------------------------------------- model


def build_untrained_model(out: Path, arch: str) -> Path:
    """An untrained model folder: the shipped architecture (``base``) or the test suite's ``tiny`` one."""
    import torch

    from lvg.models.unified import VocabLayout, build_lm
    from lvg.pipelines.pipeline import Pipeline
    from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
    from lvg.tokenizers.text import load_text_tokenizer

    text_tok = load_text_tokenizer(DEFAULT_MODEL / "text_tokenizer")
    if arch == "tiny":
        img_cfg, preset = ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4]), "tiny"
    else:
        img_cfg, preset = ImageTokenizerConfig(), "base"  # configs/tokenizer-shapes.yaml, configs/llm-shapes.yaml
    img_tok = ImageTokenizer(img_cfg)
    layout = VocabLayout.from_tokenizers(text_tok, img_tok.codebook_size, img_cfg.grid**2, max_text_tokens=64)
    torch.manual_seed(0)
    return Pipeline(build_lm(layout, preset), img_tok, text_tok, layout).save_pretrained(out)


# ---------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process in MiB (from /proc/PID/status); empty where /proc is unavailable."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024  # kB -> MiB
    except (OSError, ValueError):
        pass
    return out


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by process ``pid``, or by the whole machine when None."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        if pid is None:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
            return (user + nice + system + irq + softirq + steal) / tick
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    except (OSError, ValueError, IndexError):
        return float("nan")


def serve_help() -> str:
    r = subprocess.run([sys.executable, "-m", "lvg.cli", "serve", "--help"], capture_output=True, text=True, cwd=ROOT)
    return r.stdout if r.returncode == 0 else ""


class Server:
    """``python -m lvg.cli serve`` on a free loopback port; logs go to a temporary file."""

    def __init__(self, model: Path, batching: bool, extra: list[str], log_dir: Path, ready_timeout: float = 300.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "lvg.cli", "serve", "--model", str(model), "--host", "127.0.0.1",
                    "--port", str(self.port), *([] if batching else ["--no-batching"]), *extra]  # fmt: skip
        self.log_path = log_dir / f"server-{'batching' if batching else 'no-batching'}.log"
        self.ready_timeout = ready_timeout

    def __enter__(self) -> Server:
        self.log = open(self.log_path, "w", encoding="utf-8")  # closed in __exit__
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:  # bounded wait for /readyz
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server not ready after {self.ready_timeout:.0f} s:\n{self.log_tail()}")

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful shutdown, as in a rolling deploy
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------- load


@dataclass
class Result:
    mode: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    statuses: dict[str, int] = field(default_factory=dict)
    images: int = 0
    rss: dict[str, float] = field(default_factory=dict)
    server_cores: float = float("nan")  # CPU cores the server used on average over the run
    other_cores: float = float("nan")  # CPU cores used by everything else but the server and this script

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def errors(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.statuses.items()) if k != "200"}


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]  # nearest rank


async def run_load(url: str, args, prompts: list[str], result: Result) -> None:
    budget = {"left": args.max_requests}
    counter = {"i": 0}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    timeout = httpx.Timeout(args.request_timeout, connect=10.0)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:

        async def one(seed: int, prompt: str) -> tuple[str, float]:
            body = {"prompt": prompt, "n": args.n, "size": args.size, "seed": seed, "response_format": "b64_json"}
            if args.guidance_scale is not None:
                body["guidance_scale"] = args.guidance_scale
            t = time.perf_counter()
            try:
                r = await http.post(ENDPOINT, json=body)
                status = str(r.status_code)
                if r.status_code == 200 and len(r.json()["data"]) != args.n:
                    status = "200-wrong-count"
            except httpx.TimeoutException:
                status = "client-timeout"
            except httpx.TransportError as e:
                status = type(e).__name__
            return status, time.perf_counter() - t

        # warm-up (not measured): one request per client, so every code path and buffer is touched
        await asyncio.gather(*(one(10**6 + i, prompts[i % len(prompts)]) for i in range(min(args.clients, 4))))

        start = time.perf_counter()
        deadline = start + args.seconds

        async def client() -> None:
            while time.perf_counter() < deadline and budget["left"] > 0:
                budget["left"] -= 1
                i = counter["i"]
                counter["i"] += 1
                status, latency = await one(i, prompts[i % len(prompts)])
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == "200":
                    result.latencies.append(latency)
                    result.images += args.n

        await asyncio.gather(*(client() for _ in range(args.clients)))
        result.seconds = time.perf_counter() - start


def measure(
    mode: str, batching: bool, model: Path, args, prompts: list[str], extra: list[str], log_dir: Path
) -> Result:
    result = Result(mode)
    with Server(model, batching, extra, log_dir) as server:
        before = proc_status(server.proc.pid)
        cpu0 = (cpu_seconds(), cpu_seconds(server.proc.pid), cpu_seconds(os.getpid()), time.perf_counter())
        asyncio.run(run_load(server.url, args, prompts, result))
        cpu1 = (cpu_seconds(), cpu_seconds(server.proc.pid), cpu_seconds(os.getpid()), time.perf_counter())
        after = proc_status(server.proc.pid)
        wall = cpu1[3] - cpu0[3]
        result.server_cores = (cpu1[1] - cpu0[1]) / wall
        result.other_cores = max(0.0, (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1]) - (cpu1[2] - cpu0[2])) / wall
        result.rss = {"before": before.get("VmRSS", float("nan")), "after": after.get("VmRSS", float("nan")),
                      "peak": after.get("VmHWM", float("nan"))}  # fmt: skip
        if server.proc.poll() is not None:
            result.statuses["server-died"] = 1
    return result


# ---------------------------------------------------------------------------------------------- report


def report(results: list[Result], args, model_note: str, server_cmd: str, notes: list[str]) -> str:
    rows = []
    for r in results:
        lat = [x * 1000 for x in r.latencies]
        errors = ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "0"
        rows.append(
            f"| {r.mode} | {r.ok + sum(r.errors.values())} | {r.images} | **{r.images / r.seconds:.2f}** | "
            f"{r.ok / r.seconds:.2f} | {percentile(lat, 50):.0f} | {percentile(lat, 90):.0f} | {percentile(lat, 99):.0f} | "
            f"{max(lat, default=float('nan')):.0f} | {errors} | {r.rss['before']:.0f} | {r.rss['after']:.0f} | "
            f"{r.rss['peak']:.0f} | {r.server_cores:.2f} | {r.other_cores:.2f} |"
        )
    cmd = shlex.join(["python", "benchmarks/load_test.py", *(a for a in sys.argv[1:] if a != "--no-write")])
    lines = [
        f"## Serving under load (`{cmd}`)",
        "",
        f"{args.clients} concurrent clients, each sending `POST {ENDPOINT}` back to back (`n={args.n}`, "
        f"`size={args.size}`, `guidance_scale={'the model default' if args.guidance_scale is None else args.guidance_scale}`, a new seed and a Shapes World prompt per "
        f"request) for {args.seconds:g} s (at most {args.max_requests} requests) after a short warm-up; a fresh server "
        "process per mode, on 127.0.0.1, sharing the machine's cores with the load generator.",
        f"Model: {model_note}. Server: `{server_cmd}` (+ `--no-batching` for the OFF row).",
        "",
        "| batching | requests | images | images/s | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors "
        "| RSS before MiB | RSS after MiB | peak RSS MiB | server CPU cores | other CPU cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    by_mode = {r.mode: r for r in results}
    if "ON" in by_mode and "OFF" in by_mode and by_mode["OFF"].images:
        on, off = by_mode["ON"], by_mode["OFF"]
        speedup = (on.images / on.seconds) / (off.images / off.seconds)
        lines += ["", f"Dynamic batching: **{speedup:.2f}x** the images/s of one-request-at-a-time serving."]
    lines += [
        "",
        "Latency percentiles are over successful requests (nearest rank); errors are counted by HTTP status. "
        "*Server CPU cores*: the server's average CPU use over the run; *other CPU cores*: everything else on the "
        "machine except this script (should be near 0: other work on the cores slows PyTorch down a lot).",
    ]
    busy = [r for r in results if r.other_cores > 0.25]
    if busy:
        worst = max(r.other_cores for r in busy)
        notes.append(f"**Warning:** other processes used up to {worst:.2f} CPU cores during the run: these numbers "
                     "are not representative; rerun on an idle machine.")  # fmt: skip
    lines += [f"{n}" for n in notes]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="model folder (default: models/shapes-default, else an untrained one)")
    ap.add_argument("--untrained-arch", choices=("base", "tiny"), default="base",
                    help="architecture of the untrained fallback model (default: base, the shipped one)")  # fmt: skip
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per mode (default 20)")
    ap.add_argument("--n", type=int, default=1, help="images per request (default 1)")
    ap.add_argument("--max-requests", type=int, default=5000, help="request cap per mode (default 5000)")
    ap.add_argument("--size", default="64x64", help="image size requested (default 64x64)")
    ap.add_argument("--guidance-scale", type=float, default=None,
                    help="guidance scale requested (default: none sent, the model's own)")  # fmt: skip
    ap.add_argument("--request-timeout", type=float, default=120.0, help="client timeout per request, s (default 120)")
    ap.add_argument("--modes", choices=("both", "on", "off"), default="both", help="batching modes (default both)")
    ap.add_argument("--server-arg", action="append", default=[], help="extra argument for `lvg serve` (repeatable)")
    ap.add_argument("--no-write", action="store_true", help="print the report but do not touch BENCHMARKS.md")
    args = ap.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.n < 1 or args.max_requests < 1:
        ap.error("--clients, --seconds, --n and --max-requests must be positive")

    prompts = [
        json.loads(line)["en" if i % 2 == 0 else "zh"] for i, line in enumerate(PROMPTS.read_text("utf-8").splitlines())
    ]
    random.Random(0).shuffle(prompts)
    notes: list[str] = []
    help_text = serve_help()
    if not help_text:
        sys.exit("load_test: `python -m lvg.cli serve --help` failed: is the server (lvg serve) installed?")
    extra = [a for arg in args.server_arg for a in shlex.split(arg)]
    # no API keys are configured, so the per-key rate limit does not apply; turn it off anyway, in case it ever does
    if "--rate-limit" in help_text and not any(a.startswith("--rate-limit") for a in extra):
        extra += ["--rate-limit", "0"]
    modes = {"both": [("ON", True), ("OFF", False)], "on": [("ON", True)], "off": [("OFF", False)]}[args.modes]
    if "--no-batching" not in help_text and any(not b for _, b in modes):
        modes = [m for m in modes if m[1]]
        notes.append("`lvg serve` has no `--no-batching` flag (yet): only batching ON was measured.")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:  # a hint only: the report measures the CPU that other processes use during the run
        print(f"load_test: warning: 1-minute load average is {load:.2f}: is the machine idle?", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lvg-load-") as tmp:
        tmp = Path(tmp)
        if args.model is not None:
            model, model_note = args.model, f"`{args.model}`"
        elif (DEFAULT_MODEL / "model_index.json").is_file():
            model, model_note = DEFAULT_MODEL, "`models/shapes-default` (the shipped model)"
        else:
            print(f"load_test: {DEFAULT_MODEL} has no model_index.json: building an untrained model", file=sys.stderr)
            model = build_untrained_model(tmp / "model", args.untrained_arch)
            model_note = (f"an **untrained** model of the {'shipped (`base` LM preset)' if args.untrained_arch == 'base' else 'test-suite `tiny`'} "
                          "architecture built in a temporary folder, because `models/shapes-default` had no "
                          "`model_index.json` yet (generation always samples 64 codes per image, so speed does not "
                          "depend on training)")  # fmt: skip
        server_cmd = "lvg serve --model MODEL --host 127.0.0.1 --port PORT" + "".join(f" {a}" for a in extra)
        results = []
        for mode, batching in modes:
            print(f"load_test: batching {mode}: {args.clients} clients x {args.seconds:g} s ...", file=sys.stderr)
            try:
                results.append(measure(mode, batching, model, args, prompts, extra, tmp))
            except RuntimeError as e:
                sys.exit(f"load_test: {e}")
    text = report(results, args, model_note, server_cmd, notes)
    if not args.no_write:
        write_section("serve-load", text)
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
