"""One cell of the batch-size experiment (bnlab.train.run_batch_size) and training-mode evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from bnlab.layers import BatchNorm
from bnlab.train import batch_size_experiment, evaluate, evaluate_in_training_mode, run_batch_size


@pytest.mark.parametrize("norm", ["batch", "layer", "group", "rms", None])
def test_a_run_is_the_grids_cell(digits, norm):
    grid = batch_size_experiment(methods=(norm,), batch_sizes=(16,), seeds=(1,), epochs=2, data=digits)
    history = run_batch_size(norm=norm, batch_size=16, seed=1, epochs=2, data=digits)
    assert history.final_test_accuracy == grid.accuracy[0, 0, 0]
    assert history.config["learning_rate"] == pytest.approx(0.05 * 16 / 32)
    assert list(history.epochs) == [0, 1, 2] and len(history.batch_loss) == 2 * (len(digits.x_train) // 16)
    assert history.model is not None and not history.diverged


def test_progress_and_config(digits):
    seen = []
    history = run_batch_size(norm="group", batch_size=32, num_groups=4, epochs=2, lr_at_32=0.1, data=digits,
                             progress=lambda epoch, epochs: seen.append((epoch, epochs)))
    assert seen == [(1, 2), (2, 2)]
    assert history.label == "GN" and history.config["num_groups"] == 4
    assert "GN, lr=0.1, batch_size=32, 2 epochs, seed=0" in repr(history)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"norm": "instance"}, ValueError, "norm must be one of"),
    ({"batch_size": 1}, ValueError, "batch_size must be >= 2"),
    ({"norm": "group", "num_groups": 5}, ValueError, "num_groups=5 must divide every hidden width"),
    ({"lr_at_32": 0.0}, ValueError, "lr_at_32 must be positive"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
    ({"epochs": 1.5}, TypeError, "epochs must be an int"),
    ({"progress": 3}, TypeError, "progress must be callable"),
    ({"batch_size": 5000}, ValueError, "larger than the training set"),
])
def test_bad_arguments_are_refused(digits, kwargs, error, words):
    with pytest.raises(error, match=words):
        run_batch_size(data=digits, **kwargs)


@pytest.fixture(scope="module")
def bn_model(digits):
    return run_batch_size(norm="batch", batch_size=32, epochs=1, data=digits).model


def test_training_mode_evaluation_uses_batch_statistics_on_a_copy(digits, bn_model):
    bn = next(layer for layer in bn_model if isinstance(layer, BatchNorm))
    running = bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked
    loss, accuracy = evaluate_in_training_mode(bn_model, digits.x_test, digits.y_test, 32)
    np.testing.assert_array_equal(bn.running_mean, running[0])
    assert bn.num_batches_tracked == running[2]
    assert 0 < accuracy <= 1 and loss > 0
    assert (loss, accuracy) != evaluate(bn_model, digits.x_test, digits.y_test)
    # one batch holding the whole set: its statistics are the set's own, so sample order does not matter
    whole = evaluate_in_training_mode(bn_model, digits.x_test, digits.y_test, len(digits.x_test))
    order = np.random.default_rng(0).permutation(len(digits.x_test))
    shuffled = evaluate_in_training_mode(bn_model, digits.x_test[order], digits.y_test[order], len(order))
    assert whole[1] == shuffled[1] and whole[0] == pytest.approx(shuffled[0])


def test_training_mode_evaluation_of_layer_norm_is_evaluation(digits):
    model = run_batch_size(norm="layer", batch_size=32, epochs=1, data=digits).model
    assert evaluate_in_training_mode(model, digits.x_test, digits.y_test, 7)[1] == pytest.approx(
        evaluate(model, digits.x_test[:357], digits.y_test[:357])[1])  # 51 whole batches of 7


def test_training_mode_evaluation_refuses_bad_input(digits, bn_model):
    x, y = digits.x_test, digits.y_test
    with pytest.raises(ValueError, match="only one value per feature"):
        evaluate_in_training_mode(bn_model, x, y, 1)
    with pytest.raises(ValueError, match="larger than x"):
        evaluate_in_training_mode(bn_model, x[:10], y[:10], 11)
    with pytest.raises(ValueError, match="labels shape"):
        evaluate_in_training_mode(bn_model, x, y[:5], 8)
    with pytest.raises(TypeError, match="Sequential"):
        evaluate_in_training_mode([bn_model], x, y, 8)


@pytest.mark.parametrize("name", ["run_batch_size", "evaluate_in_training_mode"])
def test_documented_and_exported(name):
    from bnlab import train

    doc = getattr(train, name).__doc__
    assert name in train.__all__
    assert "Parameters" in doc and "Returns" in doc and "Introduced in notebook 09" in doc
