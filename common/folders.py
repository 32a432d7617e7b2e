"""Run folders: where a run or an evaluation writes, and the lock that keeps one process per folder.

- ``check_out``: ``--out`` refused with one sentence where a run could not be written or would mix
  with data or with the shipped networks;
- ``claim_folder`` / ``release_folders``: an OS lock on the folder, dropped by the operating system when
  the process ends, so two processes never write one folder and a crashed run leaves nothing stuck;
- ``new_run_dir``, ``eval_folder``: the default folders of ``train.py`` and ``eval.py``;
- ``write_config``, ``atomic_write``: files written whole or not at all (temporary file + rename).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

from common.manifest import PAPERS, weights_folder


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


def held_folders() -> set:
    """The folders this process holds now (to release only those claimed after, ``release_folders``)."""
    return set(_HELD)


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
    unwritable = [p for p in (folder, folder / "figures") if p.exists() and not os.access(p, os.W_OK | os.X_OK)]
    if unwritable:
        raise SystemExit(f"{unwritable[0]} cannot be written (not writable for this user), so metrics.json and "
                         f"figures/ could not be saved there: give --out DIR to evaluate into another folder.")
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
    config = plain_values(vars(config) if isinstance(config, argparse.Namespace) else config)
    atomic_write_json(run_dir / "config.json", config)
    return config


def atomic_write_json(path: Path, value, indent: int = 2, sort_keys: bool = True) -> None:
    """``value`` as JSON text with a final newline, written atomically (``atomic_write``)."""
    text = json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on ``path.tmp``, then rename it over ``path``: a crash leaves the old file whole."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # the write failed part-way: drop the half-written file
            tmp.unlink()


def plain_values(value):
    """``value`` as JSON would bring it back (tuples -> lists, paths -> strings)."""
    return json.loads(json.dumps(value, default=str))
