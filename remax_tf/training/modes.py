"""The trainer's ``--mode`` values (DeepLab2's), importable without TensorFlow."""

MODES = ("train", "eval", "train_and_eval", "continuous_eval", "export")
