"""The command line every ``train.py`` shares: flags, presets, ``--resume``'s check, one-sentence errors.

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--gamma", type=float, help="...")         # the paper's own flags
    add_common_args(ap)                                         # --data --preset --size --steps --lr --seed --out ...
    args, resumed = parse_args(ap, argv, PRESETS, "began_refiner")

``PRESETS = {"quick": {...}, "paper": {...}}`` gives every number; ``--preset`` is read first and its
values become the defaults, so an explicit flag wins and ``--help`` prints the preset's numbers. With
``--resume``, the run's checkpoint (read by ``common.checkpoints.load_run``, the one loader) fills every
flag not given, and a given flag that differs from the run is refused before anything is written.

Mistakes a user can fix from the command line raise ``SystemExit`` with one sentence: Python prints
it and exits with status 1, without a traceback (``one_sentence_errors`` does the same for data and
weights that cannot be used).
"""
import argparse
import functools

from common import distributed
from common.checkpoints import load_run
from common.data import DataError
from common.features import WeightsUnavailable
from common.folders import check_out, held_folders, plain_values, release_folders


def one_sentence_errors(main):
    """Decorate a script's ``main(argv=None)``: the errors a user can fix (data that cannot
    be used, pretrained weights that cannot be fetched) end the script with their one
    sentence and exit status 1, not a traceback.

    Under torchrun every process meets the same mistake (a flag, the data): process 0 alone says it and
    the others exit with status 1 in silence, so one job prints each message once; a sentence about one
    process ("process 1 gave up ...") is said by that process."""
    @functools.wraps(main)
    def wrapper(argv=None):
        held = held_folders()
        try:
            return main(argv)
        except (DataError, WeightsUnavailable) as err:
            raise _said_once(str(err)) from None
        except SystemExit as err:
            raise _said_once(err.code) from None
        except RuntimeError as err:
            if not distributed.lost_peer(err):
                raise
            kept = "; the run folder keeps its last good checkpoint" if distributed.rank() == 0 else ""
            raise SystemExit(f"\nprocess {distributed.rank()} stopped: another process of this run ended first "
                             f"(torchrun says which){kept}.") from None
        finally:                                # the folders this call claimed are free again
            release_folders(keep=held)
    return wrapper


def _said_once(code) -> SystemExit:
    """``SystemExit(code)``, but silent (status 1) in a process other than 0 when its sentence is one that
    every process says alike (not one naming this process)."""
    if isinstance(code, str) and distributed.world() > 1 and distributed.rank() != 0 \
            and not code.lstrip().startswith(f"process {distributed.rank()}"):
        return SystemExit(1)
    return SystemExit(code)


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


def fraction(text):
    """An argparse type: a number from 0 to 1 (a share of the training steps, say)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, not {text}")
    return value


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
    given, allowed = given_flags(parser, argv), RESUME_MAY_CHANGE | set(may_change)
    differ = [f"--{k.replace('_', '-')} {plain_values(getattr(args, k))} (the run has {run_config[k]})"
              for k in sorted(given - allowed) if k in run_config and plain_values(getattr(args, k)) != run_config[k]]
    if differ:
        raise SystemExit(f"--resume refused, nothing in {out} was changed: this command asks for "
                         f"{'; '.join(differ)}. Leave those flags out to continue the run as it was, "
                         f"or start a new run with another --out.")
    return argparse.Namespace(**{**vars(args), **{k: v for k, v in run_config.items() if k not in given}})


def given_flags(parser, argv) -> set:
    """The names of the flags given on the command line (not filled in by a default)."""
    unset = object()
    namespace = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != argparse.SUPPRESS})
    parser.parse_args(argv, namespace)
    return {name for name, value in vars(namespace).items() if value is not unset}
