"""Multitask learning: shared layers learn from every task, the weightings follow their formulas."""

import re

import numpy as np
import pytest
import torch

from transferkit.methods.multitask import MultiTask, MultiTaskNet, MultiTaskObjective, relative_change
from transferkit.nn.task_weighting import TaskWeighting, pcgrad

FAST = dict(hidden=(16, 8), epochs=30, batch_size=64, lr=1e-2, device="cpu")


def _related_tasks(n_small=12, n_large=400, seed=0):
    """Two binary tasks that share one 2-d projection of 20-d inputs; task 'b' has few labels."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((2, 20))

    def task(n, angle):
        X = rng.standard_normal((n, 20)).astype(np.float32)
        z = X @ A.T
        w = np.array([np.cos(angle), np.sin(angle)])
        return X, (z @ w > 0).astype(int)

    return {"a": task(n_large, 0.0), "b": task(n_small, 0.5)}, {"b": task(2000, 0.5)}


def test_shared_layers_receive_the_sum_of_every_tasks_gradient():
    torch.manual_seed(0)
    net = MultiTaskNet({"input": 4}, (6, 5), {"a": 2, "b": 1}, {"a": "input", "b": "input"})
    obj = MultiTaskObjective(
        net, ["a", "b"], ["classification", "regression"], [4, 4], TaskWeighting(["c", "r"]), False
    )
    g = torch.Generator().manual_seed(1)
    batch = {"x": torch.randn(10, 4, generator=g), "task": torch.tensor([0] * 5 + [1] * 5), "y": torch.randn(10)}
    batch["y"][:5] = torch.tensor([0.0, 1, 1, 0, 1])
    losses, present = obj.task_losses(batch)
    assert present.tolist() == [True, True]
    shared = net.shared_parameters()
    per_task = [torch.autograd.grad(losses[k], shared, retain_graph=True) for k in range(2)]
    total = torch.autograd.grad(obj(batch, 0.0)["loss"], shared)
    for tot, ga, gb in zip(total, *per_task, strict=True):
        assert ga.abs().sum() > 0 and gb.abs().sum() > 0  # both tasks reach the shared layers
        torch.testing.assert_close(tot, ga + gb)


def test_a_scarce_task_gains_from_a_related_task():
    tasks, test = _related_tasks()
    single = MultiTask(**FAST).fit({"b": tasks["b"]})
    multi = MultiTask(**FAST).fit(tasks)
    acc_single = np.mean(single.predict(test["b"][0], "b") == test["b"][1])
    acc_multi = np.mean(multi.predict(test["b"][0], "b") == test["b"][1])
    assert acc_multi > acc_single + 0.05, (acc_single, acc_multi)


def test_uncertainty_weighting_matches_kendall_et_al():
    w = TaskWeighting(["classification", "regression"], "uncertainty")
    with torch.no_grad():
        w.log_var.copy_(torch.tensor([0.3, -0.7]))
    losses = torch.tensor([1.2, 0.4])
    total, _ = w(losses, torch.tensor([True, True]), 0.0)
    s = np.array([0.3, -0.7])  # s = log sigma^2: 1/sigma^2 L + log sigma; 1/(2 sigma^2) L + log sigma
    expected = np.exp(-s[0]) * 1.2 + 0.5 * s[0] + 0.5 * np.exp(-s[1]) * 0.4 + 0.5 * s[1]
    assert total.item() == pytest.approx(expected, rel=1e-6)


def test_dwa_weights_follow_the_loss_ratios_of_the_two_previous_epochs():
    w = TaskWeighting(["classification"] * 3, "dwa", epochs=4, temperature=2.0)
    present = torch.tensor([True, True, True])
    epoch_losses = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 2.0, 3.3])]
    for e, losses in enumerate(epoch_losses):
        w(losses, present, e / 4)  # one batch per epoch
        assert torch.equal(w.weights(), torch.ones(3))  # w = 1 in the first two epochs
    w(torch.tensor([9.0, 9.0, 9.0]), present, 2 / 4)  # epoch 2 starts: the history is (e0, e1)
    r = np.array([0.5 / 1.0, 2.0 / 2.0, 3.3 / 3.0])
    expected = 3 * np.exp(r / 2) / np.exp(r / 2).sum()
    np.testing.assert_allclose(w.weights().numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.1])  # losses below 1 too: the ratio divides by them as they are
def test_dwa_means_each_epochs_batches_over_the_tasks_present(scale):
    w = TaskWeighting(["classification"] * 3, "dwa", epochs=4, temperature=1.0)
    mask = lambda *p: torch.tensor(p)  # noqa: E731
    batches = [  # two batches an epoch (progress e/4 and e/4 + 1/8); tasks missing from some
        (0 / 8, [1.0, 4.0, 1.0], mask(True, True, True)),
        (1 / 8, [3.0, 9.0, 1.0], mask(True, False, True)),
        (2 / 8, [1.0, 2.0, 2.0], mask(True, True, True)),
        (3 / 8, [2.0, 9.0, 4.0], mask(True, False, True)),  # an absent task's loss is not averaged in
        (4 / 8, [4.0, 7.0, 5.0], mask(True, True, False)),
        (5 / 8, [9.0, 8.0, 5.0], mask(False, True, False)),  # task 2 absent all epoch: it keeps its mean
    ]
    for progress, losses, present in batches:
        w(scale * torch.tensor(losses), present, progress)
    w(torch.tensor([5.0, 5.0, 5.0]), mask(True, True, True), 6 / 8)  # the last epoch starts: history (e1, e2)
    e1, e2 = np.array([1.5, 2.0, 3.0]), np.array([4.0, 7.5, 3.0])
    expected = 3 * np.exp(e2 / e1) / np.exp(e2 / e1).sum()
    np.testing.assert_allclose(w.weights().numpy(), expected, rtol=1e-6)
    w(torch.tensor([7.0, 1.0, 1.0]), mask(True, True, True), 1.0)  # the end of training: still the last epoch
    np.testing.assert_allclose(w.weights().numpy(), expected, rtol=1e-6)


def test_gradnorm_lowers_the_weight_of_the_task_with_the_larger_gradient():
    torch.manual_seed(0)
    W = torch.nn.Parameter(torch.randn(3, 3))
    x = torch.randn(8, 3)
    h = x @ W.T
    losses = torch.stack([h.pow(2).mean() * 10.0, h.abs().mean()])  # task 0: much larger gradients
    w = TaskWeighting(["regression"] * 2, "gradnorm", alpha=1.5)
    total, _ = w(losses, torch.tensor([True, True]), 0.0, shared=W)
    total.backward()
    assert w.theta.grad[0] > 0 > w.theta.grad[1]  # descending: the weight of task 0 goes down
    assert total.item() == pytest.approx(losses.sum().item(), rel=1e-6)  # weights start equal, at 1


def test_pcgrad_projects_conflicting_gradients_like_the_paper():
    p = torch.nn.Parameter(torch.zeros(2))
    g1, g2 = np.array([1.0, 0.0]), np.array([-1.0, 1.0])  # g1 . g2 < 0: a conflict
    losses = [(p * torch.tensor(g1, dtype=torch.float32)).sum(), (p * torch.tensor(g2, dtype=torch.float32)).sum()]
    extra = pcgrad(losses, [p])
    (grad,) = torch.autograd.grad(sum(losses) + extra, [p])
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    np.testing.assert_allclose(grad.numpy(), p1 + p2, rtol=1e-6)
    assert extra.item() == 0.0
    same = [(p * torch.tensor([1.0, 0.0])).sum(), (p * torch.tensor([1.0, 1.0])).sum()]
    (grad,) = torch.autograd.grad(sum(same) + pcgrad(same, [p]), [p])
    np.testing.assert_allclose(grad.numpy(), [2.0, 1.0])  # no conflict: the plain sum


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "dwa", "gradnorm"])
@pytest.mark.parametrize("use_pcgrad", [False, True])
def test_every_weighting_trains_mixed_tasks_with_their_own_input_spaces(weighting, use_pcgrad):
    rng = np.random.default_rng(0)
    Xa = rng.standard_normal((200, 3)).astype(np.float32)
    Xb = rng.standard_normal((150, 5)).astype(np.float32)
    tasks = {"cls": (Xa, (Xa[:, 0] > 0).astype(int) + 3), "reg": (Xb, 50 + 10 * Xb[:, 1])}
    model = MultiTask(**{**FAST, "epochs": 40}, weighting=weighting, pcgrad=use_pcgrad).fit(
        tasks, kinds={"cls": "classification", "reg": "regression"}, groups={"cls": "a", "reg": "b"}
    )
    assert set(model.predict(Xa, "cls")) <= {3, 4} and np.mean(model.predict(Xa, "cls") == tasks["cls"][1]) > 0.9
    pred = model.predict(Xb, "reg")  # in the original units
    r2 = 1 - np.mean((pred - tasks["reg"][1]) ** 2) / np.var(tasks["reg"][1])
    assert r2 > 0.8 and model.score(Xb, tasks["reg"][1], "reg") == pytest.approx(r2, rel=1e-5)
    assert model.score(Xa, tasks["cls"][1], "cls") == np.mean(model.predict(Xa, "cls") == tasks["cls"][1])
    assert set(model.task_weights_) == {"cls", "reg"}
    with pytest.raises(ValueError, match="X has 3 features; task 'reg' was fitted on 5"):
        model.predict(Xa, "reg")


def test_bad_input_is_named():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3)).astype(np.float32)
    y = np.arange(20) % 2
    fitted = MultiTask(**{**FAST, "epochs": 1}).fit({"a": (X, y)})
    with pytest.raises(ValueError, match=r"task='z' has no head; this model's tasks: \['a'\]"):
        fitted.predict(X, "z")
    cases = [
        (dict(tasks={"a": (X, y + 0.5)}), "not whole numbers"),
        (dict(tasks={"a": (X, y.astype(str))}, kinds={"a": "regression"}), "expected numbers"),
        (dict(tasks={"a": (X, y), "b": (X[:, :2], y)}), "give it its own input space"),
        (dict(tasks={"a": (X, y)}, kinds={"b": "regression"}), r"missing \['a'\], unknown \['b'\]"),
        (dict(tasks={"a": (X, np.zeros(20))}), "single class"),
        (dict(tasks={"a": (X, y[:5])}), r"expected \(20,\)"),
        (dict(tasks={}), "non-empty dict"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            MultiTask(**{**FAST, "epochs": 1}).fit(**kwargs)
    with pytest.raises(ValueError, match=r"^The 'weighting' parameter of MultiTask must be a str among .* Got 'sum'"):
        MultiTask(weighting="sum").fit({"a": (X, y)})


def test_relative_change_matches_its_formula():
    multi, single = {"a": 0.9, "b": 2.0, "c": -1.5}, {"a": 0.8, "b": 2.4, "c": -2.0}
    # b: lower is better, so a fall is a gain; c: a negative reference counts by its size
    expected = 100 * ((0.9 - 0.8) / 0.8 - (2.0 - 2.4) / 2.4 + (-1.5 + 2.0) / 2.0) / 3
    assert relative_change(multi, single, lower_is_better={"b"}) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"^the tasks differ: multitask \['a'\] vs single-task \['a', 'b', 'c'\].$"):
        relative_change({"a": 1.0}, single)
    with pytest.raises(ValueError, match=r"^task 'a': the single-task metric is 0; the relative change is undefined.$"):
        relative_change({"a": 1.0}, {"a": 0.0})
    assert relative_change({"a": 2.0}, {"a": 1.0}) == pytest.approx(100.0)


def test_balanced_sampling_puts_a_scarce_task_in_every_batch_as_often_as_the_others():
    tasks, _ = _related_tasks(n_small=12, n_large=400)
    seen = {}
    for sampling in ("proportional", "balanced"):
        model = MultiTask(**{**FAST, "epochs": 1}, sampling=sampling).fit(tasks)
        seen[sampling] = model.history_[0]["tasks_in_batch"]  # tasks present per batch, averaged
    # proportional: the 12-sample task is in few of the 64-sample batches; balanced: in all of them
    assert seen["balanced"] == pytest.approx(2.0)
    assert seen["proportional"] < 1.9
    with pytest.raises(ValueError, match="'sampling' parameter of MultiTask .* Got 'uniform'"):
        MultiTask(sampling="uniform").fit(tasks)


def test_uncertainty_weights_are_learnt_by_their_gradient():
    """d/ds (c e^-s L + s/2) = -c e^-s L + 1/2: the log-variances move (held constant, they would not)."""
    w = TaskWeighting(["classification", "regression"], "uncertainty")
    with torch.no_grad():
        w.log_var.copy_(torch.tensor([0.3, -0.7]))
    total, _ = w(torch.tensor([1.2, 0.4]), torch.tensor([True, True]), 0.0)
    total.backward()
    s, c, loss = np.array([0.3, -0.7]), np.array([1.0, 0.5]), np.array([1.2, 0.4])
    np.testing.assert_allclose(w.log_var.grad.numpy(), -c * np.exp(-s) * loss + 0.5, rtol=1e-5)


def test_gradnorm_target_follows_alpha():
    """Once the loss ratios differ, the target G r^alpha depends on alpha: with alpha = 0 the task with the
    larger gradient is pushed down; with alpha = 1.5 the task that has learnt less (task 1) is held up."""

    def theta_grad(alpha):
        torch.manual_seed(0)
        W = torch.nn.Parameter(torch.randn(3, 3))
        x = torch.randn(8, 3)
        w = TaskWeighting(["regression"] * 2, "gradnorm", alpha=alpha)
        for scale in (1.0, torch.tensor([0.2, 1.0])):  # the first call records L(0); then task 0 has learnt more
            h = x @ W.T
            losses = torch.stack([h.abs().mean(), 3 * h.pow(2).mean()]) * scale  # task 1: the larger gradient
            w.theta.grad = None
            total, _ = w(losses, torch.tensor([True, True]), 0.0, shared=W)
            total.backward()
        return w.theta.grad.clone()

    flat, asymmetric = theta_grad(0.0), theta_grad(1.5)
    assert flat[1] > 0 > flat[0]  # descending theta: task 1's weight goes down (its gradient is the larger)
    assert asymmetric[1] < 0 < asymmetric[0]  # task 1 has learnt less: its weight goes up


def _gradnorm_after_a_step(alpha: float, theta: list[float]):
    """GradNorm's second call: L_t(0) recorded by the first, then losses and theta moved."""
    torch.manual_seed(0)
    W = torch.nn.Parameter(torch.randn(3, 3))
    x = torch.randn(8, 3)
    scales = torch.tensor([4.0, 0.3, 1.0])

    def losses():
        h = x @ W.T
        return torch.stack([h.pow(2).mean() * scales[0], h.abs().mean() * scales[1], h[:, 0].pow(2).mean() * scales[2]])

    w = TaskWeighting(["regression"] * 3, "gradnorm", alpha=alpha)
    present = torch.tensor([True, True, True])
    first = losses()
    w(first, present, 0.0, shared=W)
    with torch.no_grad():
        W.mul_(0.5).add_(0.1)
        w.theta.copy_(torch.tensor(theta))
    now = losses()
    norms = np.array([torch.autograd.grad(now[t], W, retain_graph=True)[0].norm().item() for t in range(3)])
    total, weights = w(now, present, 0.5, shared=W)
    return w, total, weights, first.detach().numpy(), now.detach().numpy(), norms


@pytest.mark.parametrize("alpha", [0.5, 1.5])
def test_gradnorm_descends_the_papers_gradient_loss_in_numpy(alpha):
    theta = np.array([0.3, -0.2, 0.1])
    w, total, weights, first, now, norms = _gradnorm_after_a_step(alpha, theta.tolist())
    total.backward()
    s = np.exp(theta) / np.exp(theta).sum()
    wt = 3 * s  # w_t = T softmax(theta)_t
    G = wt * norms  # G_t = |grad_W (w_t L_t)|
    ratio = now / first
    target = G.mean() * (ratio / ratio.mean()) ** alpha  # held constant (no gradient)
    # dL_grad/dtheta_j = sum_t sign(G_t - target_t) |grad L_t| dw_t/dtheta_j, dw_t/dtheta_j = T s_t (delta_tj - s_j)
    dw = 3 * (np.diag(s) - np.outer(s, s))
    expected = (np.sign(G - target) * norms) @ dw
    np.testing.assert_allclose(w.theta.grad.numpy(), expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(weights.numpy(), wt, rtol=1e-6)
    assert total.item() == pytest.approx(float(wt @ now), rel=1e-6)  # the value: the weighted losses alone


def test_gradnorm_in_eval_mode_only_weights():
    torch.manual_seed(0)
    W = torch.nn.Parameter(torch.randn(3, 3))
    w = TaskWeighting(["regression"] * 2, "gradnorm").eval()
    losses = torch.stack([(W**2).sum(), W.abs().sum()])
    total, _ = w(losses, torch.tensor([True, True]), 0.0, shared=W)
    total.backward()
    assert w.theta.grad is None and torch.equal(w.initial_loss, torch.zeros(2))
    with pytest.raises(ValueError, match=r"^GradNorm needs the last shared layer's weight \(shared=\.\.\.\)\.$"):
        w.train()(losses, torch.tensor([True, True]), 0.0)


def _pcgrad_numpy(g: np.ndarray, orders: list[list[int]]) -> np.ndarray:
    projected = g.copy()
    for t, order in enumerate(orders):
        for k in order:
            if k != t and projected[t] @ g[k] < 0:
                projected[t] = projected[t] - (projected[t] @ g[k]) / (g[k] @ g[k]) * g[k]
    return projected.sum(0)


def test_pcgrad_with_a_task_that_misses_a_shared_parameter_small_gradients_and_mild_agreement():
    p1, p2 = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a, b, c = np.array([0.1, 0.0]), np.array([-0.1, 0.1]), np.array([0.05])
    losses = [
        (p1 * torch.tensor(a, dtype=torch.float32)).sum(),  # p2 unused by this task
        (p1 * torch.tensor(b, dtype=torch.float32)).sum() + (p2 * torch.tensor(c, dtype=torch.float32)).sum(),
    ]
    grads = torch.autograd.grad(sum(losses) + pcgrad(losses, [p1, p2]), [p1, p2])
    g = np.array([np.r_[a, 0.0], np.r_[b, c]])  # |g|^2 well under 1: the projection divides by it as it is
    np.testing.assert_allclose(np.concatenate([x.numpy() for x in grads]), _pcgrad_numpy(g, [[1], [0]]), rtol=1e-5)
    mild = [(p1 * torch.tensor([0.5, 0.0])).sum(), (p1 * torch.tensor([0.5, 1.0])).sum()]  # g1 . g2 = 0.25 > 0
    (grad,) = torch.autograd.grad(sum(mild) + pcgrad(mild, [p1]), [p1])
    np.testing.assert_allclose(grad.numpy(), [1.0, 1.0])  # no conflict: the plain sum
    one = pcgrad([(p1 * torch.tensor([0.5, 0.0])).sum()], [p1])
    assert torch.is_tensor(one) and one.shape == () and one.item() == 0.0


def test_pcgrad_visits_the_other_tasks_in_the_generators_order():
    p = torch.nn.Parameter(torch.zeros(3))
    g = np.array([[0.1, -0.1, 0.6], [0.1, -0.5, 0.4], [1.3, 0.9, -0.7], [-1.3, -0.6, 0.0]])  # the order matters
    losses = [(p * torch.tensor(row, dtype=torch.float32)).sum() for row in g]
    replay = torch.Generator().manual_seed(7)
    orders = [torch.randperm(4, generator=replay).tolist() for _ in range(4)]
    torch.manual_seed(123)  # the global generator would draw other orders
    (grad,) = torch.autograd.grad(sum(losses) + pcgrad(losses, [p], torch.Generator().manual_seed(7)), [p])
    np.testing.assert_allclose(grad.numpy(), _pcgrad_numpy(g, orders), rtol=1e-5)


def test_uncertainty_and_gradnorm_weights_and_an_absent_task():
    w = TaskWeighting(["classification", "regression", "classification"], "uncertainty")
    s = np.array([0.3, -0.7, 0.2])
    with torch.no_grad():
        w.log_var.copy_(torch.tensor(s))
    c = np.array([1.0, 0.5, 1.0])
    np.testing.assert_allclose(w.weights().numpy(), c * np.exp(-s), rtol=1e-6)  # c_t / sigma_t^2
    total, _ = w(torch.tensor([1.2, 0.0, 0.4]), torch.tensor([True, False, True]), 0.0)
    expected = np.exp(-0.3) * 1.2 + 0.5 * 0.3 + np.exp(-0.2) * 0.4 + 0.5 * 0.2  # the absent task adds nothing
    assert total.item() == pytest.approx(expected, rel=1e-6)
    g = TaskWeighting(["regression"] * 3, "gradnorm")
    with torch.no_grad():
        g.theta.copy_(torch.tensor([0.5, -0.5, 0.0]))
    e = np.exp([0.5, -0.5, 0.0])
    np.testing.assert_allclose(g.weights().numpy(), 3 * e / e.sum(), rtol=1e-6)


def test_task_weighting_defaults_and_an_unknown_weighting():
    w = TaskWeighting(["classification"])
    assert (w.method, w.epochs, w.temperature, w.alpha) == ("equal", 1, 2.0, 1.5)  # DWA's tau 2, GradNorm's 1.5
    with pytest.raises(
        ValueError, match=r"^weighting='dwb'; expected one of \('equal', 'uncertainty', 'dwa', 'gradnorm'\)\.$"
    ):
        TaskWeighting(["classification"], "dwb")


def test_pcgrad_term_is_zero_in_value_and_splits_the_gradient_by_parameter():
    torch.manual_seed(0)
    shared = [
        torch.nn.Parameter(torch.randn(2)),
        torch.nn.Parameter(torch.randn(1)),
        torch.nn.Parameter(torch.randn(3)),
    ]
    rows = np.array([[1.0, 0.0, 0.5, 0.2, -0.1, 0.3], [-1.0, 0.4, -0.5, 0.1, 0.2, -0.6]])
    flat = lambda: torch.cat([p.flatten() for p in shared])  # noqa: E731
    losses = [(flat() * torch.tensor(r, dtype=torch.float32)).sum() for r in rows]
    extra = pcgrad(losses, shared)
    assert extra.item() == 0.0  # at non-zero parameters too
    grads = torch.autograd.grad(sum(losses) + extra, shared)
    np.testing.assert_allclose(torch.cat(grads).numpy(), _pcgrad_numpy(rows, [[1], [0]]), rtol=1e-5)


def _mixed_tasks(seed=0):
    rng = np.random.default_rng(seed)
    Xa = rng.standard_normal((120, 3)).astype(np.float32)
    Xb = rng.standard_normal((100, 5)).astype(np.float32)
    Xc = rng.standard_normal((90, 3)).astype(np.float32)
    tasks = {
        "cls": (Xa, np.where(Xa[:, 0] > 0, "yes", "no")),
        "reg": (Xb, 5 + 2 * Xb[:, 1]),
        "three": (Xc, np.digitize(Xc[:, 2], [-0.5, 0.5])),
    }
    kinds = {"cls": "classification", "reg": "regression", "three": "classification"}
    return tasks, kinds, {"cls": "a", "reg": "b", "three": "a"}


def test_a_saved_multitask_model_predicts_as_before(tmp_path):
    from transferkit import load

    tasks, kinds, groups = _mixed_tasks()
    model = MultiTask(**{**FAST, "epochs": 3}).fit(tasks, kinds=kinds, groups=groups)
    loaded = load(model.save(tmp_path / "mt"))
    for t, (X, _) in tasks.items():
        np.testing.assert_array_equal(loaded.predict(X, t), model.predict(X, t))
    np.testing.assert_array_equal(
        loaded.predict_proba(tasks["three"][0], "three"), model.predict_proba(tasks["three"][0], "three")
    )
    assert model._rebuild_module("objective_") is None


def test_predict_proba_is_the_softmax_of_the_tasks_head_even_for_large_logits():
    tasks, kinds, groups = _mixed_tasks()
    model = MultiTask(**{**FAST, "epochs": 2}).fit(tasks, kinds=kinds, groups=groups)
    X = tasks["three"][0]
    with torch.no_grad():
        model.model_.heads["three"].weight.mul_(300.0)  # logits in the hundreds: exp would overflow unshifted
        logits = model.model_(torch.from_numpy(X), "three").double()
    p = model.predict_proba(X, "three")
    np.testing.assert_allclose(p, torch.softmax(logits, 1).numpy(), rtol=1e-4, atol=1e-7)
    assert p.shape == (90, 3) and np.all(np.isfinite(p))
    assert list(model.classes_["three"]) == [0, 1, 2] and set(model.predict(tasks["cls"][0], "cls")) <= {"no", "yes"}
    with pytest.raises(ValueError, match=r"^task 'reg' is a regression; predict_proba is for classification tasks.$"):
        model.predict_proba(tasks["reg"][0], "reg")


def test_multitask_messages_in_full_and_defaults():
    from sklearn.exceptions import NotFittedError

    tasks, kinds, groups = _mixed_tasks()
    X, y = tasks["cls"]
    with pytest.raises(NotFittedError, match=r"^this MultiTask is not fitted yet; call fit\(tasks\) first.$"):
        MultiTask().predict(X, "cls")
    model = MultiTask(**{**FAST, "epochs": 1}).fit(tasks, kinds=kinds, groups=groups)
    with pytest.raises(ValueError, match=r"^X has 5 features; task 'cls' was fitted on 3.$"):
        model.predict(tasks["reg"][0], "cls")
    with pytest.raises(
        ValueError, match=r"^X has shape \(120, 3, 1\); expected a 2-D array \(n_samples, n_features\).$"
    ):
        model.predict(X[:, :, None], "cls")
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^X "):
        model.predict(bad, "cls")
    with pytest.raises(ValueError, match=r"^y has 119 labels but X has 120 samples; expected one per sample.$"):
        model.score(X, y[:-1], "cls")
    with pytest.raises(ValueError, match=r"^y is constant \(5.0\); R\^2 needs targets that vary.$"):
        model.score(tasks["reg"][0], np.full(100, 5.0), "reg")
    assert MultiTask().get_params() == dict(
        hidden=(64, 32), weighting="equal", pcgrad=False, sampling="proportional", temperature=2.0, alpha=1.5,
        epochs=50, batch_size=128, lr=1e-3, weight_decay=0.0, seed=0, device="auto", n_threads=None,
        precision="float32", checkpoint_dir=None, verbose=False,
    )  # fmt: skip


def test_every_setting_reaches_the_weighting_the_objective_and_the_training(tmp_path, monkeypatch):
    import transferkit.methods.multitask as multitask
    from transferkit.methods.base import fit_identity

    tasks, kinds, groups = _mixed_tasks()
    seen, real = [], multitask.fit_loop

    def recording(objective, arrays, arrays_t, config, **kw):
        seen.append((arrays, config))
        return real(objective, arrays, arrays_t, config, **kw)

    monkeypatch.setattr(multitask, "fit_loop", recording)
    settings = dict(epochs=2, batch_size=50, lr=0.02, weight_decay=0.1, seed=3, n_threads=1)
    model = MultiTask(
        hidden=(8, 4), weighting="dwa", temperature=3.0, alpha=0.7, pcgrad=True, verbose=True,
        checkpoint_dir=str(tmp_path), **settings,
    ).fit(tasks, kinds=kinds, groups=groups)  # fmt: skip
    w = model.objective_.weighting
    assert (w.method, w.epochs, w.temperature, w.alpha) == ("dwa", 2, 3.0, 0.7)
    assert model.objective_.use_pcgrad is True
    ((arrays, config),) = seen
    assert {k: getattr(config, k) for k in settings} == settings
    assert (config.checkpoint_dir, config.progress, config.desc) == (str(tmp_path), True, "multitask")
    assert config.identity == fit_identity(model)
    assert 0 < model.fit_seconds_ < 60
    seen.clear()
    MultiTask(**{**FAST, "epochs": 1, "batch_size": 10_000}).fit(tasks, kinds=kinds, groups=groups)
    assert seen[0][1].batch_size == 310  # never more than all the rows
    assert seen[0][1].progress is False  # quiet unless verbose


def test_balanced_sampling_fills_every_task_to_the_largest_and_repeats_with_the_seed(monkeypatch):
    import transferkit.methods.multitask as multitask

    tasks, kinds, groups = _mixed_tasks()
    seen, real = [], multitask.fit_loop
    monkeypatch.setattr(
        multitask, "fit_loop", lambda o, arrays, t, c, **kw: seen.append(arrays) or real(o, arrays, t, c, **kw)
    )
    fits = [
        MultiTask(**{**FAST, "epochs": 2}, sampling="balanced").fit(tasks, kinds=kinds, groups=groups) for _ in range(2)
    ]
    assert np.bincount(seen[0]["task"]).tolist() == [120, 120, 120]
    np.testing.assert_array_equal(seen[0]["x"], seen[1]["x"])  # the resampled rows follow the seed
    X = tasks["reg"][0]
    np.testing.assert_array_equal(fits[0].predict(X, "reg"), fits[1].predict(X, "reg"))


def test_regression_targets_are_standardised_and_a_constant_target_is_kept():
    tasks, kinds, groups = _mixed_tasks()
    model = MultiTask(**{**FAST, "epochs": 1}).fit(tasks, kinds=kinds, groups=groups)
    y = tasks["reg"][1]
    assert model.target_scale_["reg"] == (pytest.approx(y.mean()), pytest.approx(y.std()))
    flat = {**tasks, "reg": (tasks["reg"][0], np.full(100, 7.0))}
    model = MultiTask(**{**FAST, "epochs": 20}).fit(flat, kinds=kinds, groups=groups)
    assert model.target_scale_["reg"] == (7.0, 1.0)  # no spread: the unit scale, never a division by zero
    np.testing.assert_allclose(model.predict(flat["reg"][0], "reg"), 7.0, atol=0.05)


def test_hidden_widths_and_task_names_with_dots():
    X = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    for bad in ((8, 0), ()):
        with pytest.raises(
            ValueError, match=rf"^hidden={re.escape(repr(bad))}; expected one or more positive widths.$"
        ):
            MultiTask(hidden=bad, epochs=1).fit({"a": (X, y)})
    model = MultiTask(hidden=1, epochs=1).fit({"file.csv": (X, y), "b": (X, 1 - y)})  # one space: its layer is shared
    with pytest.raises(
        ValueError,
        match=r"^hidden=\(8,\) is the input layers alone, and the tasks come in 2 input spaces, so no layer would be "
        r"shared; give hidden a second width for the shared middle.$",
    ):
        MultiTask(hidden=(8,), epochs=1).fit({"a": (X, y), "b": (X, y)}, groups={"a": "one", "b": "two"})
    assert model.predict(X, "file.csv").shape == (40,)
    assert model.model_.inputs["input"][0].out_features == 1


def test_the_objective_projects_conflicting_gradients_only_with_pcgrad_and_in_training():
    torch.manual_seed(0)
    net = MultiTaskNet({"input": 4}, (6, 5), {"up": 1, "down": 1}, {"up": "input", "down": "input"})
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 4, generator=g)
    z = x[:, 0]
    batch = {"x": torch.cat([x, x]), "task": torch.tensor([0] * 8 + [1] * 8), "y": torch.cat([z, -z])}
    shared = net.shared_parameters()

    def gradient(use_pcgrad, training=True):
        obj = MultiTaskObjective(net, ["up", "down"], ["regression"] * 2, [4, 4], TaskWeighting(["r", "r"]), use_pcgrad)
        obj.train(training)
        losses, _ = obj.task_losses(batch)
        per_task = [
            torch.cat([t.flatten() for t in torch.autograd.grad(losses[k], shared, retain_graph=True)]).numpy()
            for k in range(2)
        ]
        total = torch.cat([t.flatten() for t in torch.autograd.grad(obj(batch, 0.0)["loss"], shared)]).numpy()
        return per_task, total

    (ga, gb), plain = gradient(False)
    assert ga @ gb < 0  # opposite targets: the tasks pull the shared layers apart
    np.testing.assert_allclose(plain, ga + gb, rtol=1e-5, atol=1e-7)
    _, projected = gradient(True)
    pa = ga - (ga @ gb) / (gb @ gb) * gb
    pb = gb - (gb @ ga) / (ga @ ga) * ga
    np.testing.assert_allclose(projected, pa + pb, rtol=1e-4, atol=1e-6)
    _, evaluated = gradient(True, training=False)
    np.testing.assert_allclose(evaluated, ga + gb, rtol=1e-5, atol=1e-7)


def test_the_network_is_input_layer_shared_middle_and_head_in_numpy():
    """f_t(x) = h_t(relu(W_2 relu(W_1 relu(U_g x + c_g) + b_1) + b_2)) for hidden (6, 5, 4)."""
    torch.manual_seed(0)
    net = MultiTaskNet({"a": 3, "b": 2}, (6, 5, 4), {"s": 3, "t": 1}, {"s": "a", "t": "b"})
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    p = {k: v.detach().numpy().astype(np.float64) for k, v in net.state_dict().items()}
    for task, group, d in (("s", "a", 3), ("t", "b", 2)):
        x = np.random.default_rng(1).standard_normal((7, d))
        h = relu(x @ p[f"inputs.{group}.0.weight"].T + p[f"inputs.{group}.0.bias"])
        h = relu(h @ p["shared.0.weight"].T + p["shared.0.bias"])
        h = relu(h @ p["shared.2.weight"].T + p["shared.2.bias"])
        expected = h @ p[f"heads.{task}.weight"].T + p[f"heads.{task}.bias"]
        out = net(torch.from_numpy(x).float(), task).detach().numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # a batch of the second input space alone: the first space's layer is skipped, the second's still runs
    obj = MultiTaskObjective(
        net, ["s", "t"], ["classification", "regression"], [3, 2], TaskWeighting(["c", "r"]), False
    )
    xb = np.random.default_rng(2).standard_normal((5, 3))  # zero-padded to the widest space
    xb[:, 2] = 0.0
    yb = np.arange(5.0)
    losses, present = obj.task_losses(
        {"x": torch.from_numpy(xb).float(), "task": torch.ones(5, dtype=torch.long), "y": torch.from_numpy(yb).float()}
    )
    pred = net(torch.from_numpy(xb[:, :2]).float(), "t").detach().numpy()[:, 0]
    assert present.tolist() == [False, True] and losses[0].item() == 0.0
    assert losses[1].item() == pytest.approx(np.mean((pred - yb) ** 2), rel=1e-5)
    assert net.last_shared_weight() is net.shared[2].weight
    assert len(net.shared_parameters()) == 4  # the middle only: each input space has its own layer
    one = MultiTaskNet({"input": 3}, (6,), {"s": 2}, {"s": "input"})
    assert one.last_shared_weight() is one.inputs["input"][0].weight and len(one.shared_parameters()) == 2


def test_task_tables_and_labels_are_checked_in_full():
    X = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    y = np.arange(20) % 2
    fit = MultiTask(**{**FAST, "epochs": 1}).fit
    cases = [
        (dict(tasks=[(X, y)]), r"^tasks=list; expected a non-empty dict of task name -> \(X, y\).$"),
        (dict(tasks={"a": (X, y)}, kinds={}), r"^kinds must name every task once: missing \['a'\], unknown \[\].$"),
        (dict(tasks={"a": (X, y)}, groups={"a": "g", "b": "g"}), r"^groups must name every task once: missing \[\], "),
        (dict(tasks={"a": [X, y]}), r"^tasks\['a'\] is list; expected a tuple \(X, y\).$"),
        (dict(tasks={"a": (X, y, y)}), r"^tasks\['a'\] is tuple; expected a tuple \(X, y\).$"),
        (dict(tasks={"a": (X[:, :, None], y)}), r"^tasks\['a'\] X has shape \(20, 3, 1\); expected a 2-D array"),
        (dict(tasks={"a": (np.where(X > 1, np.nan, X), y)}), r"^tasks\['a'\] X "),
        (
            dict(tasks={"a": (X, y[:5])}),
            r"^tasks\['a'\] y has shape \(5,\); expected \(20,\), one label per row of X.$",
        ),
        (dict(tasks={"a": (X, y)}, kinds={"a": "ranking"}), r"^kinds\['a'\]='ranking'; expected one of \("),
        (
            dict(tasks={"a": (X, y + np.r_[0.5, 0.5, 0.5, np.zeros(16), 0.25])}),
            r"^tasks\['a'\] is a classification task, but its labels are not whole numbers \(e.g. \[0.5, 1.5, 0.5\]\); "
            r"declare kinds\['a'\]='regression'.$",
        ),
        (
            dict(tasks={"a": (X, np.full(20, 3))}),
            r"^tasks\['a'\] y has a single class \(\[3\]\); expected two or more.$",
        ),
        (
            dict(tasks={"a": (X, np.array(list("abcd") * 5))}, kinds={"a": "regression"}),
            r"^tasks\['a'\] is a regression task, but its labels are <U1 \(e.g. \['a', 'b', 'c'\]\); expected numbers",
        ),
        (
            dict(tasks={"a": (X, np.r_[np.inf, np.ones(19)])}, kinds={"a": "regression"}),
            r"^tasks\['a'\] y has NaN or infinite values; expected finite regression targets.$",
        ),
        (
            dict(tasks={"a": (X, y), "b": (X[:, :2], y)}),
            r"^tasks\['b'\] has 2 features, other tasks of input space 'input' have 3; give it its own input space in "
            r"groups=.$",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            fit(**kwargs)
