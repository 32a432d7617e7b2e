"""The device, the seeds and the fast path (bfloat16 autocast, ``channels_last``) of every script.

    device = pick_device(args.device)            # auto: CUDA if there is one, else the CPU
    amp = use_amp(args.amp, device)              # --amp: bf16 where it is native, else float32 (one line says so)
    seed_everything(args.seed)
    G = to_device(G, device, args.channels_last)
    with autocast(device, amp):
        ...                                      # forward passes
    samples = outputs(G, z, device=device, amp=amp)      # eval mode, no grad, float32 in [-1, 1]
"""
import platform
import random
from pathlib import Path

import numpy as np
import torch

from common import distributed


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; ``"cpu"``; ``"cuda"`` / ``"cuda:N"``.

    On CUDA this also turns on ``cudnn.benchmark`` (fastest convolution algorithms
    for our fixed input sizes). Under torchrun, each process takes its own GPU and joins
    the process group (``common.distributed.start``).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda was asked for, but PyTorch sees no CUDA GPU; "
                             "use --device cpu (or auto).")
        torch.backends.cudnn.benchmark = True
    elif name != "cpu":
        raise SystemExit(f"Unknown --device {name!r}: use auto, cpu or cuda.")
    return distributed.start(torch.device(name))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device). Under torchrun each
    process gets its own seed (rank 0 the one given), so each draws its own noise."""
    seed = (seed + 1_000_003 * distributed.rank()) % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def cpu_has_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def cpu_name() -> str:
    """The CPU's model name (``lscpu``'s "Model name") and its bf16 path, for every timing reported:
    e.g. "Intel(R) Xeon(R) Processor (AMX-BF16)"; the two paths round bf16 sums differently."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    cpu = getattr(torch, "cpu", None)
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return f"{name} (AMX-BF16)"
    return f"{name} ({'AVX512-BF16' if cpu_has_bf16() else 'no native bf16'})"


def use_amp(requested: bool, device: torch.device) -> bool:
    """Whether ``--amp`` (bfloat16 autocast) actually runs on ``device``.

    On CUDA, yes when asked. On a CPU, only where bf16 is native (``cpu_has_bf16``):
    elsewhere it would be emulated and slower, so one line says so and float32 is used.
    """
    if requested and device.type == "cpu" and not cpu_has_bf16():
        print("--amp: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so training runs in float32.")
        return False
    return bool(requested)


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on ``device`` (CUDA or CPU) when ``enabled``; a no-op context otherwise.

    bfloat16 has float32's exponent range, so no GradScaler is needed. Pass the value of
    ``use_amp``, not the raw flag.
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(enabled))


def to_device(module: torch.nn.Module, device: torch.device, channels_last: bool = True) -> torch.nn.Module:
    """Move a network to ``device``, in ``channels_last`` layout unless asked not to (``--no-channels-last``):
    convolutions run faster in it on CPU and CUDA."""
    return module.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@torch.no_grad()
def outputs(net: torch.nn.Module, *inputs, device: torch.device, amp: bool) -> torch.Tensor:
    """``net(*inputs)`` as samples, FID and figures see it: eval mode (BatchNorm's running statistics),
    no gradients, ``--amp``'s autocast; returned as float32 clamped to [−1, 1]. The training mode
    ``net`` had is restored after."""
    was_training = net.training
    net.eval()
    with autocast(device, amp):
        out = net(*inputs)
    net.train(was_training)
    return out.float().clamp(-1, 1)
