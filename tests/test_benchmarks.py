"""The training-speed benchmark runs each variant and the usual-way loop (tiny sizes: a smoke test)."""
from benchmarks import speed as benchmark


def test_train_table_measures_every_variant_of_a_step(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark, "TRAIN_STEPS", [(paper, label, [*flags, "--train-faces", "64", "--fid-faces", "16"])
                                                   for paper, label, flags in benchmark.TRAIN_STEPS])
    rows = benchmark.train_table(steps=6, repeats=1, only="DCGAN 32 px, width 32")
    assert [r["step"] for r in rows] == ["dcgan_celeba: DCGAN 32 px, width 32"]
    assert all(rows[0][column] > 0 for column in benchmark.VARIANTS.values())
    assert rows[0]["fast / float32"].startswith("×")


def test_the_usual_way_loop_reads_png_files_and_reports_images_per_second(tmp_path):
    assert benchmark.usual_way_dcgan(size=32, width=8, batch=4, steps=6, workdir=tmp_path) > 0
    assert len(list((tmp_path / "png" / "faces").glob("*.png"))) == 1000
