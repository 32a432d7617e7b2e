"""The networks shipped in <paper>/weights/ (tools.ship): every file is the one its manifest
records (sha256), loads with weights_only through the run loader, rebuilds from its model_args and
still computes what it computed when it was shipped (a fixed-seed output, the golden test); a
shipped file replaced by a crafted pickle, or changed by one byte, is refused; a shipped folder is
never resumed nor written into."""
import importlib
import pathlib
import shutil

import pytest
import torch

import tools.ship
from common import manifest
from common.checkpoints import load_networks, read_checkpoint
from common.manifest import PAPERS, read_manifest, sha256, weights_folder
from conftest import _add, ship
from tools.ship import TOLERANCE, fingerprint, fingerprint_differs, total_megabytes

SHIPPED = {paper: importlib.import_module(f"{paper}.paper").SHIPPED for paper in PAPERS}   # what eval reads
ENTRIES = [(paper, name) for paper in PAPERS for name in SHIPPED[paper]]


def stages(paper, name):
    """The checkpoint folders of one shipped network (sr_degradation's pipeline has four)."""
    return sorted(p.parent for p in (weights_folder(paper) / name).rglob("checkpoint.pt"))


@pytest.mark.parametrize("paper", PAPERS)
def test_every_paper_ships_what_its_eval_reads_and_the_manifest_says_how_it_was_trained(paper):
    entries = read_manifest(paper)
    assert sorted(entries) == sorted(SHIPPED[paper])
    for name, entry in entries.items():
        for key in ("command", "commit", "cpu", "wall_s", "stages", "sha256", "fingerprint", "eval"):
            assert entry[key], f"{paper}/{name}: {key} is empty"
        assert all(stage["steps"] > 0 and stage["training_s"] > 0 for stage in entry["stages"].values())


def test_the_shipped_networks_fit_in_20_mb():
    assert 0 < total_megabytes() < 20


@pytest.mark.parametrize("paper,name", ENTRIES)
def test_every_shipped_file_is_the_one_the_manifest_records(paper, name):
    recorded = read_manifest(paper)[name]["sha256"]
    on_disk = {p.relative_to(weights_folder(paper)).as_posix() for p in (weights_folder(paper) / name).rglob("*")
               if p.is_file()}
    assert on_disk == set(recorded)
    for relative, digest in recorded.items():
        assert sha256(weights_folder(paper) / relative) == digest, relative


@pytest.mark.parametrize("paper,name", ENTRIES)
def test_shipped_weights_load_safely_and_rebuild_from_their_model_args(paper, name):
    build = importlib.import_module(f"{paper}.model").build
    for folder in stages(paper, name):
        checkpoint = read_checkpoint(folder / "checkpoint.pt")          # torch.load(weights_only=True)
        assert checkpoint["shipped"] and "optimizers" not in checkpoint and "rng" not in checkpoint
        networks, _ = load_networks(folder, paper, build)
        assert set(networks) == set(checkpoint["models"])
        for net_name, net in networks.items():
            for key, value in net.state_dict().items():
                assert torch.equal(value, checkpoint["models"][net_name][key].to(value.dtype)), f"{net_name}.{key}"


@pytest.mark.parametrize("paper,name", ENTRIES)
def test_a_fixed_seed_output_is_what_it_was_when_shipped(paper, name):
    """The golden test: a code change that makes the shipped weights compute something else fails here
    (tolerance: TOLERANCE × the output's absolute sum, for float32 on another CPU)."""
    recorded = read_manifest(paper)[name]["fingerprint"]
    assert fingerprint_differs(recorded, fingerprint(paper, weights_folder(paper) / name)) is None


def test_the_fingerprint_check_can_fail():
    recorded = {"sum": 10.0, "abs_sum": 100.0, "shape": [4, 3]}
    assert fingerprint_differs(recorded, dict(recorded)) is None
    assert fingerprint_differs(recorded, {**recorded, "sum": 10.0 + 2 * TOLERANCE * 100}) is not None
    assert fingerprint_differs(recorded, {**recorded, "shape": [4, 4]}) is not None


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


@pytest.fixture
def copied_repo(tmp_path, monkeypatch):
    """A copy of began_refiner's shipped weights, seen by the loader as the repository's."""
    shutil.copytree(weights_folder("began_refiner"), tmp_path / "began_refiner" / "weights")
    monkeypatch.setattr(manifest, "ROOT", tmp_path)
    return tmp_path / "began_refiner" / "weights"


def test_a_shipped_file_replaced_by_a_crafted_pickle_is_refused_and_runs_nothing(copied_repo, tmp_path, capsys):
    from began_refiner import eval as began_eval
    ran = tmp_path / "payload-ran"
    torch.save({"format": 2, "paper": "began_refiner", "step": 1, "config": _Payload(ran)},
               copied_repo / "B" / "checkpoint.pt")
    with pytest.raises(SystemExit, match="sha256 differs"):
        began_eval.main(["--run", str(copied_repo / "B"), "--out", str(tmp_path / "eval")])
    # the same file outside the weights folder (no manifest to compare with): weights_only refuses it
    shutil.copytree(copied_repo / "B", tmp_path / "elsewhere")
    with pytest.raises(SystemExit, match="holds Python objects besides tensors"):
        began_eval.main(["--run", str(tmp_path / "elsewhere"), "--out", str(tmp_path / "eval")])
    assert not ran.exists()


def test_a_shipped_file_changed_by_one_byte_is_refused(copied_repo, tmp_path):
    from began_refiner import eval as began_eval
    path = copied_repo / "B" / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="sha256 differs"):
        began_eval.main(["--run", str(copied_repo / "B"), "--out", str(tmp_path / "eval")])


def test_a_shipped_folder_is_neither_resumed_nor_written_into(tmp_path):
    from began_refiner import train
    shipped = weights_folder("began_refiner") / "B"
    with pytest.raises(SystemExit, match="shipped"):
        train.main(["--resume", "--steps", "10000000", "--out", str(shipped)])
    with pytest.raises(SystemExit, match="shipped networks"):
        train.main(["--steps", "1", "--out", str(shipped / "new")])
    assert not (shipped / "new").exists()


# ----------------------------------------------------------------- the manifest is the only truth

TINY_B = ["--train-faces", "40", "--width", "8", "--z-dim", "8", "--batch-size", "8", "--fid-faces", "16",
          "--fid-every", "1", "--sample-every", "1", "--ckpt-every", "1", "--log-every", "1"]


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A stand-in repository whose began_refiner/weights/B is a tiny 1-step run shipped with tools.ship."""
    from began_refiner import train
    run = train.main(TINY_B + ["--steps", "1", "--out", str(tmp_path / "run1")])
    ship("began_refiner", "B", run, tmp_path / "repo", monkeypatch)
    return tmp_path / "repo" / "began_refiner" / "weights"


def evaluate(weights, tmp_path):
    from began_refiner import eval as began_eval
    return began_eval.main(["--run", str(weights / "B"), "--out", str(tmp_path / "eval"), "--faces", "8"])


def test_a_shipped_network_is_replaced_only_with_replace_and_its_numbers_are_measured_again(stand_in, tmp_path,
                                                                                            monkeypatch):
    from began_refiner import train
    before = read_manifest("began_refiner")["B"]
    assert before["eval"]["measured_on"] == manifest.files_digest("began_refiner", "B") and "fid" in before["eval"]
    other = train.main(TINY_B + ["--steps", "3", "--out", str(tmp_path / "run3")])
    with pytest.raises(SystemExit, match="shipped already: add --replace"):
        _add("began_refiner", "B", other)
    assert read_manifest("began_refiner")["B"] == before                    # refused: nothing changed
    _add("began_refiner", "B", other, (), "--replace")
    after = read_manifest("began_refiner")["B"]
    assert after["stages"]["."]["steps"] == 3 and after["eval"]["fid"] != before["eval"]["fid"]
    assert after["eval"]["measured_on"] == manifest.files_digest("began_refiner", "B")
    assert tools.ship.check() == 0


def _no_manifest(weights):
    (weights / "manifest.json").unlink()


def _not_json(weights):
    (weights / "manifest.json").write_text("{ not json")


def _a_list(weights):
    (weights / "manifest.json").write_text("[]")


def _no_sha256(weights):
    (weights / "manifest.json").write_text('{"B": {"command": "x"}}')


def _unrecorded_file(weights):
    (weights / "B" / "notes.txt").write_text("hello")


def _edited_log(weights):
    with open(weights / "B" / "log.csv", "a") as f:
        f.write("99,1,1,1,1,1,1,1,1,1,1,1,1\n")


def _deleted_log(weights):
    (weights / "B" / "log.csv").unlink()


def _deleted_checkpoint(weights):
    (weights / "B" / "checkpoint.pt").unlink()


@pytest.mark.parametrize("spoil, said", [
    (_no_manifest, "manifest.json is missing"), (_not_json, "cannot be read"), (_a_list, "is not a manifest"),
    (_no_sha256, "is not a manifest"), (_unrecorded_file, "notes.txt is not recorded"),
    (_edited_log, "log.csv is not the file the manifest records"), (_deleted_log, "log.csv, recorded in the manifest, "
                                                                                  "is missing"),
    (_deleted_checkpoint, "checkpoint.pt, recorded in the manifest, is missing")])
def test_eval_and_check_refuse_a_shipped_folder_its_manifest_does_not_vouch_for(stand_in, spoil, said, tmp_path,
                                                                                 capsys):
    spoil(stand_in)
    with pytest.raises(SystemExit) as err:
        evaluate(stand_in, tmp_path)
    assert said in str(err.value.code) and "git checkout -- began_refiner/weights" in str(err.value.code)
    assert not (tmp_path / "eval" / "metrics.json").exists()
    if spoil in (_unrecorded_file, _edited_log, _deleted_log, _deleted_checkpoint):   # the manifest itself reads
        capsys.readouterr()
        assert tools.ship.check() == 1 and said in capsys.readouterr().out


def test_check_fails_when_the_numbers_were_measured_on_other_weights(stand_in, tmp_path, capsys):
    """A network copied in with its sha256 recorded by hand, but not measured: the numbers belong to the old one."""
    from began_refiner import train
    other = train.main(TINY_B + ["--steps", "2", "--out", str(tmp_path / "run2")])
    recorded = read_manifest("began_refiner")
    torch.save(tools.ship.shipped_checkpoint(read_checkpoint(other / "checkpoint.pt"), ["G"], False),
               stand_in / "B" / "checkpoint.pt")
    recorded["B"]["sha256"]["B/checkpoint.pt"] = sha256(stand_in / "B" / "checkpoint.pt")
    tools.ship.write_manifest("began_refiner", recorded)
    recorded["B"]["fingerprint"] = fingerprint("began_refiner", stand_in / "B")
    tools.ship.write_manifest("began_refiner", recorded)
    evaluate(stand_in, tmp_path)                                            # the files are as recorded ...
    assert tools.ship.check() == 1                                          # ... but not the numbers
    assert "its numbers were measured on other files" in capsys.readouterr().out
