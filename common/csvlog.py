"""``log.csv``: one row per logged step, written as the run goes and read back for figures.

``CsvLogger`` writes it (``common.loop.Run`` owns one); ``read_log`` reads it back as columns,
for ``loss.png`` (``common.plots.plot_losses``) and every ``eval.py`` figure that plots a curve.
"""
import csv
from pathlib import Path

import numpy as np
import torch


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
