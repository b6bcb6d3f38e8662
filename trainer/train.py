"""Trains, evaluates or exports a remax_tf experiment (DeepLab2's flags).

    python trainer/train.py --config_file configs/demo/shapes_remax.textproto \\
        --mode train_and_eval --model_dir runs/demo

The same command as ``remax-train`` (the installed console script) and
``python -m remax_tf.train``: the flags and the code are those of
``remax_tf/train.py``; see ``--help``. Checkpoints, summaries and metrics go to
``--model_dir/<experiment_name>/``.
"""

from remax_tf.train import run

if __name__ == "__main__":
    run()
