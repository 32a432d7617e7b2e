"""Run train.py jobs under torchrun and keep what each process ends with (for tests/test_distributed.py).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_driver.py JOBS.json

JOBS.json is a list of ``{"paper": ..., "dump": ..., "argv": [...]}``, run one after another in the same
processes (one launch, one process group: the launches, not the runs, cost the time). Each process writes
DUMP/rank<r>.pt: its networks' weights and buffers when the run finishes, so a test can compare the
processes (the run folder itself holds rank 0's only).
"""
import importlib
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import distributed, loop  # noqa: E402


def main():
    jobs = json.loads(pathlib.Path(sys.argv[1]).read_text())
    finish = loop.Run.finish
    for job in jobs:
        dump = pathlib.Path(job["dump"])

        def finish_and_dump(run, *args, dump=dump, **kwargs):
            dump.mkdir(parents=True, exist_ok=True)
            torch.save({name: net.state_dict() for name, net in run.models.items()},
                       dump / f"rank{distributed.rank()}.pt")
            return finish(run, *args, **kwargs)
        loop.Run.finish = finish_and_dump
        importlib.import_module(f"{job['paper']}.train").main(job["argv"])


if __name__ == "__main__":
    main()
