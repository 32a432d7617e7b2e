"""Run folders, command lines and checkpoints: what every ``train.py`` and ``eval.py`` shares.

A training script reads, top to bottom::

    args, resumed = parse_args(parser, argv, PRESETS, paper="dcgan_celeba")   # --help shows the preset's numbers
    device = pick_device(args.device)
    ...                                          # data, models (from model_args), optimisers
    run = Run(args, "dcgan_celeba", models, model_args, optimizers, resumed=resumed, ...)  # common/loop.py
    for step in run.steps():
        ...                                      # the paper's algorithm
        run.log(step, loss_D=loss_d, loss_G=loss_g)
        run.save(step, k=k, batches=batches)

and an evaluation script::

    checkpoint = load_run(run_dir, "dcgan_celeba")
    models = build(**checkpoint["model_args"])   # each model.py has one build()

**Checkpoints are safe to share.** ``checkpoint.pt`` holds only tensors, numbers,
strings, lists and dicts (RNG states as tensors, the config as JSON values), so it
loads with ``torch.load(weights_only=True)``: opening a run folder someone sent you
never runs code. A file holding anything else is refused with one sentence.

**A failed command never spoils a run.** A resume whose command does not match the
run is refused before anything is written; a checkpoint is written atomically
(temporary file + rename) and never when a loss or a weight is not finite.

Mistakes a user can fix from the command line raise ``SystemExit`` with one sentence:
Python prints it and exits with status 1, without a traceback.
"""
import argparse
import functools
import json
import os
import pickle
import random
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from common import distributed
from common.data import DataError
from common.features import WeightsUnavailable
from common.manifest import PAPERS, check_sha256, weights_folder

FORMAT = 2          # checkpoint layout version; 1 was the pickled layout that could run code

# --------------------------------------------------------------------- device, seed, fast path


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; ``"cpu"``; ``"cuda"`` / ``"cuda:N"``.

    On CUDA this also turns on ``cudnn.benchmark`` (fastest convolution algorithms
    for our fixed input sizes). Under torchrun, each process takes its own GPU and joins
    the process group (``common.distributed.start``).
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
    return distributed.start(torch.device(name))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device). Under torchrun each
    process gets its own seed (rank 0 the one given), so each draws its own noise."""
    seed = (seed + 1_000_003 * distributed.rank()) % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def cpu_has_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def use_amp(requested: bool, device: torch.device) -> bool:
    """Whether ``--amp`` (bfloat16 autocast) actually runs on ``device``.

    On CUDA, yes when asked. On a CPU, only where bf16 is native (``cpu_has_bf16``):
    elsewhere it would be emulated and slower, so one line says so and float32 is used.
    """
    if requested and device.type == "cpu" and not cpu_has_bf16():
        print("--amp: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so training runs in float32.")
        return False
    return bool(requested)


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on ``device`` (CUDA or CPU) when ``enabled``; a no-op context otherwise.

    bfloat16 has float32's exponent range, so no GradScaler is needed. Pass the value of
    ``use_amp``, not the raw flag.
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(enabled))


def to_device(module: torch.nn.Module, device: torch.device, channels_last: bool = True) -> torch.nn.Module:
    """Move a network to ``device``, in ``channels_last`` layout unless asked not to (``--no-channels-last``):
    convolutions run faster in it on CPU and CUDA."""
    return module.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@torch.no_grad()
def outputs(net: torch.nn.Module, *inputs, device: torch.device, amp: bool) -> torch.Tensor:
    """``net(*inputs)`` as samples, FID and figures see it: eval mode (BatchNorm's running statistics),
    no gradients, ``--amp``'s autocast; returned as float32 clamped to [−1, 1]. The training mode
    ``net`` had is restored after."""
    was_training = net.training
    net.eval()
    with autocast(device, amp):
        out = net(*inputs)
    net.train(was_training)
    return out.float().clamp(-1, 1)


# --------------------------------------------------------------------- command line


def one_sentence_errors(main):
    """Decorate a script's ``main(argv=None)``: the errors a user can fix (data that cannot
    be used, pretrained weights that cannot be fetched) end the script with their one
    sentence and exit status 1, not a traceback."""
    @functools.wraps(main)
    def wrapper(argv=None):
        held = set(_HELD)
        try:
            return main(argv)
        except (DataError, WeightsUnavailable) as err:
            raise SystemExit(str(err)) from None
        except RuntimeError as err:
            if not distributed.lost_peer(err):
                raise
            raise SystemExit(f"\nprocess {distributed.rank()} stopped: another process of this run ended (its message "
                             f"is above); the last good checkpoint stays in the run folder.") from None
        finally:                                # the folders this call claimed are free again
            release_folders(keep=held)
    return wrapper


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the module docstring's layout and prints every flag's value: ``(default: 32)``
    (not for a default of None or False, nor where the help already says its default)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def peek_flag(argv, flag: str, default):
    """The value of ``flag`` in ``argv`` before the full parse (``--help`` is left for that parse)."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument(flag, default=default)
    return getattr(peek.parse_known_args(argv)[0], flag.lstrip("-").replace("-", "_"))


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


positive_int = _positive(int)
positive_float = _positive(float)


def at_least(low: int):
    """An argparse type: a whole number of at least ``low`` ≥ 1 (``at_least(2)`` for FID's image counts:
    a covariance needs two images)."""
    def parse(text):
        value = positive_int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {text}")
        return value
    parse.__name__ = f"number of at least {low}"
    return parse


def seed_int(text):
    """A random seed: a whole number from 0 to 2³² − 1 (what NumPy and PyTorch both accept)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be from 0 to 4294967295, not {text}")
    return value


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the flags every ``train.py`` shares. Their defaults come from the preset
    (``parse_args`` sets them before parsing, so ``--help`` prints the numbers)."""
    p = parser.add_argument_group("common options")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="image folder, searched recursively (default: the built-in synthetic faces). Images of "
                        "CelebA's 178×218 frame are cut to BEGAN's 128×128 face box, every other image to its "
                        "centre square; then resized to --size")
    p.add_argument("--preset", default="quick",
                   help="quick: ~10 min on a 2-core CPU; paper: the paper's setting (a GPU job); some scripts "
                        "add others (long). Explicit flags override it; --preset paper --help shows its values")
    p.add_argument("--size", type=positive_int, help="image side in pixels")
    p.add_argument("--batch-size", type=positive_int,
                   help="images per step, in all processes together (under torchrun each of N takes batch/N)")
    p.add_argument("--steps", type=positive_int, help="last training step")
    p.add_argument("--lr", type=positive_float, help="learning rate (on --resume: applied from there on)")
    p.add_argument("--sample-every", type=positive_int, metavar="N", help="write samples/step_*.png every N steps")
    p.add_argument("--ckpt-every", type=positive_int, metavar="N", help="write checkpoint.pt every N steps")
    p.add_argument("--log-every", type=positive_int, metavar="N", help="write a log.csv row every N steps")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction,
                   help="bfloat16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16 / AMX; "
                        "elsewhere float32)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="networks and batches in channels_last memory layout (faster convolutions)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default: runs/<paper>/<date-time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint.pt")
    return parser


# Flags a resumed run may change; every other flag given with --resume must match the run.
RESUME_MAY_CHANGE = {"steps", "lr", "out", "resume", "device", "amp", "channels_last", "sample_every",
                     "ckpt_every", "log_every", "fid_every"}


def parse_args(parser, argv, presets: dict, paper: str, may_change=()):
    """Parse a ``train.py`` command line with a preset's values as defaults.

    1. ``--preset`` is read first and its values become the parser's defaults, so
       explicit flags win and ``--help`` prints the chosen preset's numbers.
    2. With ``--resume``, the run's checkpoint is read (safely, see ``load_run``) and
       its config fills every flag not given on this command line (``resume_config``).

    Returns ``(args, checkpoint)``; ``checkpoint`` is ``None`` for a new run.
    """
    args = parse_with_preset(parser, argv, presets)
    out = check_out(args.out, data_folders(args))
    if not args.resume:
        if out is not None and (out / "checkpoint.pt").exists():
            raise SystemExit(f"{out} already holds a checkpoint.pt: add --resume to continue that run, "
                             f"or choose another --out.")
        return args, None
    if out is None:
        raise SystemExit("--resume needs --out DIR: the run folder to continue.")
    checkpoint = load_run(out, paper)
    if checkpoint.get("shipped"):
        raise SystemExit(f"{out} holds shipped weights (no optimiser or random state), not a run to continue: "
                         f"evaluate it with python {paper}/eval.py --run {out}, or train a new run.")
    args = resume_config(parser, argv, args, checkpoint["config"], out, may_change)
    if args.steps <= checkpoint["step"]:
        raise SystemExit(f"{out} is already at step {checkpoint['step']}: give --steps larger than that "
                         f"to continue it.")
    return args, checkpoint


def data_folders(args) -> list:
    """The data folders a command reads: every flag named ``--data…`` (``--data``, ``--data-high`` …)."""
    return [value for name, value in vars(args).items() if name.startswith("data") and value]


def parse_with_preset(parser, argv, presets: dict) -> argparse.Namespace:
    """Read ``--preset`` first, make its values the parser's defaults, then parse."""
    preset = peek_flag(argv, "--preset", "quick")
    if preset not in presets:
        parser.error(f"argument --preset: {preset!r} is not a preset of this script (it has: {', '.join(presets)})")
    parser.set_defaults(**presets[preset])
    return parser.parse_args(argv)


def resume_config(parser, argv, args, run_config: dict, out, may_change=()) -> argparse.Namespace:
    """``args`` for continuing the run whose config is ``run_config``: the run's values for every
    flag not given in ``argv``. A given flag that differs from the run is refused with one sentence,
    unless it is in ``RESUME_MAY_CHANGE`` or ``may_change``; nothing has been written yet."""
    given, allowed = _given_flags(parser, argv), RESUME_MAY_CHANGE | set(may_change)
    differ = [f"--{k.replace('_', '-')} {_plain(getattr(args, k))} (the run has {run_config[k]})"
              for k in sorted(given - allowed) if k in run_config and _plain(getattr(args, k)) != run_config[k]]
    if differ:
        raise SystemExit(f"--resume refused, nothing in {out} was changed: this command asks for "
                         f"{'; '.join(differ)}. Leave those flags out to continue the run as it was, "
                         f"or start a new run with another --out.")
    return argparse.Namespace(**{**vars(args), **{k: v for k, v in run_config.items() if k not in given}})


def _given_flags(parser, argv) -> set:
    """The names of the flags given on the command line (not filled in by a default)."""
    unset = object()
    namespace = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != argparse.SUPPRESS})
    parser.parse_args(argv, namespace)
    return {name for name, value in vars(namespace).items() if value is not unset}


def _plain(value):
    """``value`` as JSON would bring it back (tuples -> lists, paths -> strings)."""
    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------- run folder


def check_out(out, inputs=(), flag="--out"):
    """``--out`` as a ``Path`` (``None`` when not given), refused with one sentence where a run
    could not be written, or would be written where it mixes with data: an empty name (the
    repository root), a file, a folder this user cannot write, or a folder that is, holds or lies
    inside one of the ``inputs`` (data folders): samples written there would be trained on next time."""
    if out is None:
        return None
    if not str(out).strip():
        raise SystemExit(f"{flag} is empty: give a folder name, or leave {flag} out for runs/<paper>/<date-time>.")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise SystemExit(f"{flag} {out} is a file, not a folder: give a folder name.")
    for data in filter(None, inputs):
        a, b = out.resolve(), Path(data).expanduser().resolve()
        if a == b or a in b.parents or b in a.parents:
            raise SystemExit(f"{flag} {out} and the data folder {data} overlap: a run folder must lie "
                             f"outside the data, or its samples would be read as training images.")
    shipped = [paper for paper in PAPERS if weights_folder(paper) in (out.resolve(), *out.resolve().parents)]
    if shipped:
        raise SystemExit(f"{flag} {out} lies in {shipped[0]}/weights/, the repository's shipped networks: "
                         f"write runs and evaluations elsewhere (e.g. runs/).")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SystemExit(f"{flag} {out} cannot be written ({existing} is not writable for this user): "
                         f"choose another folder.")
    return out


# One process per folder: a folder a process writes into is claimed with an OS lock that the
# operating system drops when the process ends, so a crashed run leaves nothing stuck.
_HELD = {}          # resolved folder -> [open lock file descriptor, claims]: what this process holds


def claim_folder(folder) -> None:
    """Hold ``folder`` (created if needed) for this process; refuse with one sentence if another
    process holds it. Claims by this process nest; ``release_folders`` lets them go."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        return
    fd = _lock(folder)
    if fd is None:
        raise SystemExit(f"{folder} is in use by another process (a training or an evaluation writing "
                         f"there): wait until it ends, or choose another --out.")
    _HELD[key] = [fd, 1]


def release_folders(keep=()) -> None:
    """Let go of every folder this process holds, except those in ``keep``."""
    for key in [k for k in _HELD if k not in keep]:
        os.close(_HELD.pop(key)[0])


def _lock(folder: Path):
    """An open file descriptor holding an exclusive lock on ``folder``, or None if another process
    has it. POSIX: ``flock`` on the folder itself (nothing is written into it); Windows: a byte
    lock on ``folder/.lock``."""
    if sys.platform == "win32":
        import msvcrt
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            return None
        return fd
    import fcntl
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def eval_folder(out, default) -> Path:
    """Where an ``eval.py`` writes ``metrics.json`` and ``figures/``: ``--out`` (checked as ``check_out``
    does, so a read-only shared run can be evaluated elsewhere), else ``default`` (the run folder), but
    never a shipped network's folder (``--run <paper>/weights/<name>`` needs ``--out``).
    The folder is claimed: one process writes it at a time."""
    folder = check_out(out) or Path(default)
    if out is None and any(weights_folder(p) in (folder.resolve(), *folder.resolve().parents) for p in PAPERS):
        raise SystemExit(f"{folder} holds shipped networks, which eval never writes into: give --out DIR for "
                         f"metrics.json and figures/ (eval without --run evaluates every shipped one into runs/).")
    claim_folder(folder)
    return folder


def new_run_dir(out, paper: str, root: str = "runs") -> Path:
    """``out``, or ``runs/<paper>/<date-time>`` when it is ``None``."""
    if out is not None:
        return Path(out)
    base = Path(root) / paper / time.strftime("%Y%m%d-%H%M%S")
    run_dir, n = base, 1
    while run_dir.exists():  # two runs started in the same second
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    return run_dir


def write_config(run_dir: Path, config) -> dict:
    """Write ``config.json`` (sorted keys, JSON values) atomically; return the plain dict."""
    config = _plain(vars(config) if isinstance(config, argparse.Namespace) else config)
    _atomic_write(run_dir / "config.json", lambda f: f.write(json.dumps(config, indent=2, sort_keys=True).encode()
                                                            + b"\n"))
    return config


def _atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on ``path.tmp``, then rename it over ``path``: a crash leaves the old file whole."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # the write failed part-way: drop the half-written file
            tmp.unlink()


# --------------------------------------------------------------------- checkpoints


def _rng_state() -> dict:
    """Every random-number generator's state, as tensors and numbers only."""
    version, mt, gauss = random.getstate()
    _, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(rng: dict) -> None:
    p, n = rng["python"], rng["numpy"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"]))
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


def _state(value):
    """A checkpointable value: objects with ``state_dict()`` give it, tensors go to the CPU."""
    if hasattr(value, "state_dict"):
        return value.state_dict()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return value


def non_finite(models: dict) -> list:
    """Names of the networks holding a NaN or infinite parameter or buffer (one host sync)."""
    bad = []
    for name, model in models.items():
        tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        if tensors and not torch.stack([torch.isfinite(t).all() for t in tensors]).all():
            bad.append(name)
    return bad


def save_checkpoint(path, *, paper: str, step: int, models: dict, model_args: dict, optimizers: dict,
                    schedulers=None, extra=None, config=None) -> Path:
    """Write everything needed to continue the run exactly, and to rebuild it elsewhere.

    Keys: ``format``, ``paper``, ``step``, ``model_args`` (the keyword arguments of the
    paper's ``build()``), ``models``, ``optimizers``, ``schedulers`` (name ->
    ``state_dict()``), ``rng``, ``extra`` (e.g. BEGAN's k_t, the data order; objects
    with a ``state_dict`` give it) and ``config`` (the command's values).
    Atomic: written to ``checkpoint.pt.tmp``, then renamed over ``path``.
    """
    path = Path(path)
    checkpoint = {
        "format": FORMAT, "paper": paper, "step": int(step), "model_args": _plain(model_args),
        "models": {name: m.state_dict() for name, m in models.items()},
        "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in (schedulers or {}).items()},
        "rng": _rng_state(),
        "extra": {name: _state(value) for name, value in (extra or {}).items()},
        "config": _plain(vars(config) if isinstance(config, argparse.Namespace) else config or {}),
    }
    _atomic_write(path, lambda f: torch.save(checkpoint, f))
    return path


def read_checkpoint(path, map_location="cpu") -> dict:
    """``torch.load(path, weights_only=True)`` with one sentence for every way it can fail.

    ``weights_only=True`` unpickles only tensors, numbers, strings, lists, tuples and
    dicts: a file holding any other object is refused before that object is built, so
    nothing in it can run.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"No checkpoint at {path}: train first, or point to a run folder that holds "
                         f"checkpoint.pt.")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise SystemExit(f"{path} was not loaded: it holds Python objects besides tensors, numbers, strings, "
                         f"lists and dicts, which could run code when loaded. Checkpoints of this repo never "
                         f"do; only open it with code you trust.") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise SystemExit(f"{path} cannot be read ({reason}): it is damaged or truncated, or not a "
                         f"PyTorch file. Copy it again, or train again.") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise SystemExit(f"{path} is not a checkpoint of this repo's current format (format {FORMAT}); "
                         f"it may come from an older version: train it again.")
    return checkpoint


def load_run(run_dir, paper: str, map_location="cpu") -> dict:
    """The checkpoint of a run folder, checked to be a ``paper`` run: the one loader behind
    every ``eval.py``, every ``--resume`` and sr_degradation's stage hand-over.

    Returns the checkpoint dict (``step``, ``model_args``, ``models``, ``config``, ``extra``, …).
    Build the networks with the paper's ``build(**checkpoint["model_args"])`` and load
    them with ``load_models``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SystemExit(f"{run_dir} does not exist: give a run folder (train.py prints where it wrote one).")
    if (run_dir / "checkpoint.pt").is_file():
        check_sha256(run_dir / "checkpoint.pt")          # a shipped network: the bytes its manifest records
    checkpoint = read_checkpoint(run_dir / "checkpoint.pt", map_location)
    if checkpoint["paper"] != paper:
        raise SystemExit(f"{run_dir} is a {checkpoint['paper']} run, not a {paper} run: use "
                         f"python {checkpoint['paper']}/train.py or eval.py with it.")
    return checkpoint


def load_networks(run_dir, paper: str, build, names=None, device="cpu"):
    """The trained networks of a run folder, in eval mode on ``device``: ``(networks, checkpoint)``.

    ``build`` is the paper's ``model.build``; the networks are rebuilt from the checkpoint's
    ``model_args`` and loaded (``load_run``: tensors only). ``names`` picks some of them
    (default: every network ``build`` returns that the checkpoint holds; shipped ones hold fewer).
    The one loader of eval.py, study scripts and sr_degradation's stage hand-over.

    A run trained with ``--ema`` also holds ``G_ema``, the moving average of G (``common.ema``): it is
    loaded as ``G``, and one line says so.
    """
    checkpoint = load_run(run_dir, paper)
    networks = build(**checkpoint["model_args"])
    networks = {name: networks[name] for name in (names or [n for n in networks if n in checkpoint["models"]])}
    averaged = [name for name in networks if f"{name}_ema" in checkpoint["models"]]
    if averaged:
        decay = checkpoint.get("config", {}).get("ema")
        print(f"{run_dir}: {', '.join(averaged)} = the moving average of its weights (--ema {decay})")
        checkpoint = {**checkpoint, "models": {**checkpoint["models"],
                                               **{name: checkpoint["models"][f"{name}_ema"] for name in averaged}}}
    networks = load_models(networks, checkpoint, where=str(run_dir))
    return {name: net.to(device).eval() for name, net in networks.items()}, checkpoint


def runs_to_evaluate(runs, paper: str, shipped: list):
    """An ``eval.py``'s run folders and default output folder: ``--run``'s folders (output: None, the
    script's usual default), or without ``--run`` the networks shipped in ``<paper>/weights/`` (their
    names in ``shipped``), evaluated into ``runs/<paper>/shipped`` -- never into the weights."""
    if runs:
        return list(runs), None
    folder = weights_folder(paper)
    missing = [name for name in shipped if not (folder / name).is_dir()]
    if missing:
        raise SystemExit(f"no --run given, and {paper}/weights/ holds no shipped {', '.join(missing)}: restore them "
                         f"(git checkout -- {paper}/weights) or give --run with a run folder of yours.")
    print(f"no --run: evaluating the networks shipped in {paper}/weights/ ({', '.join(shipped)}; how each was "
          f"trained: {paper}/weights/manifest.json)")
    return [folder / name for name in shipped], Path("runs") / paper / "shipped"


def held_out_of(configs, n: int):
    """For an eval of runs with these configs: ``(data, n)``, the ``--data`` folder they were all trained
    on (None: the built-in faces) and how many held-out real faces to measure with: ``n``, or for a
    folder at most the runs' ``--fid-faces`` (its last images, the only ones never trained on,
    ``common.data.hold_out``). Runs of different data are refused; one line says which faces."""
    data = {c.get("data") for c in configs}
    if len(data) > 1:
        raise SystemExit(f"these runs were trained on different data ({', '.join(map(str, data))}): "
                         f"evaluate runs of one data set together.")
    data = data.pop()
    if data is None:
        print(f"real faces: {n} built-in faces held out from training")
        return None, n
    n = min([n] + [c["fid_faces"] for c in configs])
    print(f"real faces: the last {n} images of {data}, held out from training (FID features: synthetic-v1 unless "
          f"said otherwise, trained on the built-in faces only)")
    return data, n


def load_models(models: dict, checkpoint: dict, where: str = "the checkpoint") -> dict:
    """Load each network's weights from ``checkpoint["models"]`` (in place); return ``models``."""
    for name, model in models.items():
        if name not in checkpoint["models"]:
            raise SystemExit(f"{where} has no network named {name!r} "
                             f"(it has: {', '.join(checkpoint['models']) or 'none'}).")
        model.load_state_dict(checkpoint["models"][name])
    return models


def restore(checkpoint: dict, models: dict, optimizers: dict, schedulers=None) -> None:
    """Continue from ``checkpoint``: weights, optimiser and scheduler states, every RNG.

    A learning rate given now that differs from the run's (``--resume --lr X``) is applied
    from here on, keeping the schedule's current factor, and one line says so.
    """
    load_models(models, checkpoint)
    asked = {name: [_base_lr(g) for g in opt.param_groups] for name, opt in optimizers.items()}
    for key, objects in (("optimizers", optimizers), ("schedulers", schedulers or {})):
        for name, obj in objects.items():
            obj.load_state_dict(checkpoint[key][name])
    for name, opt in optimizers.items():
        for group, new in zip(opt.param_groups, asked[name]):
            old = _base_lr(group)
            if not np.isclose(old, new, rtol=1e-9, atol=0):
                _set_base_lr(group, (schedulers or {}).get(name), opt.param_groups.index(group), new)
                print(f"--resume: {name}'s learning rate is now {new:g} (the run used {old:g}); "
                      f"its schedule goes on from there.")
    _set_rng_state(checkpoint["rng"])


def _base_lr(group) -> float:
    return group.get("initial_lr", group["lr"])


def _set_base_lr(group, scheduler, index, new):
    factor = group["lr"] / _base_lr(group)           # how far the schedule has moved the rate
    group["lr"] = new * factor
    if "initial_lr" in group:
        group["initial_lr"] = new
    if scheduler is not None:
        scheduler.base_lrs[index] = new
        scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]
