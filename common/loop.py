"""The bookkeeping of a training loop, so that the loop itself reads as the paper's algorithm.

``Run`` is not a trainer: it never calls the model. The loop stays in ``train.py``::

    run = Run(args, "began_refiner", models, model_args, optimizers, schedulers, resumed=resumed,
              state=dict(k=k0, batches=batches), columns=[...], images_per_step=args.batch_size, ema=args.ema)
    k = run.state["k"]                               # k0, or the value a resumed run brings back
    ema = run.moving_average("G")                    # ema=DECAY: an average of G (common.ema); 0: None
    if not run.resumed:
        run.log_eval(0, fid=...)                     # before any training
    for step in run.steps():                         # start+1 … args.steps; Ctrl-C stops it cleanly
        ...                                          # discriminator step, generator step (the paper)
        if ema:
            ema.update(step)                         # after G's step: θ̄ ← β·θ̄ + (1 − β)·θ
        run.log(step, loss_D=loss_d, loss_G=loss_g, k=k)    # tensors; no host sync but at log steps
        if run.due(step, args.fid_every):
            run.log_eval(step, fid=...)              # merged into that step's row
        if run.due(step, args.sample_every):
            ...                                      # write samples/step_<step>.png
        run.save(step, k=k)                          # at --ckpt-every, the last step and Ctrl-C
    return run.finish(title=...)                     # loss.png, and where everything is

What it does for the loop:
- **one process per run folder**: the folder is claimed (``common.folders.claim_folder``) before
  anything is written; a second process is refused with one sentence;
- **state declared once**: ``state`` names what the loop needs besides networks and optimisers
  to continue exactly (k_t, the batch order, fixed noise, a random generator …). A resumed run
  restores each entry (objects with ``load_state_dict`` and random generators in place, values
  replaced in ``run.state``); ``save(step, name=value)`` gives the new values of those that change;
- **finiteness at every step without a sync**: ``log`` records, on the device, the first
  step at which each declared column stopped being finite (a column may be ``None`` for a
  while, as a loss that starts later); the flag is read where the loop syncs anyway (log
  steps) and before every checkpoint, so no checkpoint ever holds a NaN;
- ``log.csv`` rows (losses, ``lr``, ``img_s``, ``time_s``) every ``--log-every`` steps, and
  the progress bar; evaluation time (FID) is counted neither in ``img_s`` nor in ``time_s``,
  the training time so far (which a resumed run carries on from its checkpoint);
- atomic checkpoints with the networks' ``model_args``; Ctrl-C saves one, says how to
  continue and exits with status 130 (so ``train && eval`` does not evaluate a partial run);
- under torchrun (``common.distributed``): rank 0 alone claims the folder and writes config,
  log.csv, samples, FID and checkpoints (``due`` is False elsewhere); logged values are averaged
  over processes; a non-finite value or a Ctrl-C in any process stops all of them at the same step.
"""
import math
import os
import signal
import threading
import time

import torch
from tqdm import tqdm

from common import distributed
from common.checkpoints import load_models, non_finite, read_checkpoint, restore, save_checkpoint
from common.csvlog import CsvLogger
from common.device import seed_everything
from common.ema import MovingAverage
from common.folders import claim_folder, new_run_dir, write_config
from common.plots import plot_losses

COLLAPSED = 0.3     # sample diversity below this (1 = as diverse as real faces): most samples look alike


class Run:
    """One training run's folder, log, progress bar, checkpoints and stop handling."""

    def __init__(self, args, paper: str, models: dict, model_args: dict, optimizers: dict, schedulers=None, *,
                 resumed=None, state=None, columns=(), images_per_step: int, bar_keys=(), desc=None,
                 resume_hint=None, ema: float = 0.0):
        self.args, self.paper, self.models, self.model_args = args, paper, models, model_args
        self.optimizers, self.schedulers = optimizers, schedulers or {}
        self.writes = distributed.rank() == 0                    # under torchrun: rank 0 alone writes
        self.dir = new_run_dir(args.out, paper)
        self.checkpoint = self.dir / "checkpoint.pt"
        if self.writes:
            claim_folder(self.dir)                               # before anything is written
            _check_unchanged(self.checkpoint, resumed)
        self.state, self.resumed = dict(state or {}), resumed is not None
        self._resumed_from, self.averages = resumed, {}
        self.start = resumed["step"] if resumed else 0
        if resumed is not None:
            restore(resumed, models, optimizers, self.schedulers)
            self._restore_state(resumed["extra"])
            if not self.writes:                                  # the checkpoint holds rank 0's random state
                seed_everything(args.seed + self.start)
        self.config = vars(args)
        if self.writes:
            (self.dir / "samples").mkdir(parents=True, exist_ok=True)
            self.config = write_config(self.dir, args)
        self.saved_step = self.start if resumed else None       # the last good checkpoint's step
        self.columns, self.ema_decay = list(columns), ema
        if ema:                                  # --ema: the average's FID beside G's (common.ema)
            self.columns += [f"{c}_ema" for c in ("fid", "diversity", "diversity_px") if c in self.columns]
        self.csv = CsvLogger(self.dir / "log.csv", resume_step=self.start if resumed else None,
                             columns=[*self.columns, "lr", "img_s", "time_s"]) if self.writes else None
        self.speed = ImagesPerSecond(images_per_step, self.start)
        self.speed.training_time = resumed["extra"].get("time_s", 0.0) if resumed else 0.0
        self.bar = progress(args.steps, initial=self.start, desc=desc or paper, disable=not self.writes)
        self.bar_keys = bar_keys
        launcher = (f"torchrun --standalone --nproc_per_node {distributed.world()}" if distributed.world() > 1
                    else "python")
        self.resume_hint = resume_hint or f"{launcher} {paper}/train.py --resume --out {self.dir}"
        self._column = {name: i for i, name in enumerate(self.columns)}
        self._index, self._first_bad, self._checked = {}, None, self.start
        self._stop, self._logged_at = None, time.perf_counter()
        self.stopped = False                                     # True after a Ctrl-C ended the loop early
        self.note = ""                                           # the last diversity, for the bar

    # ----------------------------------------------------------- the loop's calls

    def steps(self):
        """Steps ``start + 1 … args.steps``. After a Ctrl-C the current step finishes,
        a checkpoint is written and the iteration ends (a second Ctrl-C aborts at once)."""
        if distributed.world() > 1 and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._ended_elsewhere)
        with StopOnInterrupt() as self._stop:
            for step in range(self.start + 1, self.args.steps + 1):
                yield step
                if distributed.world() > 1:                     # every process stops at the same step
                    self._stop.requested = distributed.any_process(self._stop.requested)
                if self._stop.requested:
                    self.stopped = True
                    if self.saved_step != step:
                        self._write_checkpoint(step)
                    return

    def moving_average(self, name: str = "G"):
        """With ``Run(ema=DECAY)`` (``--ema``): a ``common.ema.MovingAverage`` of ``models[name]``, saved in
        every checkpoint as ``<name>_ema`` and brought back on ``--resume``; with ``ema=0``, ``None``."""
        if not self.ema_decay:
            return None
        ema = MovingAverage(self.models[name], self.ema_decay)
        self.averages[f"{name}_ema"] = ema.net
        if self._resumed_from is not None and f"{name}_ema" in self._resumed_from["models"]:
            load_models({f"{name}_ema": ema.net}, self._resumed_from, where=str(self.checkpoint))
        elif self._resumed_from is not None and self.writes:    # a run from before --ema was its preset's
            print(f"--resume: this run kept no average of {name}; one starts now from its current weights.")
        return ema

    def due(self, step: int, every: int) -> bool:
        """True every ``every`` steps and at the last step, in the process that writes the run (FID and
        samples are its work; under torchrun the others go on to the next step and wait for it there)."""
        return self.writes and self._every(step, every)

    def _every(self, step, every):
        return step % every == 0 or step == self.args.steps

    def log(self, step: int, **values) -> None:
        """Record this step's values (tensors or numbers; ``None`` is left out) under the declared columns.

        Every step: which values stopped being finite, on the device (no sync). At log
        steps: one sync reads them into a ``log.csv`` row with ``lr`` and ``img_s``.
        """
        values = {name: v for name, v in values.items() if v is not None}
        tensors = {name: v for name, v in values.items() if isinstance(v, torch.Tensor)}
        if tensors:
            self._watch(step, tensors)
        self.bar.update()
        if not self._every(step, self.args.log_every):
            return
        tensors = dict(zip(tensors, distributed.average(*tensors.values())))    # the mean over processes
        row = {name: (tensors[name].item() if name in tensors else v) for name, v in values.items()}
        self._check_finite(step, row)
        if not self.writes:
            return
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
        if not self.writes:
            return
        self.csv.log(step=step, **{k: v for k, v in metrics.items() if v is not None})
        if metrics.get("diversity") is not None:
            d = metrics["diversity"]
            self.note = f"{d:.2f} (mode collapse?)" if d < COLLAPSED and step > 0 else f"{d:.2f}"
        self.speed.exclude(time.perf_counter() - self._logged_at)

    def save(self, step: int, **changed) -> None:
        """Write ``checkpoint.pt`` at ``--ckpt-every``, at the last step, and after Ctrl-C.

        ``changed``: the new values of declared ``state`` entries that the loop replaces (k_t …);
        objects such as the batch order are saved as they are. Refused, with the run stopped,
        if anything is not finite.
        """
        unknown = [name for name in changed if name not in self.state]
        if unknown:
            raise ValueError(f"Run.save: {unknown[0]!r} is not declared in Run(state=...)")
        self.state.update(changed)
        if self._every(step, self.args.ckpt_every) or self._stop.requested:
            self._write_checkpoint(step)

    def finish(self, plot_columns=None, title=None):
        """Close the bar, draw ``loss.png`` from ``log.csv`` and say where the outputs are.
        After a Ctrl-C: say how to continue, and exit with status 130 (interrupted)."""
        self.bar.close()
        if not self.writes:
            if self.stopped:
                raise SystemExit(130)
            return self.dir
        plot_losses(self.dir / "log.csv", self.dir / "loss.png", columns=plot_columns, title=title or self.paper)
        if self.stopped:
            print(f"\nstopped at step {self.saved_step}, saved in {self.checkpoint}; continue with: "
                  f"{self.resume_hint}")
            raise SystemExit(130)
        print(f"run folder: {self.dir} (samples/, log.csv, loss.png, checkpoint.pt); "
              f"evaluate with: python {self.paper}/eval.py --run {self.dir}")
        return self.dir

    # ----------------------------------------------------------- inside

    def _ended_elsewhere(self, signum, frame):
        """Under torchrun a SIGTERM means another process of the run ended (torchrun stops the others
        within seconds): say so in one line and leave at once, never waiting for it."""
        if not self.writes:
            kept = ""
        elif self.saved_step is None:
            kept = "; no checkpoint was written"
        else:
            kept = f"; the last good checkpoint (step {self.saved_step}) stays in {self.checkpoint}"
        print(f"\nprocess {distributed.rank()} stopped: another process of this run ended first (torchrun says "
              f"which){kept}.", flush=True)
        os._exit(143)

    def _restore_state(self, extra):
        """Bring back each declared ``state`` entry from a checkpoint's ``extra``."""
        for name, value in self.state.items():
            if name not in extra:
                raise SystemExit(f"{self.checkpoint} holds no {name!r}, which this script needs to continue; "
                                 f"it was written by another version of it: start a new run.")
            saved = extra[name]
            if isinstance(value, torch.Generator):
                value.set_state(saved)
            elif hasattr(value, "load_state_dict"):
                value.load_state_dict(saved)
            elif isinstance(value, torch.Tensor):
                self.state[name] = saved.to(value.device)
            else:
                self.state[name] = saved

    def _watch(self, step, tensors):
        """On the device: the first step at which each of these columns was not finite (0: never yet)."""
        names = tuple(tensors)
        index = self._index.get(names)
        if index is None:                                   # the first step that logs this set of values
            unknown = [name for name in names if name not in self._column]
            if unknown:
                raise ValueError(f"Run.log: {unknown[0]!r} is not one of the declared columns "
                                 f"({', '.join(self.columns)})")
            device = tensors[names[0]].device
            if self._first_bad is None:
                self._first_bad = torch.zeros(len(self.columns), dtype=torch.long, device=device)
            index = self._index[names] = torch.tensor([self._column[n] for n in names], device=device)
        finite = torch.stack([torch.isfinite(t.detach()).all() for t in tensors.values()])
        first = self._first_bad[index]
        self._first_bad[index] = torch.where((first == 0) & ~finite, step, first)

    def _write_checkpoint(self, step):
        self._check_finite(step)
        bad = non_finite({**self.models, **self.averages})
        if distributed.any_process(bool(bad)):
            self._fail(f"a weight of {', '.join(bad) or 'a network (in another process)'} is not finite after "
                       f"step {step}")
        self.saved_step = step
        if not self.writes:
            return
        extra = {name: value.get_state() if isinstance(value, torch.Generator) else value
                 for name, value in self.state.items()}
        save_checkpoint(self.checkpoint, paper=self.paper, step=step, models={**self.models, **self.averages},
                        model_args=self.model_args, optimizers=self.optimizers, schedulers=self.schedulers,
                        extra={**extra, "time_s": self.speed.elapsed()}, config=self.config)

    def _check_finite(self, step, row=None):
        """Stop with one sentence if a value logged since the last check was not finite: the earliest
        step the device recorded, else a plain number of this row."""
        if self._checked != step and self._first_bad is not None:
            self._checked = step
            bad = [(s, i) for i, s in enumerate(distributed.earliest(self._first_bad).tolist()) if s]
            if bad:
                s, i = min(bad)                 # the earliest step; at one step, the first column declared
                name = self.columns[i]
                now = f" ({row[name]} at step {step})" if row and name in row else ""
                self._fail(f"{name} became non-finite at step {s}{now}")
        bad = [name for name, v in (row or {}).items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            self._fail(f"{bad[0]} became non-finite at step {step} ({row[bad[0]]})")

    def _fail(self, what):
        self.bar.close()
        if self.saved_step is None:
            kept = "no checkpoint was written"
        else:
            kept = f"the last good checkpoint (step {self.saved_step}) stays in {self.checkpoint}"
        raise SystemExit(f"{what}; {kept}. A lower --lr often helps (--resume --lr X continues the "
                         f"checkpoint with it).")


def _check_unchanged(checkpoint, resumed):
    """The run folder, now claimed, is as the command line was checked against: no checkpoint for a
    new run, the same step for a resumed one (another process may have written it in between)."""
    if resumed is None and checkpoint.exists():
        raise SystemExit(f"{checkpoint.parent} already holds a checkpoint.pt: add --resume to continue that run, "
                         f"or choose another --out.")
    if resumed is not None and read_checkpoint(checkpoint)["step"] != resumed["step"]:
        raise SystemExit(f"{checkpoint} changed while this command started (another process trained it): "
                         f"run --resume again to continue from where it is now.")


# --------------------------------------------------------------------- stopping, speed


class StopOnInterrupt:
    """``with StopOnInterrupt() as stop:`` -- the first Ctrl-C only sets
    ``stop.requested = True`` and prints ``said``; the loop checks it after the step, saves a
    checkpoint and leaves. A second Ctrl-C raises ``KeyboardInterrupt`` as usual.

    Signal handlers can only be installed from the main thread; anywhere else
    (a thread, some test runners) this does nothing and Ctrl-C behaves as usual.
    """

    def __init__(self, said="finishing this step, saving a checkpoint, then stopping"):
        self.requested, self.said = False, said
        self._previous = None
        self._installed = False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if distributed.rank() == 0:                 # under torchrun every process gets it: one says so
            print(f"\nCtrl-C: {self.said} (press Ctrl-C again to abort at once).", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            # restart system calls the signal interrupts: under torchrun, gloo's socket reads in other
            # threads would otherwise fail with EINTR and abort the process mid-step
            signal.siginterrupt(signal.SIGINT, False)
            self._installed = True
        return self

    def __exit__(self, *exc):
        if self._installed:
            # None means the old handler was not set from Python: use Python's default.
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False
        return False


def progress(total: int, initial: int = 0, desc=None, disable=False) -> tqdm:
    """A tqdm bar over steps (rate and ETA); ``bar.update()``, ``bar.set_postfix(...)``."""
    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=0.5, disable=disable)


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
