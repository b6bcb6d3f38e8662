"""Trains, evaluates or exports a remax_tf experiment (DeepLab2's flags).

    remax-train --config_file configs/demo/shapes_remax.textproto \\
        --mode train_and_eval --model_dir runs/demo

(the same as ``python trainer/train.py ...`` and ``python -m remax_tf.train
...``). Checkpoints, summaries and metrics go to
``--model_dir/<experiment_name>/``. With ``--mode eval`` or ``--mode export``,
``--model_dir`` may also be a ``ckpt-N`` prefix or the directory holding a
``checkpoint`` file (the forms ``remax-export --checkpoint`` and
``remax-predict --model`` take). ``--config_override field.path=value``
(repeatable) changes one field.

A training run records its config in the model_dir; resuming with other
training settings stops unless ``--allow_config_change``. Expected failures
(bad config, data that does not fit it, a damaged TFRecord, a model_dir that
does not match) print one ``error: ...`` message and exit with status 1;
``--debug`` (or ``REMAX_TF_DEBUG=1``) also prints the traceback.
"""

import sys

from absl import flags
from absl import logging

from remax_tf import cli

# TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, at its import by the modules below.
cli.quiet_tensorflow()

from remax_tf.config import load_config  # noqa: E402
from remax_tf.training.distribution import disable_grappler_if_asked  # noqa: E402
from remax_tf.training.modes import MODES  # noqa: E402
from remax_tf.training.train_lib import run_experiment  # noqa: E402

flags.DEFINE_string(
    "config_file",
    None,
    "Experiment textproto (ExperimentOptions); configs/<dataset>/<name>.textproto "
    "also names the configs shipped with remax_tf.",
)
flags.DEFINE_enum("mode", "train", MODES, "What to run.")
flags.DEFINE_string(
    "model_dir",
    None,
    "Base directory of checkpoints and summaries; the experiment_name is appended "
    "as in DeepLab2. With --mode eval|export also a ckpt-N prefix or a directory "
    "holding a 'checkpoint' file.",
)
flags.DEFINE_integer("num_gpus", 0, "GPUs to use; 0 uses the default device.")
flags.DEFINE_string("master", None, "TPU name or grpc:// address (TPUStrategy).")
flags.DEFINE_multi_string(
    "config_override",
    [],
    "field.path=value, applied after "
    "loading, e.g. trainer_options.solver_options.base_learning_rate=0.01",
)
flags.DEFINE_boolean(
    "allow_config_change",
    False,
    "Resume training in a model_dir whose recorded config (config.textproto) "
    "differs in training settings (learning rate, seed, dataset, ...); the new "
    "config is then recorded. Without it such a resume stops with the list of "
    "differing fields.",
)
flags.DEFINE_boolean(
    "debug",
    False,
    "Print the traceback of expected failures too (also REMAX_TF_DEBUG=1).",
)
flags.mark_flags_as_required(["config_file", "model_dir"])
FLAGS = flags.FLAGS


def main(argv) -> int:
    """absl main: runs ``--mode``; returns the exit status (1 with one
    ``error:`` line for an expected failure)."""
    debug = FLAGS.debug or cli.debug_requested([])
    return cli.report_errors(_main, argv, debug=debug)


def _main(argv) -> int:
    if len(argv) > 1:
        print(
            f"error: unexpected arguments {argv[1:]}; every option is a --flag "
            "(see --help).",
            file=sys.stderr,
        )
        return 2
    disable_grappler_if_asked()
    # Our progress and metric lines go to stdout; absl's INFO stream (orbit
    # prints every loss dict there) only with --verbosity=0 or higher.
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    config = load_config(FLAGS.config_file, FLAGS.config_override)
    result = run_experiment(
        FLAGS.mode,
        config,
        FLAGS.model_dir,
        FLAGS.master,
        FLAGS.num_gpus,
        allow_config_change=FLAGS.allow_config_change,
    )
    summary = {
        k: result[k] for k in ("model_dir", "global_step", "export") if k in result
    }
    metrics = result.get("metrics")
    if metrics:
        summary.update(
            {k: round(float(metrics[k]), 4) for k in ("pq", "sq", "rq", "miou")}
        )
    print(f"[{FLAGS.mode}] done: {summary}", flush=True)
    return 0


def run() -> None:
    """Console script ``remax-train`` (and ``trainer/train.py``)."""
    cli.list_module_flags_in_help(sys.modules[__name__])
    cli.use_as_usage(__doc__)
    cli.run_absl_app(main)


if __name__ == "__main__":
    run()
