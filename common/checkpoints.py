"""Checkpoints: written atomically, read safely, and the one loader of run folders.

**Checkpoints are safe to share.** ``checkpoint.pt`` holds only tensors, numbers, strings, lists and
dicts (RNG states as tensors, the config as JSON values), so it loads with
``torch.load(weights_only=True)``: opening a run folder someone sent you never runs code. A file
holding anything else is refused with one sentence.

**A failed command never spoils a run.** A checkpoint is written atomically (temporary file +
rename) and never when a loss or a weight is not finite (``common.loop.Run`` checks).

    checkpoint = load_run(run_dir, "dcgan_celeba")                 # --resume and eval.py
    networks, checkpoint = load_networks(run_dir, "dcgan_celeba", build)   # eval.py: rebuilt and loaded

``FORMAT`` is the layout's version: a change of what a checkpoint holds bumps it, and every older
file, the shipped networks included, is then refused until it is trained or shipped again.
"""
import argparse
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from common.folders import atomic_write, plain_values
from common.manifest import verify_shipped, weights_folder

FORMAT = 2          # checkpoint layout version; 1 was the pickled layout that could run code


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
        "format": FORMAT, "paper": paper, "step": int(step), "model_args": plain_values(model_args),
        "models": {name: m.state_dict() for name, m in models.items()},
        "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in (schedulers or {}).items()},
        "rng": _rng_state(),
        "extra": {name: _state(value) for name, value in (extra or {}).items()},
        "config": plain_values(vars(config) if isinstance(config, argparse.Namespace) else config or {}),
    }
    atomic_write(path, lambda f: torch.save(checkpoint, f))
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
    verify_shipped(run_dir)                              # a shipped network: exactly what its manifest records
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
    if not shipped:
        raise SystemExit(f"{paper} ships no networks yet: give --run with a run folder (train.py prints where it "
                         f"wrote one).")
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
            try:
                obj.load_state_dict(checkpoint[key][name])
            except (KeyError, ValueError, RuntimeError) as err:
                raise SystemExit(f"--resume: the checkpoint's {name} {key[:-1]} does not fit this train.py's "
                                 f"({type(err).__name__}: {err}); the run was written by another version of "
                                 f"it: start a new run.") from None
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
