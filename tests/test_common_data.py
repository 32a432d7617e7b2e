"""Tests for common/data.py: folder loaders, mode conversions, crops, in-memory batches."""
import numpy as np
import pytest
import torch
from PIL import Image

from common.data import DataError, InMemoryBatches, load_image_folder, load_paired_folders, to_float


def save(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def solid(color, size=(8, 8), mode="RGB"):
    return Image.new(mode, size, color)


def coordinates(width, height):
    """RGB image whose red channel is the column and green channel the row."""
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    return Image.fromarray(np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8))


# ---------------------------------------------------------------- load_image_folder


def test_flat_folder_shape_dtype_order_and_extensions(tmp_path):
    save(tmp_path / "b.png", solid("red"))
    save(tmp_path / "a.jpg", solid("blue"))
    save(tmp_path / "C.PNG", solid("green"))
    save(tmp_path / "d.webp", solid("white"))
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path, size=4)
    assert data.images.shape == (4, 3, 4, 4) and data.images.dtype == torch.uint8
    assert data.names == ["C.PNG", "a.jpg", "b.png", "d.webp"]
    assert data.images[2, :, 0, 0].tolist() == [255, 0, 0]  # b.png is red


def test_nested_folder_and_limit(tmp_path):
    save(tmp_path / "x" / "1.png", solid("red"))
    save(tmp_path / "x" / "y" / "2.png", solid("green"))
    save(tmp_path / "0.png", solid("blue"))
    data = load_image_folder(tmp_path, size=8)
    assert data.names == ["0.png", "x/1.png", "x/y/2.png"]
    assert data.images.shape == (3, 3, 8, 8)
    first_two = load_image_folder(tmp_path, size=8, limit=2)
    assert first_two.names == ["0.png", "x/1.png"]
    assert torch.equal(first_two.images, data.images[:2])


def test_center_crop_keeps_the_middle_square(tmp_path):
    save(tmp_path / "wide.png", coordinates(60, 40))
    image = load_image_folder(tmp_path, size=40, crop="center").images[0]
    assert image[0].min() == 10 and image[0].max() == 49  # columns 10..49
    assert image[1].min() == 0 and image[1].max() == 39  # all rows
    assert torch.equal(image[0, 0], torch.arange(10, 50, dtype=torch.uint8))


def test_celeba_crop_is_the_began_face_box(tmp_path):
    save(tmp_path / "000001.png", coordinates(178, 218))
    image = load_image_folder(tmp_path, size=128, crop="celeba").images[0]
    assert image.shape == (3, 128, 128)
    assert image[:2, 0, 0].tolist() == [25, 50]  # top-left = (column 25, row 50)
    assert image[:2, -1, -1].tolist() == [152, 177]  # bottom-right = (column 152, row 177)
    smaller = load_image_folder(tmp_path, size=32, crop="celeba").images[0].float()
    assert 24 <= smaller[0].min() and smaller[0].max() <= 153
    assert 49 <= smaller[1].min() and smaller[1].max() <= 178


def test_crop_none_squeezes_the_whole_image(tmp_path):
    save(tmp_path / "wide.png", coordinates(60, 40))
    image = load_image_folder(tmp_path, size=40, crop="none").images[0]
    assert image[0].min() <= 2 and image[0].max() >= 57  # all 60 columns are in
    assert image[1].min() == 0 and image[1].max() == 39


def test_grayscale_to_rgb_and_rgb_to_one_channel(tmp_path):
    save(tmp_path / "gray.png", solid(100, mode="L"))
    rgb = load_image_folder(tmp_path, size=8).images
    assert rgb.shape == (1, 3, 8, 8) and rgb[0, :, 3, 3].tolist() == [100, 100, 100]
    save(tmp_path / "red.png", solid("red"))
    gray = load_image_folder(tmp_path, size=8, channels=1).images
    assert gray.shape == (2, 1, 8, 8)
    assert gray[0, 0, 0, 0] == 100 and gray[1, 0, 0, 0] == 76  # ITU-R 601 luma of red


def test_palette_image(tmp_path):
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    save(tmp_path / "p.png", image)
    assert load_image_folder(tmp_path, size=8).images[0, :, 0, 0].tolist() == [10, 200, 30]


def test_rgba_is_composited_onto_white(tmp_path):
    image = Image.new("RGBA", (8, 8), (0, 0, 255, 0))  # fully transparent blue
    image.paste((255, 0, 0, 255), (0, 0, 4, 8))  # opaque red left half
    save(tmp_path / "a.png", image)
    pixels = load_image_folder(tmp_path, size=8).images[0]
    assert pixels[:, 0, 0].tolist() == [255, 0, 0]
    assert pixels[:, 0, 7].tolist() == [255, 255, 255]


def test_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.full((8, 8), 65535, np.uint16)
    values[:, 4:] = 32768
    save(tmp_path / "deep.png", Image.fromarray(values))
    pixels = load_image_folder(tmp_path, size=8, channels=1).images[0, 0]
    assert pixels[0, 0] == 255 and pixels[0, 7] == 128


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (8, 8), "red")
    image.paste((0, 0, 255), (4, 0, 8, 8))  # blue right half, stored
    exif = Image.Exif()
    exif[0x0112] = 3  # EXIF Orientation: display rotated by 180 degrees
    image.save(tmp_path / "phone.png", exif=exif)
    pixels = load_image_folder(tmp_path, size=8).images[0]
    assert pixels[:, 0, 0].tolist() == [0, 0, 255]  # blue is on the left when displayed


def test_corrupt_files_are_skipped_with_one_counted_warning(tmp_path):
    for name in ("a.png", "c.png"):
        save(tmp_path / name, solid("red"))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    save(tmp_path / "d.png", solid("red"))
    (tmp_path / "d.png").write_bytes((tmp_path / "d.png").read_bytes()[:40])  # truncated
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 files .* \(first: b.jpg\)") as record:
        data = load_image_folder(tmp_path, size=8)
    assert len(record) == 1
    assert data.names == ["a.png", "c.png"] and data.images.shape == (2, 3, 8, 8)


def test_all_files_unreadable(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of the 1 image files"):
        load_image_folder(tmp_path, size=8)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere", size=8)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path, size=8)


def test_too_small_images_name_count_and_smallest_size(tmp_path):
    save(tmp_path / "big.png", solid("red", (32, 32)))
    save(tmp_path / "small.png", solid("red", (20, 12)))
    save(tmp_path / "smaller.png", solid("red", (10, 30)))
    with pytest.raises(DataError, match=r"2 of 3 images .*smallest: 10 px.*--size 8 \(the largest power of two"):
        load_image_folder(tmp_path, size=16)        # the advice is a size the networks take (not 10)


def test_bad_options(tmp_path):
    save(tmp_path / "a.png", solid("red"))
    with pytest.raises(DataError, match="unknown crop"):
        load_image_folder(tmp_path, size=8, crop="middle")
    with pytest.raises(DataError, match="channels must be 1"):
        load_image_folder(tmp_path, size=8, channels=4)


# ---------------------------------------------------------------- load_paired_folders


def test_pairs_match_by_stem_and_mismatch_is_reported(tmp_path):
    for i, stem in enumerate(["a", "b", "c"]):
        save(tmp_path / "source" / f"{stem}.png", solid((i * 50, 0, 0)))
    save(tmp_path / "target" / "a.jpg", solid(0, mode="L"))  # a.png <-> a.jpg
    save(tmp_path / "target" / "b.png", solid(50, mode="L"))
    save(tmp_path / "target" / "d.png", solid(0, mode="L"))
    with pytest.warns(UserWarning) as record:
        pairs = load_paired_folders(tmp_path, size=8, target_channels=1)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert "left out 1 files" in messages[0] and "source" in messages[0] and "c" in messages[0]
    assert "left out 1 files" in messages[1] and "target" in messages[1] and "d" in messages[1]
    assert pairs.names == ["a", "b"]
    assert pairs.source.shape == (2, 3, 8, 8) and pairs.target.shape == (2, 1, 8, 8)
    assert torch.equal(pairs.source[:, 0, 0, 0], pairs.target[:, 0, 0, 0])  # aligned


def test_pairs_drop_unreadable_partner(tmp_path):
    for stem in ("a", "b"):
        save(tmp_path / "source" / f"{stem}.png", solid("red"))
        save(tmp_path / "target" / f"{stem}.png", solid("blue"))
    (tmp_path / "target" / "a.png").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        pairs = load_paired_folders(tmp_path, size=8)
    assert pairs.names == ["b"] and len(pairs.source) == len(pairs.target) == 1


def test_pairs_without_any_match(tmp_path):
    save(tmp_path / "source" / "a.png", solid("red"))
    save(tmp_path / "target" / "b.png", solid("red"))
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no file name .* matches"):
        load_paired_folders(tmp_path, size=8)


def test_pairs_missing_subfolder(tmp_path):
    save(tmp_path / "source" / "a.png", solid("red"))
    with pytest.raises(DataError, match="no 'target/' folder.*source/NAME.png"):
        load_paired_folders(tmp_path, size=8)


# ---------------------------------------------------------------- InMemoryBatches


def numbered(n, offset=0):
    """n images of shape (1, 2, 2); image i has every pixel equal to i + offset."""
    return (torch.arange(n, dtype=torch.uint8) + offset).view(n, 1, 1, 1).expand(n, 1, 2, 2)


def ids(batch):
    """The number each image in a batch was filled with (inverse of to_float)."""
    return ((batch[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


def test_batches_dtype_shape_and_range():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 4, 4)
    batch = next(InMemoryBatches(images, batch_size=2))
    assert batch.dtype == torch.float32 and batch.shape == (2, 3, 4, 4)
    assert sorted(batch[:, 0, 0, 0].tolist()) == [-1.0, 1.0]


def test_batches_are_deterministic_per_seed():
    def draw(seed):
        batches = InMemoryBatches(numbered(20), batch_size=4, seed=seed)
        return [ids(next(batches)) for _ in range(12)]
    assert draw(0) == draw(0)
    assert draw(0) != draw(1)


def test_each_epoch_covers_every_item_once_and_drops_the_rest():
    batches = InMemoryBatches(numbered(10), batch_size=3)
    assert len(batches) == 3
    for epoch in range(3):
        seen = [i for _ in range(3) for i in ids(next(batches))]
        assert len(set(seen)) == 9 and set(seen) <= set(range(10))
        assert batches.epoch == epoch
    next(batches)
    assert batches.epoch == 3


def test_pairs_stay_aligned():
    batches = InMemoryBatches(numbered(12), numbered(12, offset=100), batch_size=4, seed=3)
    for _ in range(5):
        x, y = next(batches)
        assert [i + 100 for i in ids(x)] == ids(y)


def test_state_dict_resumes_identically():
    batches = InMemoryBatches(numbered(10), batch_size=3, seed=7)
    for _ in range(5):  # crosses an epoch boundary
        next(batches)
    state = batches.state_dict()
    expected = [ids(next(batches)) for _ in range(7)]
    resumed = InMemoryBatches(numbered(10), batch_size=3, seed=123)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    assert [ids(next(resumed)) for _ in range(7)] == expected


def test_channels_last_output():
    batches = InMemoryBatches(numbered(4).expand(4, 3, 2, 2), batch_size=2, channels_last=True)
    assert next(batches).is_contiguous(memory_format=torch.channels_last)


def test_batch_errors():
    with pytest.raises(DataError, match="batch size 11 does not fit a dataset of 10"):
        InMemoryBatches(numbered(10), batch_size=11)
    with pytest.raises(DataError, match="equal length"):
        InMemoryBatches(numbered(10), numbered(9), batch_size=2)
    with pytest.raises(DataError, match="uint8"):
        InMemoryBatches(to_float(numbered(10)), batch_size=2)
    saved = InMemoryBatches(numbered(10), batch_size=2).state_dict()
    with pytest.raises(DataError, match="same --data"):
        InMemoryBatches(numbered(8), batch_size=2).load_state_dict(saved)


def test_hold_out_keeps_the_last_n_images_apart_and_needs_a_batch_beside_them():
    from common.data import hold_out
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    train, held = hold_out(images, 3, 2, "folder")
    assert train.flatten().tolist() == list(range(7)) and held.flatten().tolist() == [7, 8, 9]
    train, held = hold_out(images, 0, 2, "folder")                 # nothing held out: every image trains
    assert len(train) == 10 and len(held) == 0
    with pytest.raises(DataError, match="folder holds 10 images: too few to hold out 9 for FID"):
        hold_out(images, 9, 2, "folder")
