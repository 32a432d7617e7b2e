"""Figures as PNG files: image grids, loss curves, bar charts; markdown tables.

Matplotlib runs with the ``Agg`` backend (files only, no window), so these
work on a server and in tests.
"""
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: draw to files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.csvlog import read_log  # noqa: E402
from common.data import to_uint8  # noqa: E402

DPI = 100           # figure inches * DPI = pixels in the PNG
FONT = 9            # points; at 100 dpi a character is about 7 px wide, 13 px tall
PAD = 2             # white pixels between tiles


def _save(fig, path) -> Path:
    """Write ``fig`` to ``path`` (folders created) and free it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def _tiles(images) -> np.ndarray:
    """float [-1, 1] or uint8, (N, C, H, W) or (C, H, W), C in {1, 3} -> uint8 (N, H, W, 3)."""
    images = torch.as_tensor(images).detach().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}.")
    if images.dtype != torch.uint8:
        images = to_uint8(images.float())
    return images.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()


def save_image_rows(rows, path, row_labels=None, col_labels=None, title=None, scale=1.0):
    """Save a grid where ``rows[i]`` (images, see ``save_image_grid``) is row i.

    Rows may differ in length and in resolution: a smaller tile is enlarged by
    pixel repetition when the sizes divide (e.g. a 16x16 low-resolution input
    beside its 64x64 output), so no pixel is ever interpolated.
    """
    rows = [_tiles(r) for r in rows]
    h = max(r.shape[1] for r in rows)
    w = max(r.shape[2] for r in rows)
    ncol = max(len(r) for r in rows)
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"{len(row_labels)} row labels for {len(rows)} rows.")
    if col_labels is not None and len(col_labels) > ncol:
        raise ValueError(f"{len(col_labels)} column labels for {ncol} columns.")

    # Paste the tiles into one white canvas with PAD pixels around each tile.
    canvas = np.full((len(rows) * (h + PAD) + PAD, ncol * (w + PAD) + PAD, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        fy, fx = h // row.shape[1], w // row.shape[2]
        if (fy * row.shape[1], fx * row.shape[2]) != (h, w):
            raise ValueError(f"row {i} has {row.shape[1]}x{row.shape[2]} images, which do not "
                             f"scale by a whole factor to {h}x{w}.")
        row = row.repeat(fy, axis=1).repeat(fx, axis=2)
        for j, tile in enumerate(row):
            y, x = PAD + i * (h + PAD), PAD + j * (w + PAD)
            canvas[y:y + h, x:x + w] = tile

    # Figure size in pixels: the canvas shown at `scale` screen pixels per image
    # pixel (at least 1, so nothing is downscaled), plus margins for the text.
    zoom = max(1.0, scale)
    grid_w, grid_h = canvas.shape[1] * zoom, canvas.shape[0] * zoom
    longest = max((len(str(label)) for label in row_labels or []), default=0)
    left = 12 + 9 * longest if longest else 2                 # ~9 px per character (capitals are wide)
    top = (18 if col_labels else 0) + (24 if title else 0) + 2
    fig_w = max(left + grid_w + 2, 10 + 9 * len(title or ""))  # room for the title
    fig_h = top + grid_h + 2
    fig = plt.figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    ax = fig.add_axes([left / fig_w, 2 / fig_h, grid_w / fig_w, grid_h / fig_h])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()

    def text(x, y, label, **kw):  # x, y in figure pixels from the bottom-left corner
        fig.text(x / fig_w, y / fig_h, str(label), fontsize=FONT, **kw)

    for i, label in enumerate(row_labels or []):
        y = 2 + grid_h - (PAD + i * (h + PAD) + h / 2) * zoom
        text(left - 6, y, label, ha="right", va="center")
    for j, label in enumerate(col_labels or []):
        x = left + (PAD + j * (w + PAD) + w / 2) * zoom
        text(x, 2 + grid_h + 3, label, ha="center", va="bottom")
    if title:
        fig.text(0.5, 1 - 4 / fig_h, str(title), ha="center", va="top", fontsize=FONT + 2)
    return _save(fig, path)


def save_image_grid(images, path, nrow=8, row_labels=None, col_labels=None, title=None,
                    scale=1.0):
    """Save ``images`` as a grid PNG, ``nrow`` images per row; returns ``path``.

    images: float in [-1, 1] or uint8, shape (N, C, H, W) with C = 1 or 3.
    row_labels / col_labels: text left of each row / above each column.
    scale: screen pixels per image pixel (at least 1; whole numbers stay crisp).
    Tiles are shown at native resolution or larger, never blurred.
    """
    tiles = torch.as_tensor(images)
    rows = [tiles[i:i + nrow] for i in range(0, len(tiles), nrow)]
    return save_image_rows(rows, path, row_labels, col_labels, title, scale)


def _moving_average(y: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` values at each point (fewer at the start)."""
    c = np.cumsum(np.insert(y, 0, 0.0))
    n = np.minimum(np.arange(1, len(y) + 1), k)
    return (c[1:] - c[np.arange(1, len(y) + 1) - n]) / n


def plot_losses(log, path, columns=None, title=None, smooth=0):
    """Plot ``log.csv`` columns against ``step``, one subplot per group.

    log: path to ``log.csv`` or the dict from ``read_log``.
    columns: names, or groups of names drawn together, e.g.
        ``[("loss_D", "loss_G"), "k_t", "M"]``. Default: all ``loss*`` columns
        together, then every other column alone.
    smooth: if > 1, also draw a moving average over that many logged points
        (the raw curve stays, faint).
    Columns missing from the log or without numbers are skipped.
    """
    if not isinstance(log, dict):
        log = read_log(log)
    steps = np.asarray(log.get("step", []), dtype=float)
    numeric = [c for c in log if c != "step" and np.isfinite(np.asarray(log[c], float)).any()]
    if columns is None:
        losses = tuple(c for c in numeric if c.startswith("loss"))
        columns = ([losses] if losses else []) + [c for c in numeric if c not in losses]
    groups = [[c for c in ((g,) if isinstance(g, str) else g) if c in numeric] for g in columns]
    groups = [g for g in groups if g]

    fig, axes = plt.subplots(max(len(groups), 1), 1, sharex=True, squeeze=False,
                             figsize=(7, 1.0 + 2.0 * max(len(groups), 1)), dpi=DPI)
    axes = axes[:, 0]
    if not groups:
        axes[0].text(0.5, 0.5, "nothing logged yet", ha="center", va="center")
    for ax, group in zip(axes, groups):
        for name in group:
            y = np.asarray(log[name], dtype=float)
            ok = np.isfinite(y) & np.isfinite(steps)
            x, y = steps[ok], y[ok]
            if smooth and smooth > 1:
                line, = ax.plot(x, y, alpha=0.3, linewidth=0.8)
                ax.plot(x, _moving_average(y, smooth), color=line.get_color(), label=name)
            else:
                ax.plot(x, y, label=name)
        ax.legend(loc="best", fontsize=FONT)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def grouped_bars(table: dict, path, ylabel: str, title=None):
    """Bar chart: one group per outer key on the x axis, one bar per inner key.

    ``table = {"step 0": {"FID": 210.0, "LPIPS": 0.31}, "step 2000": {...}}``.
    Missing or ``None``/NaN values leave a gap. Each bar carries its value.
    """
    groups = list(table)
    series = list(dict.fromkeys(k for inner in table.values() for k in inner))
    width = 0.8 / max(len(series), 1)
    fig_w = max(4.0, 1.5 + 0.5 * len(groups) * max(len(series), 1)) + 2  # inches, with the legend
    fig, ax = plt.subplots(figsize=(fig_w, 3.5), dpi=DPI)
    for s, name in enumerate(series):
        xs, heights = [], []
        for g, group in enumerate(groups):
            value = table[group].get(name)
            if value is not None and math.isfinite(float(value)):
                xs.append(g - 0.4 + width * (s + 0.5))
                heights.append(float(value))
        bars = ax.bar(xs, heights, width=width, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=FONT - 1)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_ylabel(ylabel)
    if series:                                     # beside the axes, where it covers no bar
        ax.legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def markdown_table(rows, columns=None, floatfmt=".3g") -> str:
    """A GitHub markdown table from a list of dicts (one dict per row).

    columns: which keys, in order (default: every key, in order of appearance).
    Floats use ``floatfmt``; a missing value is an empty cell. No trailing newline.

    >>> print(markdown_table([{"step": 0, "FID": 212.34}, {"step": 2000, "FID": 48.9}]))
    | step | FID |
    |---|---|
    | 0 | 212 |
    | 2000 | 48.9 |
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value):
        if value is None:
            return ""
        if isinstance(value, (float, np.floating)):
            return format(value, floatfmt)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, columns)) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
