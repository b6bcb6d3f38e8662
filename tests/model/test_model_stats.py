"""The multiply-accumulate counter of benchmarks/model_stats.py
(remax_tf.benchmarking.macs)."""

import tensorflow as tf

from remax_tf.benchmarking.macs import count_macs


def test_counts_each_linear_op_by_hand():
    conv = tf.random.normal([3, 3, 4, 8])
    depthwise = tf.random.normal([5, 5, 8, 1])
    dense = tf.random.normal([8, 6])

    @tf.function(input_signature=[tf.TensorSpec([2, 9, 9, 4], tf.float32)])
    def forward(x):
        with tf.name_scope("root"):
            with tf.name_scope("a"):
                y = tf.nn.conv2d(x, conv, 2, "SAME")  # [2, 5, 5, 8]
                y = tf.nn.depthwise_conv2d(y, depthwise, [1, 1, 1, 1], "SAME")
            with tf.name_scope("b"):
                z = tf.einsum("bhwc,cd->bhwd", y, dense)  # [2, 5, 5, 6]
                flat = tf.reshape(z, [50, 6])
                m = tf.matmul(flat, flat, transpose_a=True)  # [6, 6], inner 50
                q = tf.reshape(z, [2, 25, 6])
                att = tf.matmul(q, q, transpose_b=True)  # [2, 25, 25], inner 6
                return tf.nn.relu(att) + tf.reduce_sum(m)

    macs = count_macs(forward.get_concrete_function().graph, "root")
    conv_macs = 2 * 5 * 5 * 8 * (3 * 3 * 4)
    depthwise_macs = 2 * 5 * 5 * 8 * 25
    einsum_macs = 2 * 5 * 5 * 8 * 6
    matmul_macs = 6 * 6 * 50
    batch_matmul_macs = 2 * 25 * 25 * 6
    assert macs["a"] == conv_macs + depthwise_macs
    assert macs["b"] == einsum_macs + matmul_macs + batch_matmul_macs
