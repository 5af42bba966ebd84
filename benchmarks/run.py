"""Run the benchmark suite: every ``benchmarks/bench_*.py`` that defines ``run(quick, out_dir)``.

    python -m benchmarks.run --quick                 # make bench-quick (target: < 15 min on 2 idle cores)
    python -m benchmarks.run --full                  # make bench; also rewrites benchmarks/RESULTS.md
    python -m benchmarks.run --quick --only functa   # one benchmark (repeatable; "functa" = bench_functa)
    python -m benchmarks.run --list

Each benchmark writes ``<name>.json`` and ``<name>.md`` into the output folder (``benchmarks/results``);
this runner adds ``summary.json`` and ``SUMMARY.md`` (the commands, the machine, each benchmark's status,
wall time and load, then every benchmark's markdown). Records of earlier runs of the same mode in the
folder are kept, so re-running one benchmark with ``--only`` updates its part of the summary; a ``--full``
run rewrites ``benchmarks/RESULTS.md`` once every benchmark has a full-mode record. A benchmark that
fails is reported with its traceback and the others still run; the exit status is 1 if any failed.
``--tiny`` sets ``INRGEN_BENCH_TINY=1``, which the benchmarks built on ``benchmarks/common.py`` read to
run in seconds (the test suite uses it).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from inrgen.metrics.timing import machine_info

__all__ = ["discover", "main", "run_all"]

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"


def discover(folder: Path = HERE) -> list[str]:
    """Names (``bench_x``) of the benchmark modules in ``folder``, sorted."""
    return sorted(p.stem for p in folder.glob("bench_*.py"))


def _short(name: str) -> str:
    return name[len("bench_") :] if name.startswith("bench_") else name


def _select(names: list[str], only: list[str] | None, skip: list[str] | None) -> list[str]:
    wanted = {f"bench_{_short(o)}" for o in (only or [])}
    unknown = wanted - set(names)
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s) {', '.join(sorted(_short(u) for u in unknown))}; "
            f"available: {', '.join(_short(n) for n in names)}"
        )
    out = [n for n in names if not wanted or n in wanted]
    skipped = {f"bench_{_short(s)}" for s in (skip or [])}
    return [n for n in out if n not in skipped]


def _load(name: str) -> Callable[..., Any]:
    mod = importlib.import_module(f"benchmarks.{name}")
    fn = getattr(mod, "run", None)
    if not callable(fn):
        raise TypeError(f"benchmarks/{name}.py has no run(quick, out_dir) function")
    params = inspect.signature(fn).parameters
    if not {"quick", "out_dir"} <= set(params):
        raise TypeError(f"benchmarks/{name}.py: run must take (quick, out_dir), has ({', '.join(params)})")
    return fn


def run_all(names: list[str], quick: bool, out_dir: Path) -> list[dict[str, Any]]:
    """Run ``names`` in order; one status record per benchmark."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for name in names:
        print(f"== {name} ({'quick' if quick else 'full'})", flush=True)
        threads = torch.get_num_threads()
        torch.manual_seed(0)
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"name": name}
        try:
            _load(name)(quick=quick, out_dir=out_dir)
            rec["status"] = "ok"
        except Exception as err:  # keep going: one broken benchmark must not hide the others
            rec["status"] = "failed"
            rec["error"] = f"{type(err).__name__}: {err}"
            rec["traceback"] = traceback.format_exc()
            print(rec["traceback"], file=sys.stderr, flush=True)
        finally:
            torch.set_num_threads(threads)
        rec["wall_s"] = time.perf_counter() - t0
        rec["finished"] = time.strftime("%Y-%m-%d %H:%M")
        rec["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
        print(f"== {name}: {rec['status']} in {rec['wall_s']:.0f} s", flush=True)
        records.append(rec)
    return records


def summary_markdown(records: list[dict[str, Any]], mode: str, out_dir: Path, info: dict) -> str:
    """The overall markdown: commands, machine, a status table, then every benchmark's own tables."""
    total = sum(r["wall_s"] for r in records)
    commands = list(dict.fromkeys(r.get("command", "?") for r in records))
    lines = [
        f"# Benchmark results ({mode})",
        "",
        "Produced by " + "; then ".join(f"`{c}`" for c in commands) + f" (total {total / 60:.1f} min).",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, Python {info['python']}, "
        f"{info['platform']}.",
        "",
        "| benchmark | status | wall time | finished | load average (1, 5, 15 min) |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        status = r["status"] if r["status"] == "ok" else f"**{r['status']}**: {r['error']}"
        load = ", ".join(f"{x:.1f}" for x in r.get("load_average", []))
        lines.append(
            f"| {_short(r['name'])} | {status} | {r['wall_s']:.0f} s | {r.get('finished', '-')} | {load} |"
        )
    for r in records:
        md = out_dir / f"{r['name']}.md"
        if r["status"] == "ok" and md.is_file():
            text = md.read_text().strip().splitlines()
            text = ["#" + t if t.startswith("#") else t for t in text]  # one level down
            lines += ["", *text]
    return "\n".join(lines) + "\n"


def _merge(out_dir: Path, mode: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records of this run, plus those of earlier runs of the same mode in ``out_dir`` (by benchmark)."""
    merged: dict[str, dict[str, Any]] = {}
    old = out_dir / "summary.json"
    if old.is_file():
        try:
            prev = json.loads(old.read_text())
            if prev.get("mode") == mode:
                for r in prev.get("benchmarks", []):
                    r.setdefault("command", prev.get("command", "?"))
                    merged[r["name"]] = r
        except (json.JSONDecodeError, KeyError, TypeError):
            merged = {}
    merged.update({r["name"]: r for r in records})
    return [merged[k] for k in sorted(merged)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small budgets (the default)")
    mode.add_argument("--full", action="store_true", help="the full budgets; rewrites benchmarks/RESULTS.md")
    ap.add_argument("--tiny", action="store_true", help="seconds-long smoke run (tests); implies --quick")
    ap.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    ap.add_argument("--skip", action="append", metavar="NAME", help="skip this benchmark (repeatable)")
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default benchmarks/results)"
    )
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    names = discover()
    if args.list:
        print("\n".join(_short(n) for n in names))
        return 0
    selected = _select(names, args.only, args.skip)
    quick = not args.full
    mode_name = "tiny" if args.tiny else ("quick" if quick else "full")
    old_env = os.environ.get("INRGEN_BENCH_TINY")
    if args.tiny:
        os.environ["INRGEN_BENCH_TINY"] = "1"
    command = "python -m benchmarks.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    try:
        records = run_all(selected, quick, args.out)
    finally:
        if old_env is None:
            os.environ.pop("INRGEN_BENCH_TINY", None)
        else:
            os.environ["INRGEN_BENCH_TINY"] = old_env
    for r in records:
        r["command"] = command.strip()
    # earlier runs of other benchmarks in this folder stay in the summary (re-run one, keep the rest)
    everything = _merge(args.out, mode_name, records)
    info = machine_info()
    md = summary_markdown(everything, mode_name, args.out, info)
    (args.out / "SUMMARY.md").write_text(md)
    (args.out / "summary.json").write_text(
        json.dumps({"mode": mode_name, "machine": info, "benchmarks": everything}, indent=2)
    )
    if (
        args.full
        and not args.tiny
        and args.out.resolve() == DEFAULT_OUT
        and {r["name"] for r in everything} >= set(names)
    ):
        (HERE / "RESULTS.md").write_text(md)
    print(f"results in {args.out}")
    return 1 if any(r["status"] != "ok" for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
