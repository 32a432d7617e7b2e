"""Run helpers for the hand-written training loops (DESIGN.md §2, §6).

Each paper's ``train.py`` calls these in plain sight::

    args = apply_preset(parser.parse_args(argv), PRESETS)
    device = pick_device(args.device)
    seed_everything(args.seed)
    run_dir = make_run_dir(args.out, "dcgan_celeba", vars(args), resume=args.resume)
    ...                                    # data, models, optimisers
    if args.resume:
        start = load_checkpoint(run_dir / "checkpoint.pt", models, optimizers)["step"]
    log = CsvLogger(run_dir / "log.csv", resume_step=start if args.resume else None)
    with StopOnInterrupt() as stop:
        for step in range(start + 1, args.steps + 1):
            ...                            # discriminator step, generator step
            if step % log_every == 0:
                loss_d = loss_d.item()     # the only host sync, at logging steps
                check_finite(step, loss_D=loss_d, checkpoint=run_dir / "checkpoint.pt")
                log.log(step=step, loss_D=loss_d, img_s=speed(step))
            if step % args.ckpt_every == 0 or stop.requested:
                save_checkpoint(run_dir / "checkpoint.pt", step, models, optimizers)
            if stop.requested:
                break

Mistakes a user can fix from the command line (no GPU, a run folder that
already holds a checkpoint, a missing checkpoint) raise ``SystemExit`` with one
sentence: Python prints it and exits with status 1, without a traceback.
"""
import argparse
import contextlib
import csv
import json
import os
import random
import signal
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

# --------------------------------------------------------------------- device, seed


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; ``"cpu"``; ``"cuda"`` / ``"cuda:N"``.

    On CUDA this also turns on ``cudnn.benchmark`` (fastest convolution
    algorithms for our fixed input sizes, DESIGN.md §6).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda was asked for, but PyTorch sees no CUDA GPU; "
                             "use --device cpu (or auto).")
        torch.backends.cudnn.benchmark = True
    elif name != "cpu":
        raise SystemExit(f"Unknown --device {name!r}: use auto, cpu or cuda.")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA when ``--amp`` is on; a do-nothing context otherwise.

    bfloat16 has float32's exponent range, so no GradScaler is needed.
    """
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if enabled:
        warnings.warn("--amp is ignored on CPU (bfloat16 autocast is used on CUDA only).",
                      stacklevel=2)
    return contextlib.nullcontext()


# --------------------------------------------------------------------- command line

_PRESET_FLAGS = ("size", "batch_size", "steps", "lr", "sample_every", "ckpt_every")


def add_common_args(parser: argparse.ArgumentParser, *, steps=None, batch_size=None,
                    size=None, lr=None, sample_every=None, ckpt_every=None):
    """Add the flags every ``train.py`` shares (DESIGN.md §2).

    How presets work: the flags a preset may set (``--size --batch-size --steps
    --lr --sample-every --ckpt-every``, and any flag a script adds with
    ``default=None``) parse to ``None`` when not given; ``apply_preset`` then
    fills every ``None`` from the chosen preset. So an explicit flag always wins.
    The keyword arguments here are this script's fallbacks for a value that the
    preset does not name (leave them out when every preset names everything).
    """
    p = parser.add_argument_group("common options")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="image folder (default: the built-in synthetic faces)")
    p.add_argument("--preset", choices=["quick", "paper"], default="quick",
                   help="quick: ~10 min on a 2-core CPU; paper: the paper's setting "
                        "(a GPU job). Explicit flags override it (default: quick)")
    p.add_argument("--size", type=int, help="image side in pixels (default: from --preset)")
    p.add_argument("--batch-size", type=int, help="images per step (default: from --preset)")
    p.add_argument("--steps", type=int, help="last training step (default: from --preset)")
    p.add_argument("--lr", type=float, help="learning rate (default: from --preset)")
    p.add_argument("--sample-every", type=int, metavar="N",
                   help="write samples/step_XXXXXXX.png every N steps (default: from --preset)")
    p.add_argument("--ckpt-every", type=int, metavar="N",
                   help="write checkpoint.pt every N steps (default: from --preset)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run folder (default: runs/<paper>/<date-time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint.pt")
    fallbacks = dict(size=size, batch_size=batch_size, steps=steps, lr=lr,
                     sample_every=sample_every, ckpt_every=ckpt_every)
    parser.set_defaults(preset_fallbacks={k: v for k, v in fallbacks.items() if v is not None})
    return parser


def apply_preset(args: argparse.Namespace, presets: dict) -> argparse.Namespace:
    """Fill every flag left at ``None`` from ``presets[args.preset]``, then from
    ``add_common_args``'s fallbacks. Flags given on the command line are kept.
    A preset key that is not a flag becomes a plain setting on ``args``."""
    fallbacks = vars(args).pop("preset_fallbacks", {})
    if args.preset not in presets:
        raise SystemExit(f"This script has no preset {args.preset!r} (it has: {', '.join(presets)}).")
    for key, value in {**fallbacks, **presets[args.preset]}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    missing = [k for k in _PRESET_FLAGS if getattr(args, k, 0) is None]
    if missing:
        flag = "--" + missing[0].replace("_", "-")
        raise SystemExit(f"No value for {flag}: give it on the command line "
                         f"or add it to the {args.preset!r} preset.")
    return args


# --------------------------------------------------------------------- run folder


def make_run_dir(out, folder: str, config, *, resume: bool = False,
                 root: str = "runs") -> Path:
    """Create the run folder and write ``config.json`` into it.

    ``out=None`` gives ``runs/<folder>/<date-time>``. A new run refuses a folder
    that already holds ``checkpoint.pt`` (it would be overwritten); ``resume=True``
    requires one. ``config`` is a dict or an ``argparse.Namespace``; values JSON
    cannot write (paths, devices) are written as strings.
    """
    if out is None:
        if resume:
            raise SystemExit("--resume needs --out DIR: the run folder to continue.")
        base = Path(root) / folder / time.strftime("%Y%m%d-%H%M%S")
        run_dir, n = base, 1
        while run_dir.exists():  # two runs started in the same second
            n += 1
            run_dir = base.with_name(f"{base.name}-{n}")
    else:
        run_dir = Path(out)
    has_checkpoint = (run_dir / "checkpoint.pt").exists()
    if has_checkpoint and not resume:
        raise SystemExit(f"{run_dir} already holds a checkpoint.pt: add --resume to continue "
                         f"that run, or choose another --out.")
    if resume and not has_checkpoint:
        raise SystemExit(f"--resume: there is no checkpoint.pt in {run_dir} to continue from.")
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    text = json.dumps(config, indent=2, sort_keys=True, default=str)
    (run_dir / "config.json").write_text(text + "\n")
    return run_dir


# --------------------------------------------------------------------- log.csv


def _cell(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


class CsvLogger:
    """Append one row per ``log(step=..., **values)`` call to ``log.csv``.

    The header comes from ``columns`` when given, else from the first row's keys;
    rows may leave columns out (empty cell) but may not add new ones. Floats are written with 6
    significant digits. The file is opened and closed for each row, so it is
    complete on disk at any moment.

    ``resume_step``: continuing a run from a checkpoint at that step, keep only
    the rows with ``step <= resume_step`` (rows logged after the checkpoint
    were never saved into it, and will be logged again). ``None``: a new run,
    the file starts empty.
    """

    def __init__(self, path, resume_step=None, columns=None):
        self.path = Path(path)
        self.columns = None
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
        row = {"step": step, **values}
        if self.columns is None:
            self.columns = list(row)
            self._write([], mode="w")  # header only
        new = [k for k in row if k not in self.columns]
        if new:
            raise ValueError(f"log.csv has no column {new[0]!r}: its columns are fixed by "
                             f"the first row ({', '.join(self.columns)}).")
        self._write([{k: _cell(v) for k, v in row.items()}], mode="a")

    def _write(self, rows, mode):
        with open(self.path, mode, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)


def read_log(path) -> dict:
    """Read ``log.csv`` back as ``{column: [float, ...]}``; empty or
    non-numeric cells become ``nan``."""
    def number(text):
        try:
            return float(text)
        except (TypeError, ValueError):
            return float("nan")

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return {c: [number(row.get(c)) for row in rows] for c in (reader.fieldnames or [])}


# --------------------------------------------------------------------- checkpoints


def save_checkpoint(path, step: int, models: dict, optimizers: dict, schedulers=None,
                    extra=None, config=None) -> Path:
    """Write everything needed to continue the run exactly (DESIGN.md §2).

    Keys of the saved dict: ``step``, ``models``, ``optimizers``, ``schedulers``
    (name -> ``state_dict()``), ``rng`` (``python``, ``numpy``, ``torch``,
    ``cuda``), ``extra`` (e.g. BEGAN's ``k_t``, the fixed sample noise, the data
    batcher's state) and ``config``.

    Atomic: written to ``checkpoint.tmp`` in the same folder, then renamed over
    ``path`` (``os.replace``), so a crash or Ctrl-C while saving leaves the
    previous checkpoint whole.
    """
    path = Path(path)
    checkpoint = {
        "step": step,
        "models": {name: m.state_dict() for name, m in models.items()},
        "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in (schedulers or {}).items()},
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        "extra": extra or {},
        "config": config,
    }
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # the save failed part-way: drop the half-written file
            tmp.unlink()
    return path


def load_checkpoint(path, models: dict, optimizers: dict, schedulers=None,
                    map_location="cpu") -> dict:
    """Load a ``save_checkpoint`` file into ``models``/``optimizers``/``schedulers``
    (in place, matched by name), restore all random-number generators, and
    return the dict (``step``, ``extra``, ``config``, ...).

    Tensors are loaded to ``map_location`` (default CPU: works whatever device
    saved it); ``load_state_dict`` then copies them onto each model's device.
    Tensors in ``extra`` stay there: move them with ``.to(device)``.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"No checkpoint at {path}: train first, or point to a run folder "
                         f"that holds checkpoint.pt.")
    # weights_only=False: the file is our own and holds Python objects besides
    # tensors (RNG states, config); never use this on a checkpoint you did not write.
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    groups = [("models", models), ("optimizers", optimizers), ("schedulers", schedulers or {})]
    for key, objects in groups:
        for name, obj in objects.items():
            if name not in checkpoint[key]:
                raise SystemExit(f"{path} has no {key[:-1]} named {name!r} "
                                 f"(it has: {', '.join(checkpoint[key]) or 'none'}).")
            obj.load_state_dict(checkpoint[key][name])
    rng = checkpoint["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    return checkpoint


# --------------------------------------------------------------------- stopping


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


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; training cannot usefully continue."""


def check_finite(step: int, checkpoint=None, **losses) -> None:
    """Raise ``NonFiniteLoss`` naming the loss and the step if any loss is NaN/inf.

    ``losses``: Python floats or tensors. Call it at logging steps only, on
    values already fetched with ``.item()`` there: checking a tensor forces the
    GPU to finish (a host sync), which the training step itself avoids
    (DESIGN.md §6). ``checkpoint``: the last good checkpoint, named in the message.
    """
    for name, value in losses.items():
        value = torch.as_tensor(value).detach().float()
        if not torch.isfinite(value).all():
            bad = "nan" if torch.isnan(value).any() else "inf"
            where = (f"the last good checkpoint stays in {checkpoint}" if checkpoint
                     else "no checkpoint was written")
            raise NonFiniteLoss(f"{name} became {bad} at step {step}; {where} "
                                f"(a lower --lr often helps).")


# --------------------------------------------------------------------- progress, speed


def progress(total: int, initial: int = 0, desc=None) -> tqdm:
    """A tqdm bar over the training steps (shows rate and ETA); update it with
    ``bar.update()`` and ``bar.set_postfix(loss_D=..., ...)`` at logging steps."""
    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=0.5)


class ImagesPerSecond:
    """Training speed between two logging steps, for ``log.csv``'s ``img_s``.

    ``speed = ImagesPerSecond(batch_size, start_step, device)`` before the loop,
    then ``speed(step)`` at a logging step returns the images per second since
    the previous call. On CUDA it first waits for the GPU to finish
    (``synchronize``), so the time is the real compute time; this happens only
    when you call it, i.e. at logging steps.
    """

    def __init__(self, batch_size: int, start_step: int = 0, device=None):
        self.batch_size = batch_size
        self.device = torch.device(device or "cpu")
        self.last_step = start_step
        self.last_time = time.perf_counter()

    def __call__(self, step: int) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        images = (step - self.last_step) * self.batch_size
        rate = images / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        return rate
