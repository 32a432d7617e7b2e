"""The plumbing of the pipeline of Fig. 2 (§VII, §X): which stages a command trains, what each hands to
the next, and where each starts. ``train.py`` trains the stages, one visible call each (``train_pipeline``):

    runs/sr_degradation/<time>/        claimed by one process while it trains
      config.json                      the pipeline's command (every flag, and each stage's length)
      h2l/                             stage 1: High-to-Low and its 16×16 critic
      l2h/                             stage 2: Low-to-High and its 64×64 critic, on h2l/'s frozen High-to-Low
      finetune/                        both generators and both critics, starting from h2l/ and l2h/
      bicubic/                         (--with-bicubic) the baseline: Low-to-High on bicubic pairs
      metrics.json, figures/           eval.py's, which train.py's main runs at the end

The hand-over (``hand_over``) reads an earlier stage's folder with ``common.checkpoints.load_networks``. A later
stage records the step of each stage it started from (``h2l_step``, ``l2h_step`` in its checkpoint), so
that a pipeline continued with a longer earlier stage trains the later ones again from scratch (one
line says so) instead of mixing networks trained on different inputs.
"""
import argparse
import shutil
from typing import NamedTuple

from common import distributed
from common.checkpoints import load_networks, load_run
from common.folders import claim_folder
from sr_degradation.model import build

PAPER = "sr_degradation"
STAGES = ("h2l", "l2h", "finetune", "bicubic")              # the pipeline's order
STEPS_OF = {"h2l": "h2l_steps", "l2h": "l2h_steps", "finetune": "finetune_steps", "bicubic": "l2h_steps"}
PIPELINE_ONLY = ("h2l_steps", "l2h_steps", "finetune_steps", "with_bicubic")
STARTS_FROM = {"h2l": (), "l2h": ("h2l",), "finetune": ("h2l", "l2h"), "bicubic": ()}
REAL_LOW = ("h2l", "finetune")              # the stages with High-to-Low's critic train on real LR faces


class HandOver(NamedTuple):
    """What a stage starts from (Fig. 2); empty for h2l and bicubic."""
    networks: dict          # the earlier stages' trained networks ({"H2L": …}), in eval mode on the CPU
    steps: dict             # {earlier stage: the step its networks were taken at}
    runs: dict              # {earlier stage: its folder}
    model_args: dict        # their build() arguments: the network sizes this stage must share

    def recorded(self):
        """The checkpoint entries that remember where the stage started: ``{"h2l_step": …, …}``."""
        return {f"{stage}_step": step for stage, step in self.steps.items()}


def hand_over(stage, h2l_run=None, l2h_run=None):
    """Stage hand-over (Fig. 2): l2h takes the High-to-Low of ``h2l_run`` (frozen, §X); finetune takes
    the four networks of ``l2h_run`` and of the h2l folder it was trained on (or ``h2l_run``), refused
    with one sentence when that High-to-Low is not the one the l2h run was trained on."""
    if stage == "l2h":
        networks, h2l = earlier_stage(h2l_run, "h2l")
        return HandOver({"H2L": networks["H2L"]}, {"h2l": h2l["step"]}, {"h2l": h2l_run}, h2l["model_args"])
    if stage != "finetune":
        return HandOver({}, {}, {}, {})
    l2h_networks, l2h = earlier_stage(l2h_run, "l2h")
    h2l_run = h2l_run or l2h["config"]["h2l_run"]
    h2l_networks, h2l = earlier_stage(h2l_run, "h2l")
    if h2l["model_args"]["size"] != l2h["model_args"]["size"] or l2h["extra"]["h2l_step"] != h2l["step"]:
        raise SystemExit(f"{l2h_run} was trained on a High-to-Low of size {l2h['model_args']['size']} at step "
                         f"{l2h['extra']['h2l_step']}, and {h2l_run} holds one of size {h2l['model_args']['size']} "
                         f"at step {h2l['step']}: fine-tune an l2h run with the h2l run it was trained on.")
    return HandOver({**h2l_networks, **l2h_networks}, {"h2l": h2l["step"], "l2h": l2h["step"]},
                    {"h2l": h2l_run, "l2h": l2h_run}, {**h2l["model_args"], **l2h["model_args"]})


def earlier_stage(run, stage):
    """``(networks, checkpoint)`` of the ``stage`` folder ``run`` (common.checkpoints.load_networks), refused with
    one sentence if it is another stage's; one line says so when it stopped before its length."""
    networks, checkpoint = load_networks(run, PAPER, build)
    found = checkpoint["config"].get("stage")
    if found != stage:
        raise SystemExit(f"{run} is a {found} stage folder, not the {stage} stage folder that "
                         f"--{stage}-run needs.")
    if checkpoint["step"] < checkpoint["config"]["steps"]:
        print(f"note: {run} stopped at step {checkpoint['step']} of {checkpoint['config']['steps']}; "
              f"this stage starts from that.")
    return networks, checkpoint


def check_started_from(handed, resumed, out):
    """--resume of an l2h or finetune run: the stages it started from must still be where they were."""
    moved = {s: step for s, step in handed.steps.items() if resumed["extra"].get(f"{s}_step") != step}
    if moved:
        raise SystemExit(f"--resume refused, nothing was changed: {out} was trained on "
                         + " and ".join(f"the {s} stage {handed.runs[s]} at step {resumed['extra'].get(f'{s}_step')}, "
                                        f"which is now at step {step}" for s, step in moved.items())
                         + "; start a new run of this stage.")


def with_sizes_of(args, handed):
    """A new lone l2h / finetune run's flags with the network sizes of the stages it starts from (the
    frozen High-to-Low's input and noise, or the networks it fine-tunes); one line names those a flag
    asked otherwise."""
    taken = {k: v for k, v in handed.model_args.items() if k != "networks" and getattr(args, k) != v}
    if taken:
        print(f"from {' and '.join(map(str, handed.runs.values()))}: "
              + ", ".join(f"--{k.replace('_', '-')} {v} (not {getattr(args, k)})" for k, v in taken.items()))
    return argparse.Namespace(**{**vars(args), **taken})


# ----------------------------------------------------------------------------- the pipeline


def plan(args, root):
    """``{stage: action}`` for the stages this command trains, in the pipeline's order: "new", "resume"
    (stopped before its length) or "retrain" (from scratch: a stage it starts from trains now, or stands
    at another step than the one it was trained on, so its input changed). Finished stages are left out;
    one line for each skipped or retrained stage."""
    todo, reached = {}, {}                                   # reached: each stage's step after this command
    for stage in [s for s in STAGES if s != "bicubic" or args.with_bicubic]:
        length, folder = getattr(args, STEPS_OF[stage]), root / stage
        checkpoint = load_run(folder, PAPER) if (folder / "checkpoint.pt").exists() else None
        changed = [s for s in STARTS_FROM[stage] if checkpoint is not None
                   and (s in todo or checkpoint["extra"].get(f"{s}_step") != reached[s])]
        if changed:
            first, recorded = changed[0], checkpoint["extra"].get(f"{changed[0]}_step")
            since = f"step {recorded} → {reached[first]}" if recorded is not None else f"now step {reached[first]}"
            print(f"{stage}: {first}/ changed ({since}), so {stage}/ is trained again from scratch")
            todo[stage] = "retrain"
        elif checkpoint is None or checkpoint["step"] < length:
            todo[stage] = "new" if checkpoint is None else "resume"
        else:
            print(f"{stage}: finished at step {checkpoint['step']}, skipped")
            reached[stage] = checkpoint["step"]
            continue
        reached[stage] = length
    if not todo:
        raise SystemExit(f"every stage of {root} is finished: give larger --h2l-steps, --l2h-steps or "
                         f"--finetune-steps{'' if args.with_bicubic else ' (or --with-bicubic)'} to continue it.")
    return todo


def enter(args, root, stage, action):
    """A stage's start inside the pipeline (``action`` from ``plan``): ``(args, resumed)``, its command line
    as if it ran alone with ``--stage`` and the checkpoint it continues ("resume"; else None). A stage
    trained again starts from an empty folder. Every process reads what rank 0 wrote."""
    folder = root / stage
    if action == "retrain" and distributed.rank() == 0:     # under torchrun, rank 0 alone writes
        clear(folder)
    distributed.barrier()
    resumed = load_run(folder, PAPER) if action == "resume" else None
    return stage_args(args, root, stage, resumed is not None), resumed


def clear(folder):
    """Empty a stage folder whose input changed (claimed first: no other process is writing into it)."""
    claim_folder(folder)
    for path in folder.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def stage_args(args, root, stage, resume):
    """One stage's command line inside the pipeline: the same as running it alone with --stage."""
    values = {k: v for k, v in vars(args).items() if k not in PIPELINE_ONLY}
    values.update(stage=stage, steps=getattr(args, STEPS_OF[stage]), out=str(root / stage), resume=resume,
                  h2l_run=str(root / "h2l") if stage in ("l2h", "finetune") else None,
                  l2h_run=str(root / "l2h") if stage == "finetune" else None)
    return argparse.Namespace(**values)
