"""remax_tf: ReMaX (NeurIPS 2023) and kMaX-DeepLab in TensorFlow.

Installing (``pip install .``, ``pip install -e .``, ``pip wheel .``) compiles
protos/*.proto into remax_tf/protos/*_pb2.py with grpcio-tools, a build-system
requirement only (pyproject.toml): no manual protoc step, no protoc at run time.

Package data: the experiment configs of the top-level ``configs/`` folder ship
as the package ``remax_tf.configs`` (read with importlib.resources, see
remax_tf/config/shipped.py) and the dataset metadata as remax_tf/data/metadata.
"""

import importlib.util
import os

import setuptools

HERE = os.path.dirname(os.path.abspath(__file__))


def _generate_protos() -> None:
    spec = importlib.util.spec_from_file_location(
        "remax_tf_proto_generate", os.path.join(HERE, "protos", "generate.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(HERE)


_generate_protos()

# The stack measured to install together; tf-models-official pins TensorFlow
# 2.20. protobuf >= the gencode version of grpcio-tools' protoc (7.35.1 for
# grpcio-tools 1.85.1, pyproject.toml's build requirement).
GRPCIO_TOOLS = "grpcio-tools==1.85.1"
INSTALL_REQUIRES = [
    "tensorflow==2.20.0",
    "tf-keras==2.20.1",
    "tf-models-official==2.20.0",
    "protobuf>=7.35.1",
    "pycocotools>=2.0.8",
    "absl-py>=1.4.0",
    "numpy>=1.26",
    "pillow>=10.0",
    "matplotlib>=3.8",
]

# Console scripts (remax_tf's commands).
CONSOLE_SCRIPTS = [
    "remax-train = remax_tf.train:run",
    "remax-predict = remax_tf.predict:run",
    "remax-export = remax_tf.export.__main__:run",
    "remax-evaluate = remax_tf.evaluation.coco_panoptic:run",
    "remax-demo = remax_tf.demo:run",
]

setuptools.setup(
    name="remax_tf",
    version="0.1.0",
    description=(
        "ReMaX and kMaX-DeepLab panoptic segmentation in TensorFlow, "
        "DeepLab2-compatible, with MobileNetV3 and TFLite export."
    ),
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=[
        *setuptools.find_packages(include=["remax_tf", "remax_tf.*"]),
        "remax_tf.configs",
    ],
    # The top-level configs/ folder is the package remax_tf.configs.
    package_dir={"remax_tf.configs": "configs"},
    package_data={
        "remax_tf": ["data/metadata/*.json"],
        "remax_tf.configs": ["*/*.textproto"],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # grpcio-tools: tests/config/test_protos.py recompiles the protos to
        # check that the installed modules are not stale.
        "test": ["pytest>=8.0", "scipy>=1.11", "ruff>=0.5", GRPCIO_TOOLS],
        "tflite": ["ai-edge-litert>=1.0"],
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
