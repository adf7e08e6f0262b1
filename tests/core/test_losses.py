import math

import pytest
import torch
import torch.nn.functional as F

from deepaug.core.losses import LOSSES, check_loss, contrastive_loss, nt_xent, simcse_loss, supcon_loss
from deepaug.domains.graph.train import LOSSES as GRAPH_LOSSES
from deepaug.domains.vision.train import LOSSES as VISION_LOSSES

DOMAIN_LOSSES = {"vision": VISION_LOSSES, "graph": GRAPH_LOSSES, "text": ("simcse",)}


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


# ---------------------------------------------------------------------------- SupContrast's loss scale
def _supcon_loss_simclr(features, temperature=0.07, base_temperature=0.07):
    """SupContrast's ``SupConLoss.forward`` in its SimCLR case (``labels=None, mask=None``,
    ``contrast_mode='all'``), transcribed from HobbitLong/SupContrast ``losses.py`` L14-15 and L38-104
    (commit 66a8fe5). ``features``: [bsz, n_views, dim], L2-normalised by the caller as SupContrast's model
    does (``networks/resnet_big.py`` L185)."""
    if len(features.shape) > 3:
        features = features.view(features.shape[0], features.shape[1], -1)
    batch_size = features.shape[0]
    mask = torch.eye(batch_size, dtype=torch.float32)
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    anchor_feature = contrast_feature
    anchor_count = contrast_count
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mask_pos_pairs = mask.sum(1)
    mask_pos_pairs = torch.where(mask_pos_pairs < 1e-6, 1, mask_pos_pairs)
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask_pos_pairs
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.view(anchor_count, batch_size).mean()


def _as_supcontrast_features(z):
    """main_supcon.py L219-221: ``f1, f2 = torch.split(features, [bsz, bsz])`` stacked to [bsz, 2, dim]."""
    f1, f2 = F.normalize(z, dim=1).chunk(2)
    return torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)


@pytest.mark.parametrize("temperature", [0.5, 0.2, 0.07])
def test_supcon_loss_matches_supcontrast(temperature):
    torch.manual_seed(3)
    z = torch.randn(32, 16)
    expected = _supcon_loss_simclr(_as_supcontrast_features(z), temperature=temperature)
    torch.testing.assert_close(supcon_loss(z, temperature), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(contrastive_loss("supcon", z, temperature), expected, rtol=1e-5, atol=1e-6)


def test_supcon_is_nt_xent_scaled_by_temperature_over_0_07():
    """At the SimCLR recipe's temperature 0.5 the SupContrast loss (and its gradient) is 7.14x NT-Xent's."""
    torch.manual_seed(4)
    z = torch.randn(20, 8)
    ratio = supcon_loss(z, 0.5) / nt_xent(z, 0.5)
    assert abs(float(ratio) - 0.5 / 0.07) < 1e-4 and abs(float(ratio) - 7.142857) < 1e-5
    torch.testing.assert_close(contrastive_loss("nt_xent", z, 0.5), nt_xent(z, 0.5), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"loss must be one of \('supcon', 'nt_xent'\) \(supcon: .*\), got 'infonce'"):
        check_loss("infonce", VISION_LOSSES)
    with pytest.raises(ValueError, match=r"loss must be one of \('supcon', .*'graphcl'\), got 'triplet'"):
        contrastive_loss("triplet", z, 0.5)


def test_every_domain_loss_is_registered_and_each_is_found_by_name():
    """One registry: each domain's accepted names are registered losses, and ``contrastive_loss`` by name
    is the registered function (a positive pair closer than the shuffled one has the lower loss)."""
    torch.manual_seed(5)
    z1 = torch.randn(16, 8)
    aligned, shuffled = torch.cat([z1, z1 + 0.01 * torch.randn(16, 8)]), torch.cat([z1, z1[torch.randperm(16)]])
    for names in DOMAIN_LOSSES.values():
        for name in names:
            check_loss(name, names)
            fn = LOSSES[name][0]
            torch.testing.assert_close(contrastive_loss(name, aligned, 0.2), fn(aligned, 0.2), rtol=0, atol=0)
            assert float(contrastive_loss(name, aligned, 0.2)) < float(contrastive_loss(name, shuffled, 0.2)), name


def test_the_config_schema_offers_exactly_each_domains_registered_losses():
    from deepaug.workflow.config import load_schema

    defs = load_schema()["$defs"]
    for domain in ("vision", "graph"):
        entry = defs[f"{domain}_train"]["properties"]["loss"]
        assert tuple(entry["enum"]) == DOMAIN_LOSSES[domain] and entry["default"] == DOMAIN_LOSSES[domain][0]
