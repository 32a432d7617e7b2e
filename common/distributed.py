"""Training on several processes (GPUs, or machines) with torch.distributed, as torchrun starts it.

    torchrun --standalone --nproc_per_node 4 dcgan_celeba/train.py --preset paper       # 4 GPUs (or processes)
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        dcgan_celeba/train.py --preset paper                                            # on each of 2 machines

Without torchrun nothing here does anything: this process is rank 0 of 1. Under torchrun every
process runs the same train.py; what differs is decided in this module, so a loop reads the same
either way (the references: karpathy/nanoGPT train.py, NVlabs/stylegan2-ada-pytorch
training_loop.py and loss.py, rosinality/stylegan2-pytorch distributed.py):

- ``start`` (called by ``common.device.pick_device``): join the process group from torchrun's
  environment: NCCL with one GPU per process (``LOCAL_RANK``) on CUDA, gloo on CPU;
- ``--batch-size`` is the images of one step **in all processes together**: each of N processes
  takes batch/N (``common.data.InMemoryBatches``), so a run means the same whatever N is, and
  resumes with another N. Every process draws the same shuffled order and takes its own slice;
- seeds differ per process (``common.device.seed_everything``), so each draws its own noise;
  DistributedDataParallel copies rank 0's initial weights to the others;
- ``wrap``: each network in its own DistributedDataParallel, ``frozen``: the other player's
  network in a player's step, ``average``: losses that steer training (BEGAN's k_t) and logged
  losses averaged over processes, so every process takes the same decisions;
- rank 0 alone writes: the run folder, log.csv, samples, FID and checkpoints (``common.loop.Run``);
  the others wait for it at the next step's gradient exchange.
"""
import contextlib
import inspect
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

_CONTROL = None     # a gloo group for small messages read on the CPU (Ctrl-C), also when training runs on NCCL


def rank() -> int:
    """This process's number (torchrun's ``RANK``; 0 alone), also before the process group is joined."""
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def world() -> int:
    """How many processes train together (torchrun's ``WORLD_SIZE``; 1 alone)."""
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def start(device: torch.device) -> torch.device:
    """This process's device; under torchrun, join the process group first (once per process)."""
    global _CONTROL
    if world() == 1:                                                # not started by torchrun among several
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))           # one GPU per process
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _CONTROL = dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD
    return device


# DistributedDataParallel's buffer broadcast before every forward is off: the discriminators run
# twice (real, then generated) before one backward, and a broadcast between the two writes into
# BatchNorm's running statistics that the first graph still needs (pytorch/pytorch#22095). Buffers
# are still copied from rank 0 once, at wrapping; after that each process keeps running statistics
# of its own slices (rank 0's are saved). torch 2.14 renamed the switch.
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                   inspect.signature(DistributedDataParallel).parameters else {"broadcast_buffers": False})


def wrap(models: dict) -> dict:
    """The networks as the training step calls them: alone, the networks themselves; under torchrun,
    each in its own DistributedDataParallel (D and G apart, so a backward averages over processes the
    gradients of the networks it reaches, and no others).

    BatchNorm: on CUDA it becomes SyncBatchNorm (batch statistics over the whole global batch, as one
    process would compute them); SyncBatchNorm does not run on the CPU, where each process normalises
    with the statistics of its own slice (a smaller batch). The raw networks keep the same weights and
    buffers, and stay the ones to sample from and to save.
    """
    if not dist.is_initialized():
        return dict(models)
    wrapped = {}
    for name, net in models.items():
        device = next(net.parameters()).device
        if device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)             # shares weights and buffers
        wrapped[name] = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None,
                                                **_NO_BUFFER_SYNC)
    return wrapped


@contextlib.contextmanager
def frozen(net):
    """The other player's network in a player's step: no gradient into its weights, and under torchrun
    no gradient exchange for it either (DDP's ``no_sync``: a forward that expects no backward into it)."""
    net.requires_grad_(False)
    try:
        with net.no_sync() if isinstance(net, DistributedDataParallel) else contextlib.nullcontext():
            yield net
    finally:
        net.requires_grad_(True)


def average(*tensors):
    """Each scalar tensor's mean over processes (equal slices: the value one process with the whole
    batch would have seen), detached; alone, the tensors as they are. One all-reduce for all of them."""
    tensors = [t.detach().float() for t in tensors]
    if not dist.is_initialized():
        return tuple(tensors)
    stacked = torch.stack(tensors)
    dist.all_reduce(stacked)
    return tuple(stacked / world())


def any_process(flag: bool) -> bool:
    """True when ``flag`` is True in any process (e.g. one of them was asked to stop)."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_CONTROL)
    return bool(value)


def earliest(first_bad: torch.Tensor) -> torch.Tensor:
    """Per column, the earliest step (0: none) at which any process logged a non-finite value."""
    if not dist.is_initialized():
        return first_bad
    never = torch.iinfo(first_bad.dtype).max
    steps = torch.where(first_bad == 0, never, first_bad)
    dist.all_reduce(steps, op=dist.ReduceOp.MIN)
    return torch.where(steps == never, 0, steps)


def barrier() -> None:
    """Wait until every process gets here (e.g. before reading what rank 0 just wrote)."""
    if dist.is_initialized():
        dist.barrier(group=_CONTROL)


def lost_peer(err: BaseException) -> bool:
    """True for the error a collective raises in a process whose peer died (torchrun then stops the
    rest within seconds): gloo's 'Connection reset/closed by peer', NCCL's backend errors."""
    return dist.is_initialized() and (isinstance(err, getattr(dist, "DistBackendError", ())) or "by peer" in str(err))
