"""The three ALAE losses against hand computations (numpy, derivatives written out) on tiny
networks whose gradients are known in closed form, and the double backward through R1."""

import numpy as np
import pytest
import torch

from alae_fast.training.losses import (discriminator_loss, generator_loss, latent_reconstruction_loss,
                                       r1_penalty)


def softplus(v):
    return np.log1p(np.exp(v))


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


class Tiny:
    """E(x) = tanh(A x + a) on flattened x; D(w) = v . w + c; G(w) = B w reshaped to [N, 1, 2, 3]."""

    def __init__(self, seed=0, score_shape="flat"):
        g = torch.Generator().manual_seed(seed)
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        self.A, self.a, self.v, self.c, self.B = r(3, 6) * 0.7, r(3) * 0.3, r(3), r(()), r(6, 3)
        self.score_shape = score_shape

    def params(self):
        return [self.A, self.a, self.v, self.c, self.B]

    def E(self, x):
        return torch.tanh(x.reshape(x.shape[0], -1) @ self.A.T + self.a)

    def D(self, w):
        s = w @ self.v + self.c
        return s.unsqueeze(1) if self.score_shape == "column" else s

    def G(self, w):
        return (w @ self.B.T).reshape(w.shape[0], 1, 2, 3)

    def np(self):
        return [p.detach().numpy() for p in self.params()]


def hand_scores_and_grad(net, x):
    """Scores D(E(x)) and their gradient w.r.t. x: A^T (v * (1 - tanh^2(A x + a)))."""
    A, a, v, c, _ = net.np()
    X = x.reshape(x.shape[0], -1).numpy()
    t = np.tanh(X @ A.T + a)
    return t @ v + c, ((1 - t * t) * v) @ A


@pytest.mark.parametrize("score_shape", ["flat", "column"])
@pytest.mark.parametrize("gamma", [10.0, 0.0, 3.5])
def test_discriminator_loss_matches_hand(score_shape, gamma):
    net = Tiny(1, score_shape)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 1, 2, 3, generator=g, dtype=torch.float64)
    x_fake = torch.randn(7, 1, 2, 3, generator=g, dtype=torch.float64)  # batch sizes may differ
    s_real, grad = hand_scores_and_grad(net, x)
    s_fake, _ = hand_scores_and_grad(net, x_fake)
    r1 = gamma / 2 * (grad ** 2).sum(1)
    expect = softplus(s_fake).mean() + softplus(-s_real).mean() + r1.mean()
    loss, terms = discriminator_loss(net.E, net.D, x, x_fake, r1_gamma=gamma, return_terms=True)
    assert loss.shape == () and loss.dtype == torch.float64
    np.testing.assert_allclose(loss.item(), expect, rtol=1e-12)
    np.testing.assert_allclose(terms["real"].item(), softplus(-s_real).mean(), rtol=1e-12)
    np.testing.assert_allclose(terms["fake"].item(), softplus(s_fake).mean(), rtol=1e-12)
    np.testing.assert_allclose(terms["r1"].item(), r1.mean(), rtol=1e-12, atol=1e-15)
    assert not any(t.requires_grad for t in terms.values())
    np.testing.assert_allclose(discriminator_loss(net.E, net.D, x, x_fake, gamma).item(), expect, rtol=1e-12)


def test_r1_penalty_matches_hand_and_leaves_x_alone():
    net = Tiny(3)
    x = torch.rand(4, 1, 2, 3, dtype=torch.float64, requires_grad=True)
    scores, pen = r1_penalty(lambda t: net.D(net.E(t)), x, gamma=10.0)
    s, grad = hand_scores_and_grad(net, x.detach())
    np.testing.assert_allclose(scores.detach().numpy(), s, rtol=1e-12)
    np.testing.assert_allclose(pen.detach().numpy(), 5.0 * (grad ** 2).sum(1), rtol=1e-12)
    pen.sum().backward()
    assert x.grad is None  # x is used through a detached copy


def test_r1_backward_is_a_double_backward():
    """gradcheck of the step-1 loss w.r.t. E's and D's parameters: R1 depends on them only
    through the gradient graph, so this fails unless that graph is built (create_graph=True)."""
    net = Tiny(4)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(3, 1, 2, 3, generator=g, dtype=torch.float64)
    x_fake = torch.randn(3, 1, 2, 3, generator=g, dtype=torch.float64)

    def loss(A, a, v):
        net.A, net.a, net.v = A, a, v
        return discriminator_loss(net.E, net.D, x, x_fake, r1_gamma=10.0)

    params = tuple(p.clone().requires_grad_(True) for p in (net.A, net.a, net.v))
    assert torch.autograd.gradcheck(loss, params)

    # The penalty alone, by hand: d/dv of (gamma/2) mean ||A^T (v*(1-t^2))||^2.
    A, a, v = (p.detach().numpy() for p in params)
    X = x.reshape(3, -1).numpy()
    t = np.tanh(X @ A.T + a)
    s = 1 - t * t                                   # [N, 3]
    grad = (s * v) @ A                               # [N, 6]
    dv = 10.0 * ((grad @ A.T) * s).mean(0)           # d/dv_k of 5 * ||sum_k v_k s_k A_k||^2, averaged
    v_param = params[2].detach().clone().requires_grad_(True)
    net.A, net.a, net.v = params[0].detach(), params[1].detach(), v_param
    _, pen = r1_penalty(lambda q: net.D(net.E(q)), x, gamma=10.0)
    pen.mean().backward()
    np.testing.assert_allclose(v_param.grad.numpy(), dv, rtol=1e-10)


def test_discriminator_loss_detaches_fakes():
    net = Tiny(6)
    gen_param = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    x_fake = torch.rand(4, 1, 2, 3, dtype=torch.float64) * gen_param
    A = net.A.clone().requires_grad_(True)
    net.A = A
    discriminator_loss(net.E, net.D, torch.rand(4, 1, 2, 3, dtype=torch.float64), x_fake).backward()
    assert gen_param.grad is None
    assert A.grad is not None and A.grad.abs().sum() > 0


def test_generator_loss_matches_hand():
    net = Tiny(7)
    x_fake = torch.randn(5, 1, 2, 3, dtype=torch.float64, requires_grad=True)
    s, grad = hand_scores_and_grad(net, x_fake.detach())
    loss = generator_loss(net.E, net.D, x_fake)
    np.testing.assert_allclose(loss.item(), softplus(-s).mean(), rtol=1e-12)
    loss.backward()
    # d/dx mean softplus(-s) = -sigmoid(-s)/N * ds/dx
    expect = (-sigmoid(-s) / 5)[:, None] * grad
    np.testing.assert_allclose(x_fake.grad.reshape(5, -1).numpy(), expect, rtol=1e-10)


def test_latent_reconstruction_loss_matches_hand():
    net = Tiny(8)
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    A, a, _, _, B = net.np()
    W = w.detach().numpy()
    t = np.tanh(W @ B.T @ A.T + a)                   # E(G(w)), [N, 3]
    expect = ((t - W) ** 2).mean()
    loss = latent_reconstruction_loss(net.E, net.G, w)
    np.testing.assert_allclose(loss.item(), expect, rtol=1e-12)
    loss.backward()
    # The target is w.detach(): w's gradient flows only through G, J = diag(1-t^2) A B.
    r = 2 * (t - W) / t.size
    expect_grad = ((1 - t * t) * r) @ A @ B
    np.testing.assert_allclose(w.grad.numpy(), expect_grad, rtol=1e-10)


def test_bad_arguments():
    net = Tiny(9)
    x = torch.rand(3, 1, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="one score per sample"):
        discriminator_loss(net.E, lambda w: w, x, x)
    with pytest.raises(ValueError, match="one score per sample"):
        generator_loss(net.E, lambda w: w.sum(), x)
    with pytest.raises(TypeError, match="encoder must be callable"):
        discriminator_loss(None, net.D, x, x)
    with pytest.raises(TypeError, match="x_fake must be a torch.Tensor"):
        discriminator_loss(net.E, net.D, x, [1.0])
    with pytest.raises(ValueError, match="r1_gamma"):
        discriminator_loss(net.E, net.D, x, x, r1_gamma=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        r1_penalty(lambda t: net.D(net.E(t)), x, gamma=float("nan"))
    with pytest.raises(ValueError, match="w's shape"):
        latent_reconstruction_loss(lambda img: net.E(img)[:, :2], net.G, torch.randn(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch dimension"):
        generator_loss(net.E, net.D, torch.zeros(0, 6, dtype=torch.float64))
