"""Mutate every file of a model folder and load each mutant through the real CLI (``lvg.cli.main``).

Mutations: truncation, empty file, huge header length, garbage header, wrong shape, wrong dtype, NaN/inf
weights, missing/extra tensors, non-JSON, wrong JSON types, missing keys, extra keys, missing files and folders,
symlink loops, a pickle beside the weights; and (issue 23) JSON nested 100,000 deep, integers of 5,000 digits and of
10**400, a UTF-8 BOM, a non-UTF-8 byte, a file replaced by a FIFO or a link to ``/dev/zero`` or ``/dev/urandom``, and
a component folder that is a link to a folder outside the model folder. Each mutant is a fresh copy of the folder; a forked child (the parent
imported lvg once) runs ``lvg generate "two stars" -o OUT --model MUTANT`` with a timeout. A mutant passes when it
exits 0 with the image written (a harmless mutation; never for NaN/inf weights), or exits 2 with exactly one line
``lvg: error: ...`` naming the mutated file (or its folder). A traceback, a hang or a signal fails.

    python benchmarks/fuzz_models.py [--model models/shapes-default] [--prompt TEXT] [--limit N] [--quick] [--json]
    python benchmarks/fuzz_models.py --model BASE --adapter ADAPTER_DIR --prompt TEXT   # an adapter folder's files
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "shapes-default"
PROMPT = "two stars"


@dataclass(frozen=True)
class Mutant:
    """One mutation of the file (or folder) ``target``, relative to the model folder."""

    kind: str
    target: str
    detail: str
    apply: Callable[[Path], None]  # mutates the copied folder in place
    harmful: bool = False  # True: exit 0 is a failure (NaN/inf weights)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}:{self.detail}"


# ---------------------------------------------------------------------- safetensors


def _read_st(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _write_st(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _st_mutants(rel: str, data: bytes, rng: random.Random) -> list[Mutant]:
    header, body = _read_st(data)
    names = sorted(k for k in header if k != "__metadata__")
    floats = [k for k in names if header[k]["dtype"] in ("F16", "BF16", "F32")]
    out: list[Mutant] = []

    def put(blob: bytes) -> Callable[[Path], None]:
        return lambda d: _rewrite(d / rel, blob)

    for frac in (0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.999):
        out.append(Mutant("truncate", rel, f"{frac}", put(data[: int(len(data) * frac)] if frac else data[:5])))
    out.append(Mutant("empty", rel, "0 bytes", put(b"")))
    for n in (2**63 - 1, 2**40, len(data), 7):
        out.append(Mutant("header-length", rel, str(n), put(struct.pack("<Q", n) + data[8:])))
    (n,) = struct.unpack("<Q", data[:8])
    for i in range(4):
        g = bytearray(data)
        for _ in range(4 + i * 8):
            g[8 + rng.randrange(n)] = rng.randrange(256)
        out.append(Mutant("garbage-header", rel, f"#{i}", put(bytes(g))))
    out.append(Mutant("garbage-header", rel, "not-json", put(struct.pack("<Q", n) + b"\xff" * n + body)))
    out.append(Mutant("garbage-header", rel, "json-list", put(_write_st([], body))))  # type: ignore[arg-type]
    picks = rng.sample(names, min(6, len(names)))
    for k in picks:
        h = json.loads(json.dumps(header))
        shape = h[k]["shape"]
        if len(shape) >= 2:
            h[k]["shape"] = [shape[1], shape[0], *shape[2:]]  # same bytes, wrong shape (unless square)
            if shape[0] == shape[1]:
                h[k]["shape"] = [shape[0] * shape[1], *shape[2:]]
        else:
            h[k]["shape"] = [*shape, 1]
        out.append(Mutant("wrong-shape", rel, k, put(_write_st(h, body))))
        h2 = json.loads(json.dumps(header))
        h2[k]["shape"] = [1] * len(shape) if shape and shape != [1] * len(shape) else [2]
        out.append(Mutant("wrong-shape-size", rel, k, put(_write_st(h2, body))))
    for k in rng.sample(floats, min(3, len(floats))):
        for dt in ("I16", "U8", "F64", "BOOL"):
            h = json.loads(json.dumps(header))
            h[k]["dtype"] = dt
            out.append(Mutant("wrong-dtype", rel, f"{k}->{dt}", put(_write_st(h, body))))
    for k in rng.sample(floats, min(4, len(floats))):
        for value in ("nan", "inf", "-inf"):
            start, _ = header[k]["data_offsets"]
            dt = header[k]["dtype"]
            fmt, size = {"F16": ("<e", 2), "BF16": (None, 2), "F32": ("<f", 4)}[dt]
            raw = struct.pack(fmt, float(value)) if fmt else struct.pack("<f", float(value))[2:]
            b = bytearray(body)
            b[start : start + size] = raw
            out.append(Mutant("nonfinite", rel, f"{k}={value}", put(_write_st(header, bytes(b))), harmful=True))
    for k in rng.sample(names, min(3, len(names))):
        h = {kk: v for kk, v in header.items() if kk != k}
        out.append(Mutant("missing-tensor", rel, k, put(_write_st(h, body))))
    h = dict(header)
    h["extra.weight"] = dict(header[names[0]])
    out.append(Mutant("extra-tensor", rel, "extra.weight", put(_write_st(h, body))))
    h = dict(header)
    h["__metadata__"] = {"format": "pt", "junk": "x" * 1000}
    out.append(Mutant("metadata", rel, "junk", put(_write_st(h, body))))
    return out


# ---------------------------------------------------------------------- JSON

WRONG_VALUES: list[tuple[str, object]] = [
    ("str", "16"), ("list", [1, 2]), ("null", None), ("true", True), ("huge", 10**12), ("negative", -1),
    ("zero", 0), ("float", 0.5), ("dict", {"a": 1}), ("nan", float("nan")), ("bigint", 2**70),
]  # fmt: skip


def _json_paths(obj: object, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Paths (tuples of keys) to every value of nested mappings, down to 2 levels (tokenizer.json: 1)."""
    out: list[tuple] = []
    if isinstance(obj, dict) and depth < 2:
        for k, v in obj.items():
            out.append((*prefix, k))
            out += _json_paths(v, (*prefix, k), depth + 1)
    return out


def _set(obj: dict, path: tuple, value: object) -> dict:
    obj = json.loads(json.dumps(obj))
    cur = obj
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return obj


def _drop(obj: dict, path: tuple) -> dict:
    obj = json.loads(json.dumps(obj))
    cur = obj
    for k in path[:-1]:
        cur = cur[k]
    del cur[path[-1]]
    return obj


def _json_mutants(rel: str, text: str, rng: random.Random, per_key: int) -> list[Mutant]:
    obj = json.loads(text)

    def put(s: str) -> Callable[[Path], None]:
        return lambda d: _rewrite(d / rel, s.encode("utf-8"))

    raw = text.encode("utf-8")
    number = re.search(r"(?<=: )\d+", text)  # the first number that is a value
    out = [
        Mutant("deep-nesting", rel, "100000 deep", put("[" * 100000 + "]" * 100000)),
        Mutant("bom", rel, "utf-8 bom", put("\ufeff" + text)),
        Mutant(
            "non-utf8", rel, "0xff", lambda d: _rewrite(d / rel, raw[: len(raw) // 2] + b"\xff" + raw[len(raw) // 2 :])
        ),
    ]
    if number is not None:
        for label, digits in (("5000 digits", "9" * 5000), ("10**400", "1" + "0" * 400)):
            out.append(Mutant("huge-int", rel, label, put(text[: number.start()] + digits + text[number.end() :])))
    out += [
        Mutant("non-json", rel, "truncated", put(text[: len(text) // 2])),
        Mutant("non-json", rel, "garbage", put("{not json")),
        Mutant("non-json", rel, "binary", lambda d: _rewrite(d / rel, bytes(range(256)))),
        Mutant("empty", rel, "0 bytes", put("")),
        Mutant("json-type", rel, "top-level list", put("[]")),
        Mutant("json-type", rel, "top-level null", put("null")),
        Mutant("extra-key", rel, "zzz_extra", put(json.dumps({**obj, "zzz_extra": 1}))),
    ]
    big = rel.endswith("tokenizer.json")
    paths = [p for p in _json_paths(obj) if not big or len(p) == 1]
    for p in paths:
        name = ".".join(map(str, p))
        out.append(Mutant("missing-key", rel, name, put(json.dumps(_drop(obj, p)))))
        for label, value in rng.sample(WRONG_VALUES, min(per_key, len(WRONG_VALUES))):
            out.append(Mutant("json-type", rel, f"{name}={label}", put(json.dumps(_set(obj, p, value)))))
    return out


# ---------------------------------------------------------------------- files and folders


def _loop(d: Path, rel: str) -> None:
    p = d / rel
    if p.is_dir():
        shutil.rmtree(p)
    else:
        p.unlink()
    p.symlink_to(p.name)  # a link to itself: ELOOP


def _remove(d: Path, rel: str) -> None:
    p = d / rel
    shutil.rmtree(p) if p.is_dir() else p.unlink()


def _pickle_beside(d: Path, rel: str) -> None:
    """A pickle that would create a sentinel file when unpickled, beside the weights."""
    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(d / "UNPICKLED"), "w"))

    names = ("pytorch_model.bin", "model.pt", "model.ckpt", "weights.pkl") if rel != "adapter_model.bin" else ("",)
    for name in names:  # (for an adapter folder: peft's pickled weights file, beside its safetensors)
        (d / rel / name if name else d / rel).write_bytes(pickle.dumps(Boom()))


def _special(d: Path, rel: str, target: str | None) -> None:
    """``rel`` replaced by a FIFO (``target`` None) or by a link to the device ``target``."""
    _remove(d, rel)
    os.mkfifo(d / rel) if target is None else (d / rel).symlink_to(target)


def _outside(d: Path, rel: str) -> None:
    """The folder ``rel`` moved beside the model folder, with a link to it in its place."""
    away = d.parent / f"outside-{rel.replace('/', '-')}"
    shutil.move(d / rel, away)
    (d / rel).symlink_to(away)


def _file_mutants(rel: str, is_dir: bool, components: frozenset[str] = frozenset()) -> list[Mutant]:
    out = [
        Mutant("missing", rel, "removed", lambda d: _remove(d, rel)),
        Mutant("symlink-loop", rel, "self", lambda d: _loop(d, rel)),
    ]
    if not is_dir:
        out.append(Mutant("is-a-folder", rel, "dir", lambda d: (_remove(d, rel), (d / rel).mkdir())))
        if hasattr(os, "mkfifo"):
            out.append(Mutant("fifo", rel, "named pipe", lambda d: _special(d, rel, None)))
        for dev in ("/dev/zero", "/dev/urandom"):
            if Path(dev).exists():
                out.append(Mutant("device", rel, dev, lambda d, dev=dev: _special(d, rel, dev)))
    else:
        out.append(Mutant("pickle-beside", rel, "4 pickles", lambda d: _pickle_beside(d, rel)))
        if rel in components:  # a component folder: a link out of the model folder is refused (exit 0 fails); a
            # folder the index does not name (the retrain script's copy of the text tokenizer) is never read
            out.append(Mutant("symlink-outside", rel, "link", lambda d: _outside(d, rel), harmful=True))
    return out


def component_folders(model: Path) -> frozenset[str]:
    """The component folders ``model_index.json`` names (short ``"name": "folder"`` or ``{"folder": ...}`` form)."""
    if not (model / "model_index.json").is_file():  # an adapter folder
        return frozenset()
    comps = json.loads((model / "model_index.json").read_text(encoding="utf-8")).get("components", {})
    return frozenset(v["folder"] if isinstance(v, dict) else v for v in comps.values())


def all_mutants(model: Path, seed: int = 0, per_key: int = 4) -> list[Mutant]:
    """Every mutant of the folder ``model``, in a fixed order (deterministic for ``seed``)."""
    rng = random.Random(seed)
    out: list[Mutant] = []
    components = component_folders(model)
    for path in sorted(model.rglob("*")):
        rel = path.relative_to(model).as_posix()
        out += _file_mutants(rel, path.is_dir(), components)
        if path.is_dir():
            continue
        if path.suffix == ".safetensors":
            out += _st_mutants(rel, path.read_bytes(), rng)
        elif path.suffix == ".json":
            out += _json_mutants(rel, path.read_text(encoding="utf-8"), rng, per_key)
    if (model / "lvg_adapter.json").is_file():  # an adapter folder: peft would unpickle an adapter_model.bin
        out.append(
            Mutant("pickle-beside", "adapter_model.bin", "pickle", lambda d: _pickle_beside(d, "adapter_model.bin"))
        )
    return out


QUICK_LM = (
    "vocab_size=str",
    "hidden_act=float",
    "return_dict=null",
    "rope_parameters.rope_type=null",
    "num_key_value_heads=zero",
    "output_hidden_states=float",
)  # were tracebacks before check_lm_config


QUICK_FILES = ("model_index.json", "painter/config.json", "planner/lm/config.json", "planner/plan_vocab.json")
# (where issue 23 found JSON nested 100,000 deep to give a RecursionError traceback)


def quick_mutants(model: Path, seed: int = 0) -> list[Mutant]:
    """A small subset (the test suite's): the first mutant of every kind on a file lvg reads (and non-JSON and wrong
    types in a ``tokenizer.json``), NaN weights in every weights file, the LM-config mutants that once gave
    tracebacks, deep nesting in each of :data:`QUICK_FILES`, and both huge integers and both devices."""
    seen: set[tuple[str, str]] = set()
    out = []
    for m in all_mutants(model, seed, per_key=len(WRONG_VALUES)):
        if Path(m.target).name in ("README.md", "tokenizer_config.json"):  # never read: always harmless
            continue
        tok = m.target.endswith("tokenizer.json") and m.kind in ("non-json", "json-type")
        key = (m.kind, m.target if m.kind == "nonfinite" else "tokenizer.json" if tok else "")
        if m.kind in ("deep-nesting", "huge-int", "device"):
            key = (
                m.kind,
                f"{m.target}:{m.detail}" if m.target in QUICK_FILES and m.kind == "deep-nesting" else m.detail,
            )
        if key not in seen or (m.target == "planner/lm/config.json" and m.detail in QUICK_LM):
            seen.add(key)
            out.append(m)
    return out


# ---------------------------------------------------------------------- running


@dataclass
class Outcome:
    mutant: str
    verdict: str  # ok-exit0 | ok-error | ok-refused | traceback | hang | signal | bad-exit | unclear
    rc: int | None
    seconds: float
    stderr: str


MEMORY_BUDGET = 2 << 30  # bytes of address space a mutant may add: a multi-GB allocation fails instead


def _limit_memory() -> None:
    import resource

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            size = int(line.split()[1]) * 1024 + MEMORY_BUDGET
            resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _child(argv: list[str], err_file: str) -> None:
    _limit_memory()
    fd = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
    from lvg.cli import main

    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        rc = 99
    sys.stderr.flush()
    os._exit(rc)


def classify(m: Mutant, rc: int | None, sig: int | None, stderr: str, wrote: bool, folder: Path) -> str:
    if (folder / "UNPICKLED").exists():
        return "unpickled"
    if sig is not None:
        return "hang" if sig == signal.SIGKILL else "signal"
    if "Traceback" in stderr:
        return "traceback"
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("lvg: warning: ")]
    if rc == 0:
        return "ok-exit0" if wrote and not m.harmful else ("silent-garbage" if m.harmful else "bad-exit")
    if rc != 2 or len(lines) != 1 or not lines[0].startswith("lvg: error: "):
        return "unclear"
    if (lines[0].startswith("lvg: error: cannot draw ") and "(reason: " in lines[0]) or lines[0].startswith(
        "lvg: error: the planner refused to draw ("
    ):
        return "ok-refused"  # the mutant loaded and its planner refused the prompt (a valid change of meaning)
    target = Path(m.target)
    names = {m.target, target.parent.as_posix()} if target.parent.as_posix() != "." else {m.target}
    if not any(n in lines[0] for n in names):
        return "unnamed"
    return "ok-error"


def run_mutants(mutants: list[Mutant], model: Path, timeout: float = 60.0, jobs: int = 1,
                progress: bool = False, prompt: str = PROMPT, base: Path | None = None) -> list[Outcome]:  # fmt: skip
    """Run each mutant in a forked child (the parent imports lvg once); at most ``jobs`` at a time. With ``base``,
    ``model`` is an adapter folder and each mutant runs ``lvg plan PROMPT --model BASE --adapter MUTANT``."""
    import lvg.cli  # noqa: F401  (imported before forking, so each child starts warm)
    import lvg.pipelines.planned  # noqa: F401
    import lvg.sampling.generate  # noqa: F401

    results: list[Outcome] = []
    tmp = Path(tempfile.mkdtemp(prefix="lvg-fuzz-"))
    pristine = shutil.copytree(model, tmp / "pristine", symlinks=True)  # mutants hard-link to this copy, never
    # to the source folder (every mutation replaces a file rather than writing into it)
    running: dict[int, tuple[Mutant, Path, float]] = {}
    queue = list(enumerate(mutants))
    try:
        while queue or running:
            while queue and len(running) < jobs:
                i, m = queue.pop(0)
                folder = tmp / f"m{i}"
                shutil.copytree(pristine, folder / "model", symlinks=True, copy_function=os.link)
                m.apply(folder / "model")
                argv = (
                    ["generate", prompt, "-o", str(folder / "out.png"), "--model", str(folder / "model")]
                    if base is None
                    else ["plan", prompt, "--model", str(base), "--adapter", str(folder / "model")]
                )
                pid = os.fork()
                if pid == 0:
                    os.setpgid(0, 0)
                    _child(argv, str(folder / "stderr.txt"))
                running[pid] = (m, folder, time.monotonic())
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                now = time.monotonic()
                for p, (_m, _folder, t0) in running.items():
                    if now - t0 > timeout:
                        os.killpg(p, signal.SIGKILL)
                time.sleep(0.005)
                continue
            m, folder, t0 = running.pop(pid)
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            err = (folder / "stderr.txt").read_text(encoding="utf-8", errors="replace")
            verdict = classify(m, rc, sig, err, base is not None or (folder / "out.png").is_file(), folder)
            results.append(Outcome(m.name, verdict, rc, time.monotonic() - t0, err.strip()))
            if progress:
                print(f"[{len(results)}/{len(mutants)}] {verdict:10s} {m.name} | {err.strip()[-200:]}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def summarize(results: list[Outcome]) -> dict:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    return counts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--limit", type=int, default=None, help="run at most N mutants (spread over the list)")
    p.add_argument("--quick", action="store_true", help="one mutant per kind and file type (the test suite's)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=None, metavar="TEXT", help="only mutants whose name contains TEXT")
    p.add_argument("--adapter", type=Path, default=None, metavar="DIR", help="fuzz this adapter folder instead, "
                   "each mutant planned with `lvg plan PROMPT --model MODEL --adapter MUTANT`")  # fmt: skip
    p.add_argument("--prompt", default=PROMPT, help=f"what each mutant draws (default {PROMPT!r}; e.g. 'two cats' "
                   "for models/emoji-default)")  # fmt: skip
    args = p.parse_args()
    target = args.adapter or args.model
    mutants = quick_mutants(target, args.seed) if args.quick else all_mutants(target, args.seed)
    mutants = [m for m in mutants if args.only is None or args.only in m.name]
    if args.limit is not None and args.limit < len(mutants):
        step = len(mutants) / args.limit
        mutants = [mutants[int(i * step)] for i in range(args.limit)]
    t0 = time.perf_counter()
    results = run_mutants(mutants, target, args.timeout, args.jobs, progress=not args.json, prompt=args.prompt,
                          base=args.model if args.adapter else None)  # fmt: skip
    seconds = time.perf_counter() - t0
    summary = {"mutants": len(results), "seconds": round(seconds, 1), "counts": summarize(results),
               "failures": [r.__dict__ for r in results if not r.verdict.startswith("ok")]}  # fmt: skip
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(json.dumps({k: v for k, v in summary.items() if k != "failures"}))
    return 0 if not summary["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
