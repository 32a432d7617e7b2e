"""Tests for common/plots.py: each figure is a real, non-blank PNG."""
import numpy as np
import pytest
import torch
from PIL import Image

from common.csvlog import CsvLogger
from common.plots import grouped_bars, markdown_table, plot_losses, save_image_grid, save_image_rows


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_image_grid_shows_the_pattern_at_native_size(tmp_path):
    # 12 black 16x16 tiles, tile 5 white: rows of 8 -> 2 rows.
    images = -torch.ones(12, 3, 16, 16)
    images[5] = 1.0
    path = save_image_grid(images, tmp_path / "grid.png", nrow=8)
    pixels = _pixels(path)
    assert pixels.shape[1] >= 8 * 16 and pixels.shape[0] >= 2 * 16
    # Find tiles as black or white 16x16 blocks inside the white canvas.
    dark = pixels.mean(axis=2) < 10
    assert dark.sum() == 11 * 16 * 16                 # 11 black tiles, drawn pixel for pixel
    # The white tile sits between black tiles 4 and 6 on row 0: its row is dark left and right of it.
    rows, cols = np.nonzero(dark)
    top = rows.min()
    row0 = dark[top + 8]
    assert row0.sum() == 7 * 16                        # 7 black tiles on the first row
    gap = np.diff(np.nonzero(row0)[0])
    assert gap.max() > 16                              # the white tile breaks the run of black


def test_image_grid_uint8_grayscale_labels_title_and_scale(tmp_path):
    images = torch.zeros(6, 1, 8, 8, dtype=torch.uint8)
    images[:, :, :4] = 255                             # top half white, bottom black
    path = save_image_grid(images, tmp_path / "g.png", nrow=3, scale=4,
                           row_labels=["real", "fake"], col_labels=["a", "b", "c"],
                           title="uint8 gray")
    pixels = _pixels(path)
    assert pixels.shape[1] >= 3 * 8 * 4 and pixels.shape[0] >= 2 * 8 * 4
    assert pixels.std() > 10
    with pytest.raises(ValueError, match="row labels"):
        save_image_grid(images, tmp_path / "bad.png", nrow=3, row_labels=["one"])
    with pytest.raises(ValueError, match="C = 1 or 3"):
        save_image_grid(torch.zeros(2, 4, 8, 8), tmp_path / "bad.png")


def test_image_rows_enlarge_low_resolution_tiles(tmp_path):
    low = torch.rand(3, 3, 8, 8) * 2 - 1
    high = torch.rand(2, 3, 32, 32) * 2 - 1
    path = save_image_rows([low, high], tmp_path / "rows.png", row_labels=["16 px", "64 px"])
    pixels = _pixels(path)
    assert pixels.shape[1] >= 3 * 32 and pixels.shape[0] >= 2 * 32
    with pytest.raises(ValueError, match="whole factor"):
        save_image_rows([torch.zeros(1, 3, 10, 10), high], tmp_path / "bad.png")


def test_plot_losses_from_csv(tmp_path):
    log = CsvLogger(tmp_path / "log.csv")
    for step in range(0, 100, 10):
        log.log(step=step, loss_D=1.0 / (step + 1), loss_G=0.5, k_t=step / 100, note="text")
    path = plot_losses(tmp_path / "log.csv", tmp_path / "loss.png", smooth=3, title="losses")
    assert path.stat().st_size > 1000 and _pixels(path).std() > 5
    path = plot_losses({"step": [0, 1], "M": [1.0, 0.5]}, tmp_path / "m.png",
                       columns=[("M", "absent")])
    assert _pixels(path).std() > 5


def test_grouped_bars(tmp_path):
    table = {"step 0": {"FID": 200.0, "LPIPS": 0.3}, "step 2000": {"FID": 50.0}}
    path = grouped_bars(table, tmp_path / "bars.png", ylabel="value", title="metrics")
    assert path.stat().st_size > 1000 and _pixels(path).std() > 5


def test_markdown_table():
    rows = [{"step": 0, "FID": 212.34, "model": "DCGAN"},
            {"step": 2000, "FID": 48.9, "model": "a|b"}]
    assert markdown_table(rows) == ("| step | FID | model |\n"
                                    "|---|---|---|\n"
                                    "| 0 | 212 | DCGAN |\n"
                                    "| 2000 | 48.9 | a\\|b |")
    assert markdown_table(rows, columns=["FID", "PSNR"], floatfmt=".1f") == (
        "| FID | PSNR |\n|---|---|\n| 212.3 |  |\n| 48.9 |  |")
