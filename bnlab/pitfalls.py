"""The classic batch-norm bugs of PyTorch and Keras code, each reproduced with bnlab.

Small simulations behind ``notebooks/11_frameworks_and_pitfalls.ipynb``. Each
runs batch normalization on synthetic batches of one feature with known true
statistics, once the way the buggy code does and once the way the fixed code
does, and returns the arrays in which the symptom shows:

- :func:`eval_mode_experiment`: validation run in training mode (outputs
  depend on the batch, the running statistics move); fix: evaluation mode.
- :func:`batch_of_one_experiment`: the last batch of an epoch holds one
  sample, which training-mode BN refuses; fix: ``drop_last=True`` (or
  evaluation mode for that batch).
- :func:`frozen_bn_experiment`: ``requires_grad_(False)`` "freezes" BN, yet
  training mode still moves its running statistics; fix: ``bn.eval()``
  (PyTorch), ``trainable=False`` (Keras 3).
- :func:`momentum_mixup_experiment`: a momentum copied between frameworks
  unconverted, noisy (weight 0.9) or lagging (weight 0.01); fix:
  :func:`bnlab.translate`.
- :func:`recalibration_experiment`: the exponential running average lags
  behind weights that changed during training; fix: reset, then a
  cumulative average (``momentum=None`` / ``"cumulative"``).
- :func:`device_stats_experiment`: under data parallelism each device
  normalizes with its own small batch; fix: SyncBatchNorm.

Every function is deterministic given ``seed`` and takes a few milliseconds,
so an explorer can call it on every slider move (:func:`pitfall_experiment`
calls one by name). BN before or after the activation needs training and lives
in :func:`bnlab.train.bn_position_experiment`.

Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .core import batch_stats, normalize, update_running_stats
from .layers import BatchNorm
from .running import track_running_stats

__all__ = [
    "PITFALLS",
    "PRETRAINED",
    "eval_mode_experiment",
    "batch_of_one_experiment",
    "frozen_bn_experiment",
    "momentum_mixup_experiment",
    "recalibration_experiment",
    "device_stats_experiment",
    "pitfall_experiment",
]

#: The pitfalls :func:`pitfall_experiment` knows, by name, with a one-line title.
PITFALLS = {
    "eval_in_train_mode": "evaluating in training mode",
    "batch_of_one": "a batch of one in training mode",
    "frozen_bn": "a \"frozen\" BN that still moves",
    "momentum_mixup": "the momentum mix-up",
    "recalibration": "running statistics that lag behind training",
    "per_device": "per-device statistics under data parallelism",
}


#: The PyTorch layer the experiments model: ``BatchNorm1d(1)`` with its defaults.
_MOMENTUM, _EPS = 0.1, 1e-5


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _training_batch_size(batch_size, what="batch_size"):
    batch_size = _int(what, batch_size, 1)
    if batch_size < 2:
        raise ValueError(
            f"{what}=1: a training-mode BN layer refuses a batch of one value per feature (PyTorch: "
            "\"Expected more than 1 value per channel when training\"); use at least 2"
        )
    return batch_size


def _seed(seed):
    return _int("seed", seed, 0)


def eval_mode_experiment(*, batch_size=8, passes=30, train_steps=200, seed=0):
    """Validation passes in training mode (the bug) or evaluation mode (the fix).

    A PyTorch-convention BN layer (momentum 0.1, eps 1e-5, gamma 1, beta 0)
    is trained on ``train_steps`` batches of 32 from N(2, 1.5²). Then, in
    training mode (the bug) and, from the same trained state, in evaluation
    mode (the fix):

    - sample 0 (the value 1.0, whatever the seed) goes through it in
      ``passes`` batches of ``batch_size``, each time with other companions
      from a validation set;
    - a validation loop runs ``passes`` consecutive batches of the
      validation set through it, one after the other.

    Everything is computed at once from the batches' statistics: the same
    numbers ``BatchNorm.forward`` gives pass by pass (the tests check it).

    Parameters
    ----------
    batch_size : int >= 2, default 8
        Validation batch size.
    passes : int, default 30
    train_steps : int, default 200
    seed : int, default 0

    Returns
    -------
    dict
        ``"train_outputs"``, ``"eval_outputs"``: shape (passes,), BN's output
        for sample 0 in each of its batches; ``"train_running_mean"``,
        ``"eval_running_mean"``: shape (passes + 1,), the running mean before
        and after each batch of the validation loop; ``"train_batches_tracked"``,
        ``"eval_batches_tracked"``: the layers' batch counts afterwards;
        ``"trained_batches_tracked"``: the count after training;
        ``"trained_running_mean"``, ``"trained_running_var"``: shape (1,), the
        layer's statistics after training; ``"probe_batches"``,
        ``"loop_batches"``: shape (passes, batch_size, 1), the batches holding
        sample 0 (first row) and those of the validation loop; ``"sample"``:
        sample 0's value; ``"true_mean"``, ``"true_std"``; ``"config"``.

    Notes
    -----
    In training mode sample 0 is normalized with the statistics of whatever
    batch it is in, so its output changes from batch to batch, and every
    pass updates the running statistics with validation data (pytorch#5406,
    vision#2079). In evaluation mode the output is the same in every batch
    and nothing in the layer changes.
    """
    batch_size = _training_batch_size(batch_size)
    passes = _int("passes", passes, 1)
    train_steps = _int("train_steps", train_steps, 1)
    rng = np.random.default_rng(_seed(seed))
    true_mean, true_std = 2.0, 1.5
    trained = track_running_stats(rng.normal(true_mean, true_std, size=(train_steps, 32, 1)), "pytorch")
    running_mean, running_var = trained["mean"][-1], trained["var"][-1]
    pool = rng.normal(true_mean, true_std, size=(4000, 1))
    if batch_size * passes > len(pool) - 1:
        raise ValueError(f"batch_size * passes must be at most {len(pool) - 1}, got {batch_size * passes}")
    # sample 0: the value 1.0 (two thirds of a standard deviation below the mean), the same for every
    # seed, in `passes` different batches: the same input, other companions each time
    sample, others = np.array([[1.0]]), pool[1:]
    probes = np.stack([np.vstack([sample, others[rng.choice(len(others), batch_size - 1, replace=False)]])
                       for _ in range(passes)])  # (passes, batch_size, 1)
    # a validation loop: `passes` consecutive batches of the validation set
    loop = others[:batch_size * passes].reshape(passes, batch_size, 1)
    # training mode: each batch normalized with its own statistics, which also update the running ones
    probe_mean, probe_var = batch_stats(probes, axis=1)  # (passes, 1) each
    train_outputs = normalize(probes, probe_mean, probe_var, eps=_EPS, axis=1)[:, 0, 0]
    means, mean, var = [running_mean[0]], running_mean, running_var
    for bm, bv in zip(*batch_stats(loop, axis=1)):
        mean, var = update_running_stats(mean, var, bm, bv, _MOMENTUM, convention="pytorch", n=batch_size)
        means.append(mean[0])
    # evaluation mode: the running statistics, untouched
    eval_outputs = normalize(probes[:, 0], running_mean, running_var, eps=_EPS)[:, 0]
    return {"train_outputs": train_outputs, "eval_outputs": eval_outputs,
            "train_running_mean": np.array(means), "eval_running_mean": np.full(passes + 1, running_mean[0]),
            "train_batches_tracked": train_steps + passes, "eval_batches_tracked": train_steps,
            "trained_batches_tracked": train_steps, "trained_running_mean": running_mean.copy(),
            "trained_running_var": running_var.copy(), "probe_batches": probes, "loop_batches": loop,
            "sample": float(sample[0, 0]), "true_mean": true_mean, "true_std": true_std,
            "config": dict(batch_size=batch_size, passes=passes, train_steps=train_steps, seed=seed)}


def batch_of_one_experiment(*, num_samples=97, batch_size=32, channels=8, seed=0):
    """One epoch over a data set whose last batch may hold a single sample.

    The inputs are ``(n, channels, 1, 1)`` feature maps (what global average
    pooling leaves) cut as a data loader cuts them: consecutive batches of
    ``batch_size``, the last one holding what is left. Each distinct batch
    shape goes through a PyTorch-convention BN layer in training mode
    (whether a batch is refused depends only on its shape).

    Parameters
    ----------
    num_samples : int, default 97
    batch_size : int, default 32
        With 97 samples: 32, 32, 32 and a batch of one.
    channels : int, default 8
    seed : int, default 0

    Returns
    -------
    dict
        ``"batch_sizes"``: ndarray of int, every batch of the epoch;
        ``"refused"``: indices of the batches the layer refuses in training
        mode; ``"message"``: bnlab's refusal (None if nothing is refused);
        ``"kept"``: bool per batch, True where ``drop_last=True`` keeps it
        (complete batches); ``"dropped_samples"``: samples ``drop_last``
        leaves out; ``"eval_output_shape"``: the shape evaluation mode returns
        for the last batch (it accepts a batch of one); ``"config"``.

    Notes
    -----
    PyTorch raises "Expected more than 1 value per channel when training"
    when a channel has one value in the batch: an ``(1, C)`` input, or a
    ``(1, C, 1, 1)`` map after global pooling (pytorch#4534, fastai#1352).
    bnlab refuses it too, with a message that names the fixes.
    """
    num_samples = _int("num_samples", num_samples, 1)
    batch_size = _int("batch_size", batch_size, 1)
    channels = _int("channels", channels, 1)
    rng = np.random.default_rng(_seed(seed))
    features = rng.normal(size=(num_samples, channels, 1, 1))
    starts = range(0, num_samples, batch_size)
    sizes = np.array([min(batch_size, num_samples - start) for start in starts])
    bn = BatchNorm(channels, convention="pytorch", axis=(0, 2, 3))
    refusals = {}
    for size, start in zip(sizes, starts):
        if int(size) not in refusals:
            try:
                bn.forward(features[start:start + size], training=True)
                refusals[int(size)] = None
            except ValueError as exc:
                refusals[int(size)] = str(exc)
    refused = np.array([i for i, size in enumerate(sizes) if refusals[int(size)] is not None], dtype=int)
    kept = sizes == batch_size
    return {"batch_sizes": sizes, "refused": refused,
            "message": refusals[int(sizes[refused[0]])] if refused.size else None, "kept": kept,
            "dropped_samples": int(sizes[~kept].sum()),
            "eval_output_shape": bn.forward(features[starts[-1]:], training=False).shape,
            "config": dict(num_samples=num_samples, batch_size=batch_size, channels=channels, seed=seed)}


#: What the "pretrained" layer of :func:`frozen_bn_experiment` learned on the original data, N(0, 1).
PRETRAINED = {"running_mean": 0.0, "running_var": 1.0, "gamma": 1.5, "beta": 0.5}


def frozen_bn_experiment(*, batch_size=16, steps=100, new_mean=1.5, new_std=2.0, seed=0):
    """Fine-tuning with a "frozen" BN layer, PyTorch's way and Keras 3's.

    A BN layer pretrained on data from N(0, 1) (:data:`PRETRAINED`: running
    mean 0, variance 1, gamma 1.5, beta 0.5) is frozen and then runs
    ``steps`` fine-tuning batches from N(``new_mean``, ``new_std``²). Four
    variants (PyTorch's momentum 0.1, Keras' 0.9: the same batch weight):

    - ``"pytorch_frozen"``: PyTorch's ``requires_grad_(False)`` on weight and
      bias, forward in training mode (``model.train()``), bnlab's
      ``BatchNorm(convention="pytorch")`` with ``trainable=False``: the bug;
    - ``"pytorch_eval"``: the same plus ``bn.eval()`` (``training=False``): the fix;
    - ``"keras_frozen"``: Keras 3's ``trainable=False``, bnlab's
      ``BatchNorm(convention="keras")`` with ``trainable=False``: inference
      mode even in training;
    - ``"keras2_frozen"``: Keras 2's ``trainable=False``, which froze gamma
      and beta but let training update the moving statistics (keras#4762).

    The running statistics are computed for all steps at once, the numbers
    ``BatchNorm.forward`` gives step by step (the tests check it).

    Parameters
    ----------
    batch_size : int >= 2, default 16
    steps : int, default 100
    new_mean, new_std : float, default 1.5, 2.0
        The fine-tuning data.
    seed : int, default 0

    Returns
    -------
    dict
        ``"running_mean"``, ``"running_var"``: dict variant -> shape (steps + 1,);
        ``"eval_change"``: dict variant -> largest change of the
        evaluation-mode output on 200 samples of the original data after
        fine-tuning (gamma and beta are frozen, so only the statistics can
        change it); ``"pretrained"``; ``"batches"``: shape (steps, batch_size,
        1), the fine-tuning batches; ``"new_mean"``, ``"new_var"``; ``"config"``.

    Notes
    -----
    ``requires_grad_(False)`` stops gradients, not the running statistics:
    those are updated by every training-mode forward (pytorch#86590). Keras 3
    runs a layer with ``trainable=False`` in inference mode, so nothing moves.
    """
    batch_size = _training_batch_size(batch_size)
    steps = _int("steps", steps, 1)
    for name, value in (("new_mean", new_mean), ("new_std", new_std)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if new_std <= 0:
        raise ValueError(f"new_std must be positive, got {new_std!r}")
    rng = np.random.default_rng(_seed(seed))
    original = rng.normal(0.0, 1.0, size=(200, 1))
    batches = rng.normal(new_mean, new_std, size=(steps, batch_size, 1))
    # the pretrained statistics are the initial 0 and 1, so a fresh trace starts from them
    assert (PRETRAINED["running_mean"], PRETRAINED["running_var"]) == (0.0, 1.0)
    moving = {"pytorch_frozen": track_running_stats(batches, "pytorch", _MOMENTUM),
              "keras2_frozen": track_running_stats(batches, "keras", 0.9)}
    gamma, beta = PRETRAINED["gamma"], PRETRAINED["beta"]

    def eval_output(mean, var):
        return gamma * normalize(original, np.array([mean]), np.array([var]), eps=_EPS) + beta

    before = eval_output(PRETRAINED["running_mean"], PRETRAINED["running_var"])
    out = {"running_mean": {}, "running_var": {}, "eval_change": {}}
    for name in ("pytorch_frozen", "pytorch_eval", "keras_frozen", "keras2_frozen"):
        if name in moving:
            mean, var = moving[name]["mean"][:, 0], moving[name]["var"][:, 0]
        else:  # evaluation / inference mode: nothing is updated
            mean = np.full(steps + 1, PRETRAINED["running_mean"])
            var = np.full(steps + 1, PRETRAINED["running_var"])
        out["running_mean"][name], out["running_var"][name] = mean, var
        out["eval_change"][name] = float(np.abs(eval_output(mean[-1], var[-1]) - before).max())
    out.update(pretrained=dict(PRETRAINED), batches=batches, new_mean=float(new_mean),
               new_var=float(new_std) ** 2,
               config=dict(batch_size=batch_size, steps=steps, new_mean=new_mean, new_std=new_std, seed=seed))
    return out


def momentum_mixup_experiment(*, batch_size=16, steps=200, jump_at=80, before=1.0, after=3.0, seed=0):
    """The running mean with the right momentum and with two wrong ones.

    The intended setting is PyTorch's default, momentum 0.1 (Keras 0.9): a
    new batch gets the weight 0.1. The stream's true mean jumps from
    ``before`` to ``after`` at step ``jump_at`` (as activations do when the
    weights change); the standard deviation is 1. Three running means:

    - ``"right"``: PyTorch 0.1 (identical to Keras 0.9);
    - ``"copied"``: Keras' 0.9 copied into PyTorch unchanged (weight 0.9:
      every batch nearly replaces the running value; d2l-ai/d2l-en#2213);
    - ``"default_kept"``: a PyTorch model ported to Keras with Keras' default
      0.99 (weight 0.01: ten times slower than intended).

    Parameters
    ----------
    batch_size : int >= 2, default 16
    steps : int, default 200
    jump_at : int, default 80
    before, after : float, default 1.0, 3.0
    seed : int, default 0

    Returns
    -------
    dict
        ``"curves"``: dict name -> running mean, shape (steps + 1,) (index 0:
        the initial 0); ``"truth"``: shape (steps + 1,), the true mean of the
        batch at each step (index 0: the first batch's); ``"batch_mean"``:
        shape (steps,); ``"momentum"``, ``"convention"``, ``"batch_weight"``:
        dict name -> the setting and the weight it gives a new batch;
        ``"reach_steps"``: dict name -> batches after the jump until the
        running mean first comes within 10% of the jump of the new truth
        (None if it never does); ``"wobble"``: dict name -> standard
        deviation of running mean minus truth over the last 60 steps;
        ``"config"``.
    """
    batch_size = _training_batch_size(batch_size)
    steps = _int("steps", steps, 2)
    jump_at = _int("jump_at", jump_at, 1)
    if jump_at >= steps:
        raise ValueError(f"jump_at must be less than steps ({steps}), got {jump_at}")
    rng = np.random.default_rng(_seed(seed))
    truth = np.where(np.arange(steps) < jump_at, float(before), float(after))
    batches = rng.normal(truth[:, None, None], 1.0, size=(steps, batch_size, 1))
    settings = {"right": ("pytorch", 0.1), "copied": ("pytorch", 0.9), "default_kept": ("keras", 0.99)}
    traces = {name: track_running_stats(batches, convention, momentum)
              for name, (convention, momentum) in settings.items()}
    truth_curve = np.concatenate([truth[:1], truth])
    tolerance = 0.1 * abs(after - before)
    reach, wobble = {}, {}
    for name, trace in traces.items():
        inside = np.flatnonzero(np.abs(trace["mean"][jump_at + 1:, 0] - after) <= tolerance)
        reach[name] = int(inside[0] + 1) if inside.size else None
        wobble[name] = float(np.std(trace["mean"][-60:, 0] - truth_curve[-60:]))
    return {"curves": {name: trace["mean"][:, 0] for name, trace in traces.items()}, "truth": truth_curve,
            "batch_mean": traces["right"]["batch_mean"][:, 0],
            "momentum": {name: momentum for name, (_, momentum) in settings.items()},
            "convention": {name: convention for name, (convention, _) in settings.items()},
            "batch_weight": {name: round(trace["batch_weight"], 12) for name, trace in traces.items()},
            "reach_steps": reach, "wobble": wobble,
            "config": dict(batch_size=batch_size, steps=steps, jump_at=jump_at, before=before, after=after,
                           seed=seed)}


def recalibration_experiment(*, batch_size=16, train_steps=150, recalibration_steps=50, seed=0):
    """The running mean at the end of training, and a cumulative re-estimate.

    During training the weights change, so the true mean of the activations
    drifts (here from 0 to 2 linearly over ``train_steps`` batches); then the
    weights are fixed and the true mean stays 2. Two exponential running
    averages follow training (Keras' default momentum 0.99, PyTorch's 0.1);
    the fix resets the statistics after training and averages
    ``recalibration_steps`` batches from the fixed network with equal weights
    (``momentum="cumulative"``, PyTorch's ``momentum=None``; what
    :func:`bnlab.recalibrate_batchnorm` does for every BN of a model).

    Parameters
    ----------
    batch_size : int >= 2, default 16
    train_steps, recalibration_steps : int, default 150, 50
    seed : int, default 0

    Returns
    -------
    dict
        ``"ema"``: dict name (``"keras_default"``, ``"pytorch_default"``) ->
        running mean, shape (train_steps + 1,); ``"cumulative"``: shape
        (recalibration_steps,), the running mean after each recalibration
        batch (``BatchNorm(momentum="cumulative")`` after
        ``reset_running_stats()``: the average of the batch means so far);
        ``"truth"``: shape (train_steps + recalibration_steps + 1,);
        ``"recalibration_batch_means"``: shape (recalibration_steps,);
        ``"train_batches"``, ``"recalibration_batches"``: the batches, shape
        (steps, batch_size, 1);
        ``"final"``: dict name -> the value evaluation would use;
        ``"final_truth"``; ``"config"``.

    Notes
    -----
    An exponential average weights recent batches more and mixes statistics
    from earlier weights: with momentum 0.99 it trails far behind a drift
    (Wu & Johnson 2021, Sec. 3). The cumulative average after a reset gives
    each batch of the fixed network weight 1/K (the first one replaces the
    initial values), so it ends at the plain average of their means
    (pytorch PR #5766, pytorch#31498).
    """
    batch_size = _training_batch_size(batch_size)
    train_steps = _int("train_steps", train_steps, 1)
    recalibration_steps = _int("recalibration_steps", recalibration_steps, 1)
    rng = np.random.default_rng(_seed(seed))
    final_truth = 2.0
    drift = np.linspace(0.0, final_truth, train_steps)
    train_batches = rng.normal(drift[:, None, None], 1.0, size=(train_steps, batch_size, 1))
    recal_batches = rng.normal(final_truth, 1.0, size=(recalibration_steps, batch_size, 1))
    ema = {name: track_running_stats(train_batches, convention)["mean"][:, 0]  # the default momenta
           for name, convention in (("keras_default", "keras"), ("pytorch_default", "pytorch"))}
    # after reset_running_stats(), momentum "cumulative": the k-th batch gets the weight 1/k
    recalibrated = track_running_stats(recal_batches, "pytorch", "cumulative")
    cumulative, batch_means = recalibrated["mean"][1:, 0], recalibrated["batch_mean"][:, 0]
    truth = np.concatenate([drift[:1], drift, np.full(recalibration_steps, final_truth)])
    final = {name: float(curve[-1]) for name, curve in ema.items()}
    final["cumulative"] = float(cumulative[-1])
    return {"ema": ema, "cumulative": cumulative, "truth": truth, "recalibration_batch_means": batch_means,
            "train_batches": train_batches, "recalibration_batches": recal_batches,
            "final": final, "final_truth": final_truth,
            "config": dict(batch_size=batch_size, train_steps=train_steps,
                           recalibration_steps=recalibration_steps, seed=seed)}


def device_stats_experiment(*, per_device=4, devices=8, draws=500, true_mean=1.0, true_std=2.0, seed=0):
    """Batch statistics per device (data parallelism) and over the whole batch (SyncBN).

    A global batch of ``devices * per_device`` samples is split across
    ``devices`` devices. Without synchronisation each device normalizes its
    share with its own mean and variance; SyncBatchNorm computes them over
    the whole batch. One training step is returned in full, and ``draws``
    steps are summarized.

    Parameters
    ----------
    per_device : int >= 2, default 4
    devices : int, default 8
    draws : int, default 500
    true_mean, true_std : float, default 1.0, 2.0
    seed : int, default 0

    Returns
    -------
    dict
        ``"device_mean"``, ``"device_var"``: shape (devices,), one step's
        per-device statistics (biased variance, what normalization uses);
        ``"global_mean"``, ``"global_var"``: that step's whole-batch ones;
        ``"spread"``: dict (``"device_mean"``, ``"global_mean"``) -> standard
        deviation over the draws; ``"average_var"``: dict (``"device"``,
        ``"global"``) -> mean of the biased batch variances over the draws;
        ``"true_mean"``, ``"true_var"``; ``"config"``.

    Notes
    -----
    The spread of a batch mean is :math:`\\sigma / \\sqrt{n}`: with 4 samples
    per device, 2.8 times what the whole batch of 32 gives; the biased
    variance of ``n`` samples averages :math:`\\sigma^2 (n - 1) / n` (3/4 of
    it at n = 4), so training normalizes with smaller variances than
    evaluation will. Wu & He (2018, Table 2) measured ResNet-50's ImageNet
    error rising from 23.6% at 32 images per GPU to 34.7% at 2.
    """
    per_device = _training_batch_size(per_device, "per_device")
    devices = _int("devices", devices, 1)
    draws = _int("draws", draws, 2)
    for name, value in (("true_mean", true_mean), ("true_std", true_std)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if true_std <= 0:
        raise ValueError(f"true_std must be positive, got {true_std!r}")
    rng = np.random.default_rng(_seed(seed))
    step = rng.normal(true_mean, true_std, size=(devices, per_device))
    device_mean, device_var = batch_stats(step, axis=1)
    global_mean, global_var = batch_stats(step.reshape(-1, 1), axis=0)
    many = rng.normal(true_mean, true_std, size=(draws, devices, per_device))
    many_device_mean, many_device_var = batch_stats(many, axis=2)
    many_global_mean, many_global_var = batch_stats(many.reshape(draws, -1), axis=1)
    return {"device_mean": device_mean, "device_var": device_var, "global_mean": float(global_mean[0]),
            "global_var": float(global_var[0]),
            "spread": {"device_mean": float(many_device_mean.std()), "global_mean": float(many_global_mean.std())},
            "average_var": {"device": float(many_device_var.mean()), "global": float(many_global_var.mean())},
            "true_mean": float(true_mean), "true_var": float(true_std) ** 2,
            "config": dict(per_device=per_device, devices=devices, draws=draws, true_mean=true_mean,
                           true_std=true_std, seed=seed)}


_BY_NAME = {
    "eval_in_train_mode": (eval_mode_experiment, "batch_size"),
    "batch_of_one": (batch_of_one_experiment, "batch_size"),
    "frozen_bn": (frozen_bn_experiment, "batch_size"),
    "momentum_mixup": (momentum_mixup_experiment, "batch_size"),
    "recalibration": (recalibration_experiment, "batch_size"),
    "per_device": (device_stats_experiment, "per_device"),
}


def pitfall_experiment(name, *, batch_size=None, seed=0):
    """Run the experiment of one pitfall by name (see :data:`PITFALLS`).

    Parameters
    ----------
    name : str
        A key of :data:`PITFALLS`.
    batch_size : int, optional
        The experiment's batch size (for ``"per_device"``: the batch per
        device); None: its default.
    seed : int, default 0

    Returns
    -------
    dict
        The experiment's result, with ``"name"`` added.
    """
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ValueError(f"name must be one of {sorted(_BY_NAME)}, got {name!r}")
    function, size_argument = _BY_NAME[name]
    kwargs = {"seed": seed}
    if batch_size is not None:
        kwargs[size_argument] = batch_size
    result = function(**kwargs)
    result["name"] = name
    return result
