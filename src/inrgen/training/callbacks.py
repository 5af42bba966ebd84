"""Lightning callbacks of an inrgen run: checkpoint folders, held-out evaluation with image grids,
stopping early at a given step, and stopping cleanly on SIGINT / SIGTERM.

They act on the global-rank-0 process only and leave the global random generators as they were, so
adding or removing them never changes the trained parameters.

:class:`StopOnSignal` turns the first Ctrl-C (SIGINT) or SIGTERM into "finish this step, save a
checkpoint, stop" (no final evaluation, so a scheduler's grace period suffices); a second Ctrl-C stops
at once, keeping the last checkpoint written.

Files they write in the run folder ``out/``::

    out/checkpoint/             config.json, model.safetensors, training_state.pt (the latest step)
    out/eval.json               the latest held-out evaluation (per-item PSNR, mean and std)
    out/images/recon-step{s:07d}.png     ground truth (top row) and reconstruction (bottom row)
    out/images/samples-step{s:07d}.png   samples from the prior (generative models)

Example:
    >>> cbs = [CheckpointCallback(out, preset), EvalCallback(out, datamodule)]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from numbers import Real
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from inrgen.checkpoint import save_checkpoint
from inrgen.configs.base import Preset
from inrgen.data.points import PointSetPair
from inrgen.training.datamodule import INRDataModule
from inrgen.training.evaluation import evaluate, move_batch, predict_targets
from inrgen.training.module import INRLightningModule
from inrgen.training.outputs import display_images, save_grid, write_json
from inrgen.training.state import capture_rng, preserve_rng, restore_rng

__all__ = [
    "CheckpointCallback",
    "EvalCallback",
    "StopAtStep",
    "RestoreState",
    "StopOnSignal",
    "training_state",
    "checkpoint_extra",
]


def checkpoint_extra(
    preset: Preset,
    step: int,
    data_info: dict[str, Any] | None = None,
    resumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What config.json holds besides the model: the whole preset (name, data, train), the step, and the
    settings each resume changed (``resumes``: ``[{"step": N, "changes": {key: [old, new]}}]``)."""
    d = preset.to_dict()
    d.pop("model", None)
    d.pop("model_config", None)
    d["step"] = int(step)
    if data_info:
        d["data_info"] = data_info
    if resumes:
        d["resumes"] = resumes
    return d


class StopOnSignal(pl.Callback):
    """Stops training after the current step on SIGINT (Ctrl-C) or SIGTERM (see the module docstring).

    ``signum`` is the signal received (None: none); ``hard`` is True after a second Ctrl-C, which raises
    ``KeyboardInterrupt`` at once. Use :meth:`installed` around ``trainer.fit``.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.hard = False

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            self.hard = True
            raise KeyboardInterrupt
        if self.signum is None:
            self.signum = signum
            again = " (Ctrl-C again stops at once)" if signum == signal.SIGINT else ""
            print(f"\ninrgen: {signal.Signals(signum).name}: stopping after this step and saving a checkpoint"
                  f"{again}", file=sys.stderr, flush=True)  # fmt: skip

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopOnSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach the main thread only
            return
        old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.signum is not None:
            trainer.should_stop = True


def training_state(module: INRLightningModule, trainer: pl.Trainer, seed: int) -> dict[str, Any]:
    """Optimizer, learning-rate schedule, step and RNG states, as tensors and plain Python only."""
    t = module.train_cfg
    state: dict[str, Any] = {
        "step": module.step,
        "seed": int(seed),
        "optimizer": trainer.optimizers[0].state_dict(),
        # the schedule is a pure function of the step (inrgen.training.module.lr_factor)
        "scheduler": {
            "kind": t.schedule,
            "lr": t.lr,
            "warmup_steps": t.warmup_steps,
            "max_steps": t.max_steps,
            "last_lr": module.current_lr(max(0, module.step - 1)),
        },
        "rng": capture_rng(),
    }
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is not None:
        state["grad_scaler"] = scaler.state_dict()
    return state


class CheckpointCallback(pl.Callback):
    """Writes ``out/checkpoint`` atomically every ``every`` steps, when training ends, and when it is
    stopped by a signal (``stop``); then fsyncs the CSV log. Weights that became NaN or infinite are
    never saved over the last good checkpoint (``FloatingPointError``)."""

    def __init__(
        self,
        out: Path,
        preset: Preset,
        every: int,
        data_info: dict[str, Any] | None = None,
        stop: StopOnSignal | None = None,
        resumes: list[dict[str, Any]] | None = None,
    ):
        self.folder = Path(out) / "checkpoint"
        self.preset, self.every, self.data_info = preset, max(0, int(every)), data_info
        self.stop, self.resumes = stop, resumes
        self.last_saved = -1
        self.saved_step: int | None = None  # the step of the latest checkpoint this run wrote

    def save(self, trainer: pl.Trainer, module: INRLightningModule) -> None:
        step = module.step
        if step == self.last_saved:
            return
        self.last_saved = step
        if not trainer.is_global_zero:
            return
        bad = [n for n, p in module.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            kept = f"the checkpoint of step {self.saved_step} is kept" if self.saved_step is not None else (
                "no checkpoint was written")  # fmt: skip
            raise FloatingPointError(
                f"the weights became NaN or infinite by step {step} ({len(bad)} tensor(s), e.g. {bad[0]}): "
                f"training diverged and {kept}; lower train.lr or set train.grad_clip"
            )
        state = training_state(module, trainer, self.preset.train.seed)
        save_checkpoint(
            self.folder,
            module.model,
            extra=checkpoint_extra(self.preset, step, self.data_info, self.resumes),
            training_state=state,
        )
        self.saved_step = step
        for lg in trainer.loggers:
            if hasattr(lg, "sync"):
                lg.sync()

    def on_exception(self, trainer, pl_module, exception) -> None:
        # stopped by a signal between two steps (Lightning raises on SIGTERM, or a data worker died of
        # the same Ctrl-C): the step is complete, so save it; not after a second Ctrl-C (mid-step)
        if self.stop is not None and self.stop.signum is not None and not self.stop.hard:
            self.save(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every and pl_module.step % self.every == 0:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer, pl_module)


class StepProgressBar(TQDMProgressBar):
    """Lightning's progress bar over the steps of the run, showing the model's loss terms (no epoch or
    logger version)."""

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        start = getattr(pl_module, "start_step", 0)
        self.train_progress_bar.set_description(f"steps {start}+" if start else "steps")


class StopAtStep(pl.Callback):
    """Stops training after ``step`` (counted over the whole run), as if the run had been interrupted:
    the learning-rate schedule still targets ``train.max_steps``."""

    def __init__(self, step: int) -> None:
        self.stop = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.step >= self.stop:
            trainer.should_stop = True


class RestoreState(pl.Callback):
    """Puts a checkpoint's RNG states (and mixed-precision loss scale) back when training starts, after
    every set-up step that draws random numbers."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def on_train_start(self, trainer, pl_module) -> None:
        restore_rng(self.state["rng"])
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None and "grad_scaler" in self.state:
            scaler.load_state_dict(self.state["grad_scaler"])


class EvalCallback(pl.Callback):
    """Every ``every`` steps and at the end: held-out PSNR (logged as ``test/psnr_mean`` and
    ``test/psnr_std``, written to ``out/eval.json``) and PNG grids of reconstructions and samples."""

    def __init__(
        self,
        out: Path,
        datamodule: INRDataModule,
        every: int,
        num_images: int = 8,
        chunk_size: int | None = None,
        history: list[dict[str, Any]] | None = None,
        stop: StopOnSignal | None = None,
    ) -> None:
        self.out = Path(out)
        self.stop = stop
        self.dm, self.every, self.num_images, self.chunk_size = (
            datamodule,
            max(0, int(every)),
            num_images,
            chunk_size,
        )
        self.last_step = -1
        self.history: list[dict[str, Any]] = list(history or [])  # a resumed run's earlier evaluations
        self.latest: dict[str, Any] | None = None

    def run(self, trainer: pl.Trainer, module: INRLightningModule) -> dict[str, Any] | None:
        step = module.step
        if step == self.last_step or not trainer.is_global_zero:
            return None
        self.last_step = step
        model = module.model
        summary = evaluate(model, self.dm.eval_batches(), step=step, chunk_size=self.chunk_size)
        metrics = {k.replace("psnr_", "test/psnr_"): v for k, v in summary.items() if k.startswith("psnr_")}
        metrics.pop("test/psnr_per_item", None)
        metrics.update({f"test/{k[5:]}": v for k, v in summary.items() if k.startswith("loss/")})
        metrics = {k: v for k, v in metrics.items() if isinstance(v, Real) and not isinstance(v, bool)}
        for lg in module.loggers:
            lg.log_metrics(metrics, step=step)
        self.latest = summary
        self.history.append({k: v for k, v in summary.items() if k != "psnr_per_item"})
        write_json(self.out / "eval.json", {"latest": summary, "history": self.history})
        self.write_images(model, step)
        return summary

    @torch.no_grad()
    def write_images(self, model, step: int) -> None:
        """Ground truth over reconstruction of the first held-out items; samples for generative models."""
        from inrgen.data.points import collate

        ds = self.dm.eval_set()
        k = min(self.num_images, len(ds))
        if k == 0:
            return
        was = model.training
        model.eval()
        try:
            with preserve_rng():
                torch.manual_seed(0)
                shown = [ds[(j * len(ds)) // k] for j in range(k)]  # spread over the held-out items
                batch = move_batch(collate(shown), next(model.parameters()).device)
                pred, target = predict_targets(model, batch, self.chunk_size)
                shown = torch.where(target.observed.unsqueeze(-1), target.values, float("nan"))
                truth = display_images(shown, target.grid_shape, target.kind, target.meta)
                recon = display_images(pred.mean, target.grid_shape, target.kind, target.meta)
                if truth is not None and recon is not None:
                    save_grid(
                        self.out / "images" / f"recon-step{step:07d}.png", torch.cat([truth, recon]), nrow=k
                    )
                if getattr(model, "generative", False) and not isinstance(batch, PointSetPair):
                    g = torch.Generator().manual_seed(0)
                    sample = model.sample(k, target.coords[:1].expand(k, -1, -1), generator=g)
                    img = display_images(sample.mean, target.grid_shape, target.kind, target.meta)
                    if img is not None:
                        save_grid(self.out / "images" / f"samples-step{step:07d}.png", img, nrow=k)
        finally:
            model.train(was)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every and pl_module.step % self.every == 0:
            self.run(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.stop is not None and self.stop.signum is not None:
            return  # stopped by a signal: save and exit quickly, evaluate when the run completes
        self.run(trainer, pl_module)
