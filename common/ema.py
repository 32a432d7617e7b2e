"""``--ema DECAY``: an exponential moving average of the generator's weights.

After every generator step, θ̄ ← β·θ̄ + (1 − β)·θ. The average is never trained; it is what
one samples from. GANs' weights circle around a good point rather than settle on it, and the
average sits nearer that point: steadier FID between evaluations and often a lower one
(Karras et al., "Progressive Growing of GANs", ICLR 2018, §A.1: β = 0.999; Yazıcı et al.,
"The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019; StarGAN v2's ``nets_ema``).
None of the five papers uses it: a run with ``--ema`` is a deviation, and each README says where
a preset adopts it and what it measured.

Warm-up: the first averages would be mostly the untrained initial weights, so the decay used at
step t is min(β, (1 + t) / (10 + t)) (TensorFlow's ``ExponentialMovingAverage`` with
``num_updates``): 0.1 at step 0, 0.9 at step 80, β = 0.999 from step 8,990 on.
Buffers (BatchNorm's running statistics) are copied, not averaged.

In the loop (``Run.moving_average`` makes it, checkpoints it as ``G_ema`` and restores it)::

    ema = run.moving_average("G")          # None without --ema
    ...
    opt_g.step()
    if ema:
        ema.update(step)
"""
import argparse
import copy

import torch


def decay_at(step: int, decay: float) -> float:
    """The decay used at ``step``: ``decay``, lower while the average warms up."""
    return min(decay, (1 + step) / (10 + step))


class MovingAverage:
    """``net``'s moving average: ``self.net``, a frozen copy, updated by ``update(step)``."""

    def __init__(self, net: torch.nn.Module, decay: float):
        self.decay = decay
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self._averaged, self._trained = list(self.net.parameters()), list(net.parameters())
        self._buffers = list(zip(self.net.buffers(), net.buffers()))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """θ̄ ← β·θ̄ + (1 − β)·θ, on the device (no sync)."""
        torch._foreach_lerp_(self._averaged, self._trained, 1 - decay_at(step, self.decay))
        for averaged, trained in self._buffers:
            averaged.copy_(trained)


def with_average(measure, net, ema) -> dict:
    """``measure(net)`` (FID, diversity …), and with an average also ``measure(ema.net)``, its keys
    ending in ``_ema`` (log.csv's ``fid`` and ``fid_ema``: the trained G and its average, same step)."""
    metrics = measure(net)
    if ema is not None:
        metrics.update({f"{key}_ema": value for key, value in measure(ema.net).items()})
    return metrics


def decay(text):
    """argparse type of ``--ema``: a decay in [0, 1); 0 means no average."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (0: no average), not {text}")
    return value


def add_ema_arg(parser) -> None:
    parser.add_argument("--ema", type=decay, default=0.0, metavar="DECAY",
                        help="also keep a moving average of G's weights with this decay (e.g. 0.999; not in the "
                             "paper): log.csv gets fid_ema, samples and eval.py use the average (0: none)")
