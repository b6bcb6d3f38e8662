"""Learning-rate schedules and AdamW's kernel-only weight decay."""

import pytest
import tensorflow as tf

from remax_tf.protos import trainer_pb2
from remax_tf.training import optimization


def solver(**fields):
    return trainer_pb2.SolverOptions(
        training_number_of_steps=1000, base_learning_rate=0.006, **fields
    )


def values(schedule, steps):
    return [float(schedule(s)) for s in steps]


def test_step_policy_decays_at_85_and_95_percent():
    schedule = optimization.build_learning_rate_schedule(solver(learning_policy="step"))
    assert values(schedule, [0, 849, 850, 949, 950, 999]) == pytest.approx(
        [0.006, 0.006, 0.0006, 0.0006, 0.00006, 0.00006], rel=1e-5
    )


def test_step_policy_with_custom_boundaries_and_factor():
    s = solver(learning_policy="step", lr_decay_factor=0.5)
    s.lr_decay_boundaries.extend([0.5])
    schedule = optimization.build_learning_rate_schedule(s)
    assert values(schedule, [499, 500]) == pytest.approx([0.006, 0.003], rel=1e-5)


def test_linear_warmup_then_poly_like_deeplab2():
    schedule = optimization.build_learning_rate_schedule(
        solver(learning_policy="poly", warmup_steps=100, poly_learning_power=0.9)
    )
    # Warm-up: step / warmup_steps * base rate.
    assert values(schedule, [0, 50]) == pytest.approx([0.0, 0.003], rel=1e-5)
    # Then DeepLab2's poly decay evaluated at the global step.
    expected = 0.006 * (1 - 500 / 1000) ** 0.9
    assert float(schedule(500)) == pytest.approx(expected, rel=1e-5)
    assert float(schedule(1000)) == pytest.approx(0.0, abs=1e-9)


def test_multiplier_scales_the_backbone_schedule():
    base = optimization.build_learning_rate_schedule(solver(learning_policy="step"))
    backbone = optimization.build_learning_rate_schedule(
        solver(learning_policy="step"), 0.1
    )
    assert float(backbone(10)) == pytest.approx(0.1 * float(base(10)), rel=1e-6)


def test_unknown_policy_and_optimizer_are_named():
    with pytest.raises(ValueError, match="learning_policy = 'exp'"):
        optimization.build_learning_rate_schedule(solver(learning_policy="exp"))
    with pytest.raises(ValueError, match="optimizer = 'lamb'"):
        optimization.build_optimizer(solver(optimizer="lamb"))


def test_adamw_decays_kernels_only():
    opt = optimization.build_optimizer(
        solver(optimizer="adamw", adamw_weight_decay=0.05, learning_policy="constant")
    )
    kernel = tf.Variable(tf.ones([3]), name="conv/kernel")
    depthwise = tf.Variable(tf.ones([3]), name="block/depthwise_kernel")
    bias = tf.Variable(tf.ones([3]), name="conv/bias")
    gamma = tf.Variable(tf.ones([3]), name="norm/gamma")
    centres = tf.Variable(tf.ones([3]), name="cluster_centers")
    decayed = [
        optimization.uses_weight_decay(opt, v)
        for v in (kernel, depthwise, bias, gamma, centres)
    ]
    assert decayed == [True, True, False, False, False]
    # Zero gradients: only the decoupled decay moves the kernel, by lr * wd.
    opt.apply_gradients([(tf.zeros([3]), kernel), (tf.zeros([3]), bias)])
    assert float(kernel[0]) == pytest.approx(1 - 0.006 * 0.05, rel=1e-6)
    assert float(bias[0]) == pytest.approx(1.0)
