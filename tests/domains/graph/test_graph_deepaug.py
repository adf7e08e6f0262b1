"""Deep Augmentation on graphs: a row is one view of one graph. The op draws one decision per graph from
its usual stream, transforms every node of a selected graph, leaves the other graphs bit for bit, and
under stop-gradient no gradient reaches the targeted layer or below through the selected graphs."""

import pytest
import torch

from deepaug import DeepAugment, target_module
from deepaug.core.losses import symmetric_infonce
from deepaug.domains.graph.data import load_graphs
from deepaug.domains.graph.models import build_graph_model

L = 3  # GIN layers: map 0 input, 1-3 GIN layers, 4 pooled graph vector, 5 projection head


@pytest.fixture(scope="module")
def views(synthetic_pt):
    """8 graphs as two 'views' of 4 (the same graphs twice; the op does not care)."""
    from deepaug.domains.graph.data import concat_batches

    gs = load_graphs(synthetic_pt)
    b = gs.batch(torch.arange(4))
    return concat_batches(b, b)


def _model(seed=0):
    # GraphCL's Xavier initialisation (the tests' gradients are checked unit by unit: with PyTorch's default
    # initialisation of this 8-unit model on constant features, some ReLU units start dead and get no gradient)
    torch.manual_seed(seed)
    return build_graph_model(1, hidden_dim=8, num_layers=L, init="xavier")


def _forward(model, b, op=None, node_level=True):
    if op is not None and node_level:
        with op.grouped(b.batch, b.num_graphs):
            return model(b.x, b.edge_index, b.batch, b.num_graphs)
    return model(b.x, b.edge_index, b.batch, b.num_graphs)


def _layer_of_params(model):
    out = {}
    for i, (_, m) in enumerate(model.deepaug_layers()):
        for p in m.parameters():
            out[id(p)] = i
    return out


# ----------------------------------------------------------------------------- the op's grouped rows
def test_one_decision_per_graph_from_the_ungrouped_stream_and_masks_per_node():
    g = torch.Generator().manual_seed(0)
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    x = torch.randn(12, 5, generator=g)
    op = DeepAugment(kind="dropout", rate=0.5, p=0.5, stop_gradient=False, seed=7)
    with op.grouped(groups, 5):
        y = op(x)
    ref = torch.Generator().manual_seed(7)
    chosen = torch.rand(5, generator=ref) < 0.5  # one uniform per graph, as for 5 ungrouped rows
    keep = torch.rand(x.shape, generator=ref) >= 0.5  # then one mask per node and unit
    assert torch.equal(op.last_group_mask, chosen) and torch.equal(op.last_mask, chosen[groups])
    assert 0 < int(chosen.sum()) < 5, "the draw should mix selected and unselected graphs"
    rows = chosen[groups]
    assert torch.equal(y[rows], (x * keep.float() / 0.5)[rows])
    assert torch.equal(y[~rows], x[~rows])


def test_without_groups_the_op_is_unchanged():
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    fresh = DeepAugment(kind="dropout", p=0.5, seed=3)(x)
    op = DeepAugment(kind="dropout", p=0.5, seed=3)
    with op.grouped(torch.arange(10) // 2, 5):
        pass
    op.set_groups(torch.arange(10) // 2, 5)
    op.set_groups(None)
    assert torch.equal(op(x), fresh)
    op.reseed(3)
    with op.grouped(torch.arange(10), 10):  # one node per graph: the same draws as ungrouped rows
        assert torch.equal(op(x), fresh)
    with pytest.raises(ValueError, match=r"groups for 10 rows .* activations have 6 rows"):
        with op.grouped(torch.arange(10), 10):
            op(x[:6])


def test_one_sided_selects_graphs_of_the_first_view_only():
    groups = torch.repeat_interleave(torch.arange(8), torch.tensor([3, 1, 2, 4, 3, 1, 2, 4]))
    op = DeepAugment(kind="dropout", p=1.0, selection="one_sided", seed=0)
    with op.grouped(groups, 8):
        op(torch.randn(groups.shape[0], 3))
    assert op.last_group_mask.tolist() == [True] * 4 + [False] * 4
    assert torch.equal(op.last_mask, groups < 4)


def test_pca_over_nodes_or_over_graph_means():
    """Nodes vary most along axis 0 inside each graph; graph means vary most along axis 1. PCA over
    nodes removes axis 0, PCA over graph vectors removes axis 1 (from every node of a selected graph)."""
    g = torch.Generator().manual_seed(0)
    n_graphs, per = 40, 12
    groups = torch.arange(n_graphs).repeat_interleave(per)
    means = torch.randn(n_graphs, 4, generator=g) * torch.tensor([0.1, 5.0, 0.1, 0.1])
    x = means[groups] + torch.randn(n_graphs * per, 4, generator=g) * torch.tensor([20.0, 0.1, 0.1, 0.1])
    removed = {}
    for over in ("rows", "graphs"):
        op = DeepAugment(kind="pca", p=1.0, pca_over=over, seed=0)
        with op.grouped(groups, n_graphs):
            y = op(x)
        _, _, vh = torch.linalg.svd(x - y, full_matrices=False)
        removed[over] = vh[0].abs()
        # the direction: the top principal component of the chosen samples, computed directly
        samples = x if over == "rows" else torch.stack([x[groups == i].mean(0) for i in range(n_graphs)])
        _, _, ref = torch.linalg.svd(samples - samples.mean(0), full_matrices=False)
        assert abs(float(vh[0] @ ref[0])) > 0.999
    assert removed["rows"].argmax() == 0 and removed["graphs"].argmax() == 1


# ----------------------------------------------------------------------------- on the GIN
@pytest.mark.parametrize("kind", ["dropout", "pca"])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_all_graphs_stop_gradient_cuts_every_path_through_layer_k(views, kind, k):
    """p = 1 with stop-gradient: layer k's parameters get no gradient, nor do the layers whose only way
    to the loss passes through layer k (all GIN layers when k is the pooled vector). The GIN layers
    below a node-level k still learn: each one's own output is pooled into the graph vector (GraphCL's
    concatenation of every layer's sum), a path that does not pass through layer k."""
    model = _model()
    op = DeepAugment(kind=kind, p=1.0, stop_gradient=True, seed=1)
    op.attach(target_module(model, k))
    symmetric_infonce(_forward(model, views, op, model.node_level(k))).backward()
    layer_of = _layer_of_params(model)
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        i = layer_of[id(p)]
        if i == k or (k == L + 1 and i <= k):
            assert torch.count_nonzero(g) == 0, f"{name} (layer {i}) got gradient, target {k}"
        else:
            assert g.abs().sum() > 0, f"{name} (layer {i}) got no gradient, target {k}"


@pytest.mark.parametrize("stop_gradient", [True, False])
@pytest.mark.parametrize("k", [2, 3])
def test_lower_layers_learn_only_from_unselected_graphs_at_k_and_their_own_pooling(views, k, stop_gradient):
    """p = 0.5 at GIN layer k: the gradient of the layers below k equals the backpropagation of
    (a) dL/d(layer k output) through the nodes of the unselected graphs only (stop-gradient), or through
    every node with the dropout mask on the selected ones (without), plus (b) the gradient each lower
    layer's node embeddings get from the pooled graph vector (sum pooling: dL/dg of the node's graph)."""
    model = _model()
    rate = 0.5
    op = DeepAugment(kind="dropout", rate=rate, p=0.5, stop_gradient=stop_gradient, seed=4)
    captured, outs = {}, {}
    target = target_module(model, k)

    def keep_pre(mod, args, out):
        captured["pre"] = out

    target.register_forward_hook(keep_pre)
    op.attach(target)

    def keep_post(mod, args, out):
        out.retain_grad()
        captured["post"] = out

    target.register_forward_hook(keep_post)
    for j in range(1, k):
        target_module(model, j).register_forward_hook(lambda mod, args, out, j=j: outs.__setitem__(j, out))

    def keep_graph_vector(mod, args, out):
        out.retain_grad()
        captured["g"] = out

    model.pool.register_forward_hook(keep_graph_vector)
    symmetric_infonce(_forward(model, views, op)).backward(retain_graph=True)
    nodes = op.last_group_mask[views.batch]
    assert 0 < int(nodes.sum()) < nodes.shape[0]
    lower = [p for p in model.parameters() if _layer_of_params(model)[id(p)] < k]
    got = [p.grad.clone() for p in lower]

    pre, post, dg = captured["pre"], captured["post"], captured["g"].grad
    if stop_gradient:
        upstream = post.grad * (~nodes).unsqueeze(1)
    else:
        scale = torch.where(pre.abs() > 0, post / pre, torch.zeros_like(pre)).detach()
        upstream = torch.where(nodes.unsqueeze(1), post.grad * scale, post.grad)
    h = model.hidden_dim
    pooled = [dg[views.batch, (j - 1) * h : j * h] for j in range(1, k)]  # sum pooling's backward
    expected = torch.autograd.grad(
        [pre] + [outs[j] for j in range(1, k)], lower, grad_outputs=[upstream] + pooled, retain_graph=True
    )
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["dropout", "pca"])
def test_without_stop_gradient_every_layer_gets_gradient(views, kind):
    model = _model()
    op = DeepAugment(kind=kind, p=1.0, stop_gradient=False, seed=1)
    op.attach(target_module(model, 2))
    symmetric_infonce(_forward(model, views, op)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("stop_gradient", [True, False])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_selected_graphs_get_no_gradient_at_the_layer_and_the_others_are_unchanged(views, k, stop_gradient):
    """p = 0.5 at a node-level layer: the layer's pre-transform output gets zero gradient on exactly the
    nodes of the selected graphs under stop-gradient (nonzero without), and the op's output equals its
    input bit for bit on the nodes of the unselected graphs."""
    model = _model()
    op = DeepAugment(kind="dropout", p=0.5, stop_gradient=stop_gradient, seed=4)
    captured = {}
    target = target_module(model, k)

    def keep_pre(mod, args, out):
        out.retain_grad()
        captured["pre"] = out

    target.register_forward_hook(keep_pre)  # runs before the op's hook: the untransformed output
    op.attach(target)
    target.register_forward_hook(lambda mod, args, out: captured.__setitem__("post", out))  # after it
    symmetric_infonce(_forward(model, views, op)).backward()
    chosen = op.last_group_mask
    assert 0 < int(chosen.sum()) < views.num_graphs, "the draw should mix selected and unselected graphs"
    nodes = chosen[views.batch]
    pre, post = captured["pre"], captured["post"]
    assert torch.equal(post[~nodes], pre[~nodes])
    assert not torch.equal(post[nodes], pre[nodes])
    grad = pre.grad.abs().sum(1)
    if stop_gradient:
        assert torch.count_nonzero(grad[nodes]) == 0
    else:
        assert all(grad[views.batch == i].sum() > 0 for i in torch.nonzero(chosen).flatten().tolist())
    assert all(grad[views.batch == i].sum() > 0 for i in torch.nonzero(~chosen).flatten().tolist())


@pytest.mark.parametrize("k", [0, 2, 4, 5])
def test_eval_mode_is_identity(views, k):
    model = _model()
    model.eval()
    plain = _forward(model, views)
    op = DeepAugment(kind="dropout", p=1.0, seed=0)
    handle = op.attach(target_module(model, k))
    assert torch.equal(_forward(model, views, op, model.node_level(k)), plain)
    model.train()
    trained = _forward(model, views, op, model.node_level(k))
    handle.remove()
    assert not torch.equal(trained, _forward(model, views))
