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

**Waiting is bounded.** A process started with torchrun's variables (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``) but whose peers never come (variables set by hand, a peer that
crashed before joining) says once what it waits for and gives up after ``TIMEOUT_S`` seconds: 300 by
default, or the number in the environment variable ``DISTRIBUTED_TIMEOUT_S``. The same bound holds
for every exchange during training (rank 0 evaluates FID while the others wait: keep it above the
time of one evaluation). A missing or malformed variable is one sentence, before any waiting.
"""
import contextlib
import datetime
import inspect
import os
import socket
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

_CONTROL = None     # a gloo group for small messages read on the CPU (Ctrl-C), also when training runs on NCCL


def _variable(name: str, default=None, low: int = 0) -> int:
    """torchrun's environment variable ``name`` as a whole number of at least ``low``; one sentence if it
    is missing (and has no ``default``) or is not such a number."""
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    if text is None or not text.strip().isdigit() or int(text) < low:
        raise SystemExit(f"the environment variable {name} is {'missing' if text is None else repr(text)}: start "
                         f"several processes with torchrun (torchrun --standalone --nproc_per_node N ...), which "
                         f"sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, or unset them all.")
    return int(text)


def rank() -> int:
    """This process's number (torchrun's ``RANK``; 0 alone), also before the process group is joined."""
    return dist.get_rank() if dist.is_initialized() else _variable("RANK", 0)


def world() -> int:
    """How many processes train together (torchrun's ``WORLD_SIZE``; 1 alone)."""
    return dist.get_world_size() if dist.is_initialized() else _variable("WORLD_SIZE", 1, low=1)


def timeout_s() -> int:
    """How long a process waits for its peers, to join and at every exchange: ``DISTRIBUTED_TIMEOUT_S``, or 300."""
    return _variable("DISTRIBUTED_TIMEOUT_S", 300, low=1)


def start(device: torch.device) -> torch.device:
    """This process's device; under torchrun, join the process group first (once per process), waiting at
    most ``timeout_s()`` for the others."""
    global _CONTROL
    if world() == 1 or dist.is_initialized():                    # alone, or joined already
        return device
    if rank() >= world():
        raise SystemExit(f"RANK {rank()} is not below WORLD_SIZE {world()}: start the processes with torchrun.")
    address = os.environ.get("MASTER_ADDR")
    port = _variable("MASTER_PORT", low=1)
    if not address:
        _variable("MASTER_ADDR")                                 # missing: its sentence
    if device.type == "cuda":
        device = torch.device("cuda", _variable("LOCAL_RANK"))                 # one GPU per process
        torch.cuda.set_device(device)
    wait = timeout_s()
    if "TORCHELASTIC_RUN_ID" not in os.environ:                  # started by hand: torchrun has not gathered us
        print(f"process {rank()} of {world()}: waiting up to {wait} s for the others to join at {address}:{port} "
              f"(DISTRIBUTED_TIMEOUT_S sets the wait)", flush=True)
    try:
        if rank() > 0:
            _reach(address, port, wait)              # rank 0's store first: c10d's own retries log C++ stacks
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(seconds=wait))
    except (RuntimeError, ValueError, OSError) as err:           # DistStoreError (a timeout) is a RuntimeError
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise SystemExit(f"process {rank()} gave up: the {world()} processes of this run did not all join at "
                         f"{address}:{port} within {wait} s ({reason}). Start them together with torchrun "
                         f"--nproc_per_node {world()}.") from None
    _CONTROL = dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD
    return device


def _reach(address: str, port: int, wait: float) -> None:
    """Return once something listens at ``address:port`` (rank 0's store); OSError after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise OSError("no process 0 listened there") from None
            time.sleep(0.5)


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
