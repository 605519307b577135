import pytest
import torch

from pruning.blocks import expand_group_mask, group_norms_sq
from pruning.regularizers import GroupLasso, ReweightedGroupLasso

GSHAPE = (2, 3)


def make_weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "a.weight": torch.randn(5, 7, dtype=torch.float64, generator=g).requires_grad_(),
        "b.weight": torch.randn(4, 6, dtype=torch.float64, generator=g).requires_grad_(),
    }


def explicit_reweighted(weights, alphas, lam):
    total = 0.0
    for name, w in weights.items():
        norms = group_norms_sq(w, GSHAPE)
        total = total + (alphas[name] * norms).sum()
    return lam * total


def test_alpha_is_inverse_of_norm_sq_plus_eps():
    weights = make_weights()
    reg = ReweightedGroupLasso(weights, GSHAPE, lam=0.1, eps=1e-3)
    for name, w in weights.items():
        torch.testing.assert_close(reg.alphas[name], 1.0 / (group_norms_sq(w.detach(), GSHAPE) + 1e-3))
    with torch.no_grad():
        weights["a.weight"].mul_(0.5)
    reg.reweight()
    torch.testing.assert_close(
        reg.alphas["a.weight"], 1.0 / (group_norms_sq(weights["a.weight"].detach(), GSHAPE) + 1e-3)
    )


@pytest.mark.parametrize("kind", ["reweighted", "plain"])
def test_analytic_gradient_equals_autograd_of_explicit_formula(kind):
    weights = make_weights(3)
    lam = 0.37
    if kind == "reweighted":
        reg = ReweightedGroupLasso(weights, GSHAPE, lam=lam)
        # alphas held constant: the explicit formula treats them as constants
        penalty = explicit_reweighted(weights, {k: v.detach() for k, v in reg.alphas.items()}, lam)
    else:
        reg = GroupLasso(weights, GSHAPE, lam=lam)
        penalty = lam * sum(group_norms_sq(w, GSHAPE).sqrt().sum() for w in weights.values())
    expected = torch.autograd.grad(penalty, list(weights.values()))
    torch.testing.assert_close(reg.penalty(), penalty)
    reg.add_grad_()
    for (_, w), grad in zip(weights.items(), expected, strict=True):
        torch.testing.assert_close(w.grad, grad)


def test_plain_group_lasso_gradient_is_zero_on_zero_group():
    w = torch.zeros(4, 6, dtype=torch.float64)
    w[:2, :3] = 1.0
    w.requires_grad_()
    reg = GroupLasso({"w": w}, GSHAPE, lam=1.0)
    reg.add_grad_()
    assert torch.isfinite(w.grad).all()
    assert torch.count_nonzero(w.grad[2:, :]) == 0
    torch.testing.assert_close(w.grad[:2, :3], torch.full((2, 3), 1.0 / 6**0.5, dtype=torch.float64))


def test_reweighted_drives_small_groups_to_zero_faster_than_plain():
    """Convex toy: minimise 0.5*||W - T||^2 + penalty by gradient descent, T has big and small groups."""
    g = torch.Generator().manual_seed(0)
    target = torch.randn(8, 12, dtype=torch.float64, generator=g)
    small = torch.zeros(4, 4, dtype=torch.bool)
    small[torch.rand(4, 4, generator=g) < 0.5] = True
    scale = torch.where(small, 0.05, 1.0)
    target = target * expand_group_mask(scale, GSHAPE, (8, 12))

    def run(reg_cls, lam, steps=150, reweight_every=10):
        # Adam, as in real fine-tuning: the step size stays bounded even where alpha is huge.
        w = target.clone().requires_grad_()
        reg = reg_cls({"w": w}, GSHAPE, lam=lam)
        optimizer = torch.optim.Adam([w], lr=0.01)
        for step in range(steps):
            optimizer.zero_grad()
            w.grad = (w - target).detach()
            reg.add_grad_()
            optimizer.step()
            if step % reweight_every == reweight_every - 1:
                reg.reweight()
        return group_norms_sq(w.detach(), GSHAPE).sqrt()

    lam = 0.02
    reweighted = run(ReweightedGroupLasso, lam)
    plain = run(GroupLasso, lam)
    # small groups end far smaller under reweighting, large groups keep most of their norm
    assert reweighted[small].max() < 0.1 * plain[small].min()
    large_norm_ref = group_norms_sq(target, GSHAPE).sqrt()[~small]
    assert (reweighted[~small] > 0.5 * large_norm_ref).all()


@pytest.mark.parametrize("lam", [-1.0, "x"])
def test_bad_lambda(lam):
    with pytest.raises(ValueError, match="lam"):
        GroupLasso(make_weights(), GSHAPE, lam=lam)


def test_bad_eps():
    with pytest.raises(ValueError, match="eps"):
        ReweightedGroupLasso(make_weights(), GSHAPE, lam=0.1, eps=0)


def test_proximal_steps_match_closed_forms():
    w = torch.zeros(2, 6, dtype=torch.float64)
    w[:, :3] = 2.0 / 6**0.5  # group norm 2
    w[:, 3:] = 0.3 / 6**0.5  # group norm 0.3
    plain = w.clone()
    GroupLasso({"w": plain}, GSHAPE, lam=0.5).prox_(step=1.0)  # soft threshold by 0.5
    torch.testing.assert_close(plain[:, :3], w[:, :3] * 0.75)
    assert torch.count_nonzero(plain[:, 3:]) == 0
    reweighted = w.clone()
    reg = ReweightedGroupLasso({"w": reweighted}, GSHAPE, lam=0.1, eps=1e-6)
    alphas = reg.alphas["w"].clone()
    reg.prox_(step=2.0)
    factor = 1.0 / (1.0 + 2 * 2.0 * 0.1 * alphas)
    torch.testing.assert_close(reweighted, w * expand_group_mask(factor, GSHAPE, (2, 6)))
    # the proximal point minimises 0.5||V - W||^2 + step * penalty(V): gradient there is zero
    v = reweighted.clone().requires_grad_()
    objective = 0.5 * ((v - w) ** 2).sum() + 2.0 * 0.1 * (alphas * group_norms_sq(v, GSHAPE)).sum()
    (grad,) = torch.autograd.grad(objective, v)
    assert grad.abs().max() < 1e-12
