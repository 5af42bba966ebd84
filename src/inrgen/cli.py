"""``inrgen``: the command line (one console script with subcommands).

    inrgen train PRESET [--data PATH] [--out DIR] [--max-steps N | --epochs N] [--resume] [--overwrite]
                        [--devices D] [--num-nodes N] [--strategy S] [--precision P] [key=value ...]
    inrgen presets [--fields NAME]
    inrgen reconstruct CKPT --input FILE|DIR [--scale S] [--chunk-size N] [--out DIR]
    inrgen complete CKPT --input FILE --mask box:x,y,w,h|half|outpaint:x,y,w,h|random:P [--out DIR]
    inrgen sample CKPT -n N --resolution R [--seed S] [--out DIR]
    inrgen segment CKPT --input FILE [--out DIR]
    inrgen novel-view CKPT --views DIR --pose FILE [--out DIR]
    inrgen evaluate CKPT [--data PATH] [--split test] [--out DIR]
    inrgen datasets [...]
    inrgen demo [--out outputs/demo]
    inrgen web CKPT [--port 7860] [--host 127.0.0.1]     (the web demo; pip install 'inrgen[web]')

``CKPT`` is a checkpoint folder or a training run folder (its ``checkpoint/``). Nothing is overwritten
without ``--overwrite``, and ``--overwrite`` only replaces an earlier output of the same command that
holds none of the command's inputs, once the new output is complete. Every error is one line,
``inrgen: error: ...``, with a non-zero exit status and no traceback (``INRGEN_DEBUG=1`` shows it);
everything that can be checked (settings, data, sizes) is checked before any training or decoding
starts. Ctrl-C or SIGTERM during ``train`` finishes the step, saves a checkpoint and prints how to
resume (exit status 130 / 143); ``--resume`` applies and reports ``train.*`` / ``data.*`` overrides.

Example:
    $ inrgen train vamoh-mnist-small --max-steps 200 --out runs/mnist train.lr=5e-4
    $ inrgen reconstruct runs/mnist --input digit.png --scale 4 --out outputs/recon
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]

PROG = "inrgen"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit status 2 (argparse's convention)
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(message, 2))


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _msg(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)


# ------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Generalizable and generative implicit neural representations.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a preset (resumable; one CPU/GPU or DDP)")
    t.add_argument("preset", help="a preset name (`inrgen presets` lists them)")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=1e-4")
    t.add_argument("--data", help="train on your own files of the preset's modality (a file or folder)")
    t.add_argument("--out", help="run folder (default runs/PRESET)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--max-steps", type=int, help="optimisation steps (overrides train.max_steps)")
    g.add_argument("--epochs", type=float, help="epochs over the training split (converted to steps)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint "
                   "(train.* / data.* overrides change its stored settings from there on)")  # fmt: skip
    t.add_argument("--overwrite", action="store_true", help="replace an earlier run folder at --out")
    t.add_argument("--devices", default="1", help="devices per node (an int, or 'auto'); default 1")
    t.add_argument("--num-nodes", type=int, default=1, help="machines (DDP); default 1")
    t.add_argument("--strategy", default="auto", help="Lightning strategy: auto, ddp, ddp_spawn, ...")
    t.add_argument("--accelerator", default="auto", help="auto, cpu, gpu")
    t.add_argument("--precision", help="32-true (default), bf16-mixed, 16-mixed (GPU)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    pr = sub.add_parser("presets", help="list the presets (model, paper table, size)")
    pr.add_argument("--fields", metavar="NAME", help="list every config field of preset NAME")

    def ckpt_cmd(name: str, help: str, out: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        c.add_argument("ckpt", metavar="CKPT", help="checkpoint folder (or run folder)")
        c.add_argument("--out", default=out, help=f"output folder (default {out})")
        c.add_argument("--overwrite", action="store_true", help="replace an earlier output folder")
        c.add_argument("--chunk-size", type=int, default=16384, help="points decoded at a time (memory)")
        return c

    r = ckpt_cmd("reconstruct", "reconstruct inputs, optionally at a finer resolution", "outputs/reconstruct")
    r.add_argument("--input", required=True, help="an input file or a folder of them")
    r.add_argument("--scale", type=float, help="super-resolution factor (any real number > 0)")

    c = ckpt_cmd("complete", "in-paint / half / out-paint: decode everything from the kept points",
                 "outputs/complete")  # fmt: skip
    c.add_argument("--input", required=True, help="an input file or a folder of them")
    c.add_argument("--mask", required=True, help="box | box:x,y,w,h | half[:left|right|top|bottom] | "
                   "outpaint:x,y,w,h | random:F (the kept fraction in (0, 1], e.g. random:0.25; "
                   "random:25%% for a percentage)")  # fmt: skip
    c.add_argument("--seed", type=int, default=0, help="seed of random:F masks")

    s = ckpt_cmd("sample", "draw samples from a generative model's prior", "outputs/sample")
    s.add_argument("-n", type=int, default=16, help="number of samples")
    s.add_argument("--resolution", default=None, help="grid size: 64, 48x64 (default: the training grid)")
    s.add_argument("--seed", type=int, default=0)

    sg = ckpt_cmd(
        "segment", "segmentation and entropy maps of the mixture weights (VaMoH)", "outputs/segment"
    )
    sg.add_argument("--input", required=True, help="an input file or a folder of them")

    nv = ckpt_cmd("novel-view", "render new views from support views", "outputs/novel-view")
    nv.add_argument("--views", required=True, help="object folder: transforms.json + view PNGs")
    nv.add_argument("--pose", required=True, help="JSON: a 4x4 camera-to-world matrix, a list, or frames")

    e = sub.add_parser("evaluate", help="held-out metrics as JSON and a table")
    e.add_argument("ckpt", metavar="CKPT", help="checkpoint folder (or run folder)")
    e.add_argument("--data", help="your own files of the model's modality (default: the checkpoint's data)")
    e.add_argument("--split", default="test", help="train | val | test | all (default test)")
    e.add_argument("--num", type=int, help="evaluate the first NUM items (default all)")
    e.add_argument("--out", help="folder for metrics.json (default: print only)")
    e.add_argument("--overwrite", action="store_true")
    e.add_argument("--chunk-size", type=int, default=16384)
    e.add_argument("--batch-size", type=int, help="items per batch (default data.eval_batch_size)")

    sub.add_parser("datasets", help="list data sources / render examples (`inrgen datasets --help`)",
                   add_help=False)  # fmt: skip

    d = sub.add_parser("demo", help="every task of the default preset, from its shipped checkpoint")
    d.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, as for train")
    d.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    d.add_argument("--overwrite", action="store_true", help="train again over an earlier demo")
    d.add_argument("--preset", default="vamoh-mnist-small", help="the preset to train")
    d.add_argument("--max-steps", type=int, help="override the preset's steps")
    d.add_argument("--no-progress", action="store_true")
    d.add_argument("--threads", type=int, help="torch threads (default: all cores, 1 on a busy machine)")
    d.add_argument("--train", action="store_true",
                   help="train from scratch instead of using the checkpoint shipped for the preset "
                        "(training is implied by --max-steps or overrides)")  # fmt: skip
    wb = sub.add_parser("web", help="the web demo (gradio): completion, super-resolution, segmentation, "
                        "uncertainty, novel views")  # fmt: skip
    wb.add_argument("ckpt", metavar="CKPT", help="checkpoint folder (or run folder)")
    wb.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    wb.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    return p


# -------------------------------------------------------------------------------------- commands


def _devices(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        if text == "auto" or "," in text:
            return text
        raise ValueError(
            f"--devices must be an int, a comma list of device ids, or 'auto'; got {text!r}"
        ) from None


def _data_overrides(old: Any, new: Any) -> list[str]:
    """``data.*=value`` overrides (JSON values, which the override parser reads) from ``old`` to ``new``."""
    from inrgen.configs.base import config_to_dict

    a, b = config_to_dict(old), config_to_dict(new)
    return [f"data.{k}={json.dumps(b[k])}" for k in b if a.get(k) != b[k]]


def _interrupted(result: Any, preset: str, out: Path) -> str:
    """What an interrupted run says: where its checkpoint is and the command that resumes it."""
    import shlex

    head = f"{PROG}: interrupted ({result.interrupted}) at step {result.step}"
    if result.saved_step is None:
        return f"{head}, before the first checkpoint: nothing to resume; start the run again"
    hint = f"{PROG} train {shlex.quote(preset)} --out {shlex.quote(str(result.out))} --resume"
    msg = f"{head}; checkpoint of step {result.saved_step} saved in {result.checkpoint}; resume with: {hint}"
    if Path(result.out) != out:
        msg += (f" ({out} still holds the earlier run: --overwrite replaces it only when a run completes; "
                f"move {result.out} there once it has)")  # fmt: skip
    return msg


def cmd_train(a: argparse.Namespace) -> int:
    from inrgen.configs import apply_overrides, get_preset
    from inrgen.training import fit

    preset = get_preset(a.preset)
    out = Path(a.out) if a.out else Path("runs") / preset.name
    overrides = list(a.overrides)
    if a.resume:  # the stored settings, with the overrides (and --data) applied by fit, and reported
        if a.data:
            from inrgen.checkpoint import load_config
            from inrgen.configs.base import Preset
            from inrgen.training.commands import data_for_path

            stored = Preset.from_dict(load_config(out / "checkpoint"))
            data = data_for_path(stored.data, a.data, int(stored.model_config.out_channels),
                                 what=f"preset {stored.name}")  # fmt: skip
            overrides += _data_overrides(stored.data, data)
    else:
        preset = apply_overrides(preset, overrides)
        overrides = []
        if a.data:
            from inrgen.training.commands import data_for_path

            preset.data = data_for_path(preset.data, a.data, int(preset.model_config.out_channels),
                                        what=f"preset {preset.name}")  # fmt: skip
    t0 = time.time()
    from inrgen.training.engine import TrainInterrupted, global_rank_from_env

    try:
        result = fit(
            preset, out, resume=a.resume, overwrite=a.overwrite, max_steps=a.max_steps, epochs=a.epochs,
            devices=_devices(a.devices), num_nodes=a.num_nodes, strategy=a.strategy,
            accelerator=a.accelerator, precision=a.precision, progress=not a.no_progress, overrides=overrides,
        )  # fmt: skip
    except TrainInterrupted as stop:
        if global_rank_from_env() == 0:
            print(_interrupted(stop.result, preset.name, out), file=sys.stderr)
        return 130 if stop.result.interrupted == "SIGINT" else 143
    if global_rank_from_env() != 0:
        return 0
    ev = result.eval or {}
    psnr = f", held-out PSNR {ev['psnr_mean']:.2f} +- {ev['psnr_std']:.2f} dB" if ev else ""
    print(f"trained {preset.name} to step {result.step} in {time.time() - t0:.0f} s{psnr}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _count_parameters(preset) -> int:
    import torch

    from inrgen.models.base import build_model

    try:
        with torch.device("meta"):
            model = build_model(preset.model, preset.model_config)
    except Exception:  # noqa: BLE001 - a model whose constructor computes on its tensors: build it for real
        model = build_model(preset.model, preset.model_config)
    return sum(p.numel() for p in model.parameters())


def _human(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def cmd_presets(a: argparse.Namespace) -> int:
    from inrgen.configs import PRESETS, get_preset
    from inrgen.configs.base import config_to_dict, field_paths

    if a.fields:
        p = get_preset(a.fields)
        print(f"{p.name}: {p.model}  ({p.paper})")
        sections = {"model": p.model_config, "data": p.data, "train": p.train}
        for sec, cfg in sections.items():
            d = config_to_dict(cfg)
            for path in field_paths(cfg):
                v: Any = d
                for part in path.split("."):
                    v = v[part]
                print(f"  {sec}.{path} = {json.dumps(v)}")
        return 0
    rows = []
    for name in sorted(PRESETS):
        p = get_preset(name)
        rows.append((name, p.model, _human(_count_parameters(p)), "cpu" if p.cpu_sized else "", p.paper))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{'preset':<{w[0]}}  {'model':<{w[1]}}  {'params':>{w[2]}}  {'':<{w[3]}}  reproduces")
    for r in rows:
        print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:<{w[3]}}  {r[4]}")
    return 0


def _report(summary: dict[str, Any], out: str) -> None:
    rows = summary.get("inputs", [])
    print(f"wrote {out} ({len(rows) or len(summary.get('files', []))} item(s))")
    for r in rows[:20]:
        bits = [f"{k} {r[k]:.2f} dB" for k in ("psnr", "psnr_hidden") if isinstance(r.get(k), float)]
        print(f"  {r['name']}: " + ", ".join(bits + [f"{len(r.get('files', []))} files"]))
    if len(rows) > 20:
        print(f"  ... {len(rows) - 20} more in {out}/summary.json")


def cmd_reconstruct(a: argparse.Namespace) -> int:
    from inrgen.training.commands import run_reconstruct

    _report(run_reconstruct(a.ckpt, a.input, a.out, a.scale, a.chunk_size, a.overwrite), a.out)
    return 0


def cmd_complete(a: argparse.Namespace) -> int:
    from inrgen.training.commands import run_complete

    _report(run_complete(a.ckpt, a.input, a.mask, a.out, a.chunk_size, a.overwrite, a.seed), a.out)
    return 0


def cmd_sample(a: argparse.Namespace) -> int:
    from inrgen.training.commands import load_checkpoint, run_sample

    res = a.resolution
    if res is None:
        _, spec, _ = load_checkpoint(a.ckpt)
        if spec.grid_shape is None:
            raise ValueError("pass --resolution (the checkpoint does not record its training grid)")
        res = "x".join(str(s) for s in spec.grid_shape)
    s = run_sample(a.ckpt, a.n, res, a.out, a.seed, a.chunk_size, a.overwrite)
    print(f"wrote {a.out}: {s['n']} samples at {'x'.join(map(str, s['resolution']))}")
    return 0


def cmd_segment(a: argparse.Namespace) -> int:
    from inrgen.training.commands import run_segment

    _report(run_segment(a.ckpt, a.input, a.out, a.chunk_size, a.overwrite), a.out)
    return 0


def cmd_novel_view(a: argparse.Namespace) -> int:
    from inrgen.training.commands import run_novel_view

    s = run_novel_view(a.ckpt, a.views, a.pose, a.out, a.chunk_size, a.overwrite)
    print(f"wrote {a.out}: {s['poses']} view(s) from {s['support']} support view(s)")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from inrgen.training.commands import run_evaluate
    from inrgen.training.evaluation import format_table

    s = run_evaluate(a.ckpt, a.data, a.out, a.split, a.num, a.chunk_size, a.overwrite, a.batch_size)
    print(format_table({k: v for k, v in s.items() if k != "psnr_per_item"}))
    if s.get("psnr_definition"):
        print(s["psnr_definition"])
    if a.out:
        print(f"wrote {a.out}/metrics.json")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from inrgen.training.demo import run_demo

    run_demo(a.out, preset=a.preset, overwrite=a.overwrite, max_steps=a.max_steps, progress=not a.no_progress,
             threads=a.threads, overrides=list(a.overrides), train=True if a.train else None)  # fmt: skip
    return 0


def cmd_web(a: argparse.Namespace) -> int:
    try:
        from inrgen.app.web import launch, require_gradio

        require_gradio()
    except ImportError as err:
        return _fail(str(err))
    from inrgen.app.functions import load_demo

    load_demo(a.ckpt)  # a folder that is no checkpoint fails here, before a server starts
    print(f"inrgen web demo of {a.ckpt} on http://{a.host}:{a.port} (Ctrl-C stops it)")
    launch(a.ckpt, host=a.host, port=a.port)
    return 0


COMMANDS = {
    "train": cmd_train,
    "presets": cmd_presets,
    "reconstruct": cmd_reconstruct,
    "complete": cmd_complete,
    "sample": cmd_sample,
    "segment": cmd_segment,
    "novel-view": cmd_novel_view,
    "evaluate": cmd_evaluate,
    "demo": cmd_demo,
    "web": cmd_web,
}


def _known_errors() -> tuple[type[BaseException], ...]:
    return (ValueError, KeyError, TypeError, OSError, NotImplementedError)


class _Terminated(BaseException):
    """SIGTERM outside training: unwinds like Ctrl-C, so temporary outputs are removed."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def _run(a: argparse.Namespace, debug: bool) -> int:
    try:
        return COMMANDS[a.command](a)
    except KeyboardInterrupt as err:
        from inrgen.training.engine import TrainInterrupted

        if isinstance(err, TrainInterrupted):  # e.g. the demo's training: its checkpoint is saved
            r = err.result
            code = 130 if r.interrupted == "SIGINT" else 143
            return _fail(f"interrupted ({r.interrupted}) at step {r.step}; checkpoint in {r.checkpoint}",
                         code)  # fmt: skip
        return _fail("interrupted (SIGINT); nothing more was written", 130)
    except _Terminated:
        return _fail("terminated (SIGTERM); nothing more was written", 143)
    except _known_errors() as err:
        if debug:
            raise
        return _fail(_msg(err))
    except Exception as err:  # noqa: BLE001 - an unexpected failure: still one line, with how to see more
        if debug:
            raise
        return _fail(f"{type(err).__name__}: {_msg(err)} (set INRGEN_DEBUG=1 to see the traceback)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "datasets":
        from inrgen.data.catalog import datasets_command

        try:
            return int(datasets_command(argv[1:]) or 0)
        except SystemExit as e:  # its own argparse: --help, usage errors
            return int(e.code or 0) if not isinstance(e.code, str) else _fail(e.code, 2)
        except _known_errors() as err:
            return _fail(_msg(err))
    parser = build_parser()
    try:
        a, extra = parser.parse_known_args(argv)
        if a.command in ("train", "demo"):  # key=value overrides may come after the options too
            a.overrides = list(a.overrides) + [x for x in extra if "=" in x and not x.startswith("-")]
            extra = [x for x in extra if not ("=" in x and not x.startswith("-"))]
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:
        return int(e.code or 0)
    if a.command is None:
        parser.print_help()
        return 2
    debug = os.environ.get("INRGEN_DEBUG", "") not in ("", "0")
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return _run(a, debug)
    old = signal.signal(signal.SIGTERM, _on_sigterm)  # training installs its own while it trains
    try:
        return _run(a, debug)
    finally:
        signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
