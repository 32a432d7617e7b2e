"""Run one paper's train.py under torchrun and keep what each process ends with (for tests/test_distributed.py).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_driver.py PAPER DUMP -- ARGV

Each process writes DUMP/rank<r>.pt: its networks' weights and buffers when the run finishes, so a test
can compare the processes (the run folder itself holds rank 0's only).
"""
import importlib
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch                                    # noqa: E402

from common import distributed, loop            # noqa: E402


def main():
    paper, dump, argv = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[sys.argv.index("--") + 1:]
    finish = loop.Run.finish

    def finish_and_dump(run, *args, **kwargs):
        dump.mkdir(parents=True, exist_ok=True)
        torch.save({name: net.state_dict() for name, net in run.models.items()},
                   dump / f"rank{distributed.rank()}.pt")
        return finish(run, *args, **kwargs)
    loop.Run.finish = finish_and_dump
    importlib.import_module(f"{paper}.train").main(argv)


if __name__ == "__main__":
    main()
