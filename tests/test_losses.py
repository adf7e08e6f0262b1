import math

import torch

from deepaug.losses import nt_xent, simcse_loss


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def test_nt_xent_matches_direct_computation():
    torch.manual_seed(0)
    z = torch.randn(10, 4)
    t = 0.5
    n = 5
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        denom = sum(math.exp(_cos(z[i], z[j]) / t) for j in range(2 * n) if j != i)
        total += -math.log(math.exp(_cos(z[i], z[pos]) / t) / denom)
    assert abs(nt_xent(z, t).item() - total / (2 * n)) < 1e-5


def test_simcse_loss_matches_direct_computation():
    torch.manual_seed(1)
    z = torch.randn(8, 5)
    t = 0.05
    z1, z2 = z[:4], z[4:]
    total = 0.0
    for i in range(4):
        logits = [_cos(z1[i], z2[j]) / t for j in range(4)]
        m = max(logits)
        total += -(logits[i] - m - math.log(sum(math.exp(l - m) for l in logits)))
    assert abs(simcse_loss(z, t).item() - total / 4) < 1e-4


def test_losses_reward_aligned_pairs():
    torch.manual_seed(2)
    a = torch.randn(16, 8)
    aligned = torch.cat([a, a + 0.01 * torch.randn_like(a)])
    shuffled = torch.cat([a, torch.randn(16, 8)])
    assert nt_xent(aligned) < nt_xent(shuffled)
    assert simcse_loss(aligned) < simcse_loss(shuffled)
