"""Reusable Keras layers of remax_tf models (tf_keras only)."""
