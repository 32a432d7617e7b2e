"""The bookkeeping of a training loop, so that the loop itself reads as the paper's algorithm.

``Run`` is not a trainer: it never calls the model. The loop stays in ``train.py``::

    run = Run(args, "began_refiner", models, model_args, optimizers, schedulers, resumed=resumed,
              columns=[...], images_per_step=args.batch_size)
    k = run.extra.get("k", k)                        # state a resumed run brings back
    for step in run.steps():                         # start+1 … args.steps; Ctrl-C stops it cleanly
        ...                                          # discriminator step, generator step (the paper)
        run.log(step, loss_D=loss_d, loss_G=loss_g, k=k)    # tensors; no host sync but at log steps
        if run.due(step, args.fid_every):
            run.log_eval(step, fid=...)              # merged into that step's row
        if run.due(step, args.sample_every):
            ...                                      # write samples/step_XXXXXXX.png
        run.save(step, k=k, batches=batches)         # at --ckpt-every, the last step and Ctrl-C
    run.finish(title=...)                            # loss.png, and where everything is

What it does for the loop:
- **finiteness at every step without a sync**: ``log`` records, on the device, the first
  step at which each value stopped being finite; the flag is read where the loop syncs
  anyway (log steps) and before every checkpoint, so no checkpoint ever holds a NaN;
- ``log.csv`` rows (losses, ``lr``, ``img_s``, ``time_s``) every ``--log-every`` steps, and
  the progress bar; evaluation time (FID) is counted neither in ``img_s`` nor in ``time_s``,
  the training time so far (which a resumed run carries on from its checkpoint);
- atomic checkpoints with the networks' ``model_args``; Ctrl-C saves one and stops;
- on ``--resume``, restoring everything (``common.run.restore``) and the log.
"""
import csv
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.run import new_run_dir, non_finite, restore, save_checkpoint, write_config


COLLAPSED = 0.3     # sample diversity below this (1 = as diverse as real faces): most samples look alike


class Run:
    """One training run's folder, log, progress bar, checkpoints and stop handling."""

    def __init__(self, args, paper: str, models: dict, model_args: dict, optimizers: dict, schedulers=None, *,
                 resumed=None, columns=(), images_per_step: int, bar_keys=(), desc=None):
        self.args, self.paper, self.models, self.model_args = args, paper, models, model_args
        self.optimizers, self.schedulers = optimizers, schedulers or {}
        if resumed is not None:
            restore(resumed, models, optimizers, self.schedulers)
        self.start = resumed["step"] if resumed else 0
        self.extra = resumed["extra"] if resumed else {}
        self.dir = new_run_dir(args.out, paper)
        (self.dir / "samples").mkdir(parents=True, exist_ok=True)
        self.config = write_config(self.dir, args)
        self.checkpoint = self.dir / "checkpoint.pt"
        self.saved_step = self.start if resumed else None       # the last good checkpoint's step
        self.csv = CsvLogger(self.dir / "log.csv", resume_step=self.start if resumed else None,
                             columns=[*columns, "lr", "img_s", "time_s"])
        self.speed = ImagesPerSecond(images_per_step, self.start)
        self.speed.training_time = self.extra.get("time_s", 0.0)
        self.bar = progress(args.steps, initial=self.start, desc=desc or paper)
        self.bar_keys = bar_keys
        self._names, self._first_bad, self._checked = None, None, self.start
        self._state, self._stop, self._logged_at = {}, None, time.perf_counter()
        self.stopped = False                                     # True after a Ctrl-C ended the loop early
        self.note = ""                                           # the last diversity, for the bar

    # ----------------------------------------------------------- the loop's calls

    def steps(self):
        """Steps ``start + 1 … args.steps``. After a Ctrl-C the current step finishes,
        a checkpoint is written and the iteration ends (a second Ctrl-C aborts at once)."""
        with StopOnInterrupt() as self._stop:
            for step in range(self.start + 1, self.args.steps + 1):
                yield step
                if self._stop.requested:
                    self.stopped = True
                    if self.saved_step != step:
                        self._write_checkpoint(step)
                    print(f"\nstopped at step {step}; continue with --resume --out {self.dir}")
                    return

    def due(self, step: int, every: int) -> bool:
        """True every ``every`` steps and at the last step."""
        return step % every == 0 or step == self.args.steps

    def log(self, step: int, **values) -> None:
        """Record this step's values (tensors or numbers; ``None`` is left out).

        Every step: which values stopped being finite, on the device (no sync). At log
        steps: one sync reads them into a ``log.csv`` row with ``lr`` and ``img_s``.
        """
        values = {name: v for name, v in values.items() if v is not None}
        tensors = {name: v for name, v in values.items() if isinstance(v, torch.Tensor)}
        if self._names is None:
            self._names = list(tensors)
            self._first_bad = torch.zeros(len(self._names), dtype=torch.long,
                                          device=next(iter(tensors.values())).device if tensors else "cpu")
        if self._names:
            finite = torch.stack([torch.isfinite(tensors[n].detach()).all() for n in self._names])
            self._first_bad = torch.where((self._first_bad == 0) & ~finite, step, self._first_bad)
        self.bar.update()
        if step % self.args.log_every and step != self.args.steps:
            return
        row = {name: (v.item() if isinstance(v, torch.Tensor) else v) for name, v in values.items()}
        self._check_finite(step, row)
        lr = next(iter(self.optimizers.values())).param_groups[0]["lr"] if self.optimizers else None
        self.csv.log(step=step, **row, lr=lr, img_s=self.speed(step), time_s=self.speed.training_time)
        self.bar.set_postfix({**{k: f"{row[k]:.3g}" for k in self.bar_keys if k in row},
                              **({"diversity": self.note} if self.note else {})})
        self._logged_at = time.perf_counter()

    def log_eval(self, step: int, **metrics) -> None:
        """Add evaluation numbers (FID, diversity …) to this step's ``log.csv`` row. Call it
        right after ``log``: the time since then is evaluation, not counted in ``img_s``.
        A ``diversity`` below ``COLLAPSED`` after step 0 (an untrained generator's samples
        may all look alike) puts a warning in the progress bar."""
        self.csv.log(step=step, **{k: v for k, v in metrics.items() if v is not None})
        if metrics.get("diversity") is not None:
            d = metrics["diversity"]
            self.note = f"{d:.2f} (mode collapse?)" if d < COLLAPSED and step > 0 else f"{d:.2f}"
        self.speed.exclude(time.perf_counter() - self._logged_at)

    def save(self, step: int, **state) -> None:
        """Write ``checkpoint.pt`` at ``--ckpt-every``, at the last step, and after Ctrl-C.

        ``state``: what the loop needs to continue exactly besides networks and
        optimisers (k_t, the batch order, fixed noise …); objects with a ``state_dict``
        give it. Refused, with the run stopped, if anything is not finite.
        """
        self._state = state
        if self.due(step, self.args.ckpt_every) or self._stop.requested:
            self._write_checkpoint(step)

    def finish(self, plot_columns=None, title=None) -> Path:
        """Close the bar, draw ``loss.png`` from ``log.csv`` and say where the outputs are."""
        from common.plots import plot_losses            # plots imports this module
        self.bar.close()
        plot_losses(self.dir / "log.csv", self.dir / "loss.png", columns=plot_columns, title=title or self.paper)
        print(f"run folder: {self.dir} (samples/, log.csv, loss.png, checkpoint.pt); "
              f"evaluate with: python {self.paper}/eval.py --run {self.dir}")
        return self.dir

    # ----------------------------------------------------------- inside

    def _write_checkpoint(self, step):
        self._check_finite(step)
        bad = non_finite(self.models)
        if bad:
            self._fail(f"a weight of {', '.join(bad)} is not finite after step {step}")
        save_checkpoint(self.checkpoint, paper=self.paper, step=step, models=self.models,
                        model_args=self.model_args, optimizers=self.optimizers, schedulers=self.schedulers,
                        extra={**self._state, "time_s": self.speed.elapsed()}, config=self.config)
        self.saved_step = step

    def _check_finite(self, step, row=None):
        """Stop with one sentence if a value logged since the last check was not finite."""
        if self._checked == step or not self._names:
            return
        self._checked = step
        first_bad = self._first_bad.tolist()
        bad = [(s, i) for i, s in enumerate(first_bad) if s]
        if bad:
            s, i = min(bad)                     # the earliest step; at one step, the first value logged
            name = self._names[i]
            now = f" ({row[name]} at step {step})" if row else ""
            self._fail(f"{name} became non-finite at step {s}{now}")

    def _fail(self, what):
        self.bar.close()
        if self.saved_step is None:
            kept = "no checkpoint was written"
        else:
            kept = f"the last good checkpoint (step {self.saved_step}) stays in {self.checkpoint}"
        raise SystemExit(f"{what}; {kept}. A lower --lr often helps (--resume --lr X continues the "
                         f"checkpoint with it).")


# --------------------------------------------------------------------- log.csv


def _cell(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


class CsvLogger:
    """Append one row per step to ``log.csv``; a second ``log`` call for the same step
    fills in more cells of that row.

    The header comes from ``columns`` when given, else from the first row's keys; rows
    may leave columns out (empty cell) but may not add new ones. Floats are written
    with 6 significant digits. The file is complete on disk after every call.

    ``resume_step``: continuing a run from a checkpoint at that step, keep only the
    rows with ``step <= resume_step`` (later rows were never saved into it, and will be
    logged again). ``None``: a new run, the file starts empty.
    """

    def __init__(self, path, resume_step=None, columns=None):
        self.path = Path(path)
        self.columns = None
        self._last = None            # (step, row, file offset where that row starts)
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                kept = [row for row in reader if float(row["step"]) <= resume_step]
                self.columns = reader.fieldnames  # None if the file was empty
            if self.columns:
                self._write(kept, mode="w")
        elif self.path.exists():
            self.path.unlink()
        if self.columns is None and columns:
            self.columns = ["step", *columns]
            self._write([], mode="w")  # header only

    def log(self, step: int, **values) -> None:
        if self._last is not None and self._last[0] == step:          # more cells for the same row
            values = {**self._last[1], **values}
            with open(self.path, "r+b") as f:
                f.truncate(self._last[2])
        row = {"step": step, **values}
        if self.columns is None:
            self.columns = list(row)
            self._write([], mode="w")  # header only
        new = [k for k in row if k not in self.columns]
        if new:
            raise ValueError(f"log.csv has no column {new[0]!r}: its columns are fixed by "
                             f"the first row ({', '.join(self.columns)}).")
        offset = self.path.stat().st_size
        self._write([{k: _cell(v) for k, v in row.items()}], mode="a")
        self._last = (step, values, offset)

    def _write(self, rows, mode):
        with open(self.path, mode, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)


def read_log(path) -> dict:
    """Read ``log.csv`` back as ``{column: [float, ...]}``; empty or non-numeric cells become ``nan``."""
    def number(text):
        try:
            return float(text)
        except (TypeError, ValueError):
            return float("nan")

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return {c: [number(row.get(c)) for row in rows] for c in (reader.fieldnames or [])}


# --------------------------------------------------------------------- stopping, speed


class StopOnInterrupt:
    """``with StopOnInterrupt() as stop:`` -- the first Ctrl-C only sets
    ``stop.requested = True``; the loop checks it after the step, saves a
    checkpoint and leaves. A second Ctrl-C raises ``KeyboardInterrupt`` as usual.

    Signal handlers can only be installed from the main thread; anywhere else
    (a thread, some test runners) this does nothing and Ctrl-C behaves as usual.
    """

    def __init__(self):
        self.requested = False
        self._previous = None
        self._installed = False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: finishing this step, saving a checkpoint, then stopping "
              "(press Ctrl-C again to abort at once).", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc):
        if self._installed:
            # None means the old handler was not set from Python: use Python's default.
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False
        return False


def progress(total: int, initial: int = 0, desc=None) -> tqdm:
    """A tqdm bar over steps (rate and ETA); ``bar.update()``, ``bar.set_postfix(...)``."""
    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=0.5)


class ImagesPerSecond:
    """Training speed between two calls, for ``log.csv``'s ``img_s``.

    ``speed(step)`` returns the images per second since the previous call (or
    ``restart``). On CUDA it first waits for the GPU (``synchronize``), so the time is
    the real compute time; that happens only when called, i.e. at log steps.
    """

    def __init__(self, images_per_step: int, start_step: int = 0):
        self.images_per_step = images_per_step
        self.last_step = start_step
        self.last_time = time.perf_counter()
        self.training_time = 0.0                     # seconds counted so far (this process)

    def elapsed(self) -> float:
        """Training seconds so far, up to now."""
        return self.training_time + time.perf_counter() - self.last_time

    def exclude(self, seconds: float):
        """Leave ``seconds`` (spent on something else than training) out of the next rate."""
        self.last_time += seconds

    def __call__(self, step: int) -> float:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        now = time.perf_counter()
        images = (step - self.last_step) * self.images_per_step
        rate = images / max(now - self.last_time, 1e-9)
        self.training_time += now - self.last_time
        self.last_step, self.last_time = step, now
        return rate
