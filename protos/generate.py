"""Compiles protos/*.proto into remax_tf/protos/*_pb2.py with grpcio-tools.

Run by setup.py on every install (editable or not), so users never call
protoc by hand. tests/config/test_protos.py compiles again into a temporary
directory and fails when the installed modules are stale.

    python protos/generate.py [OUTPUT_ROOT]
"""

import glob
import os
import sys

PROTO_DIR = os.path.dirname(os.path.abspath(__file__))
# The .proto files import each other as "remax_tf/protos/<name>.proto", so the
# generated modules import as remax_tf.protos.<name>_pb2.
VIRTUAL_DIR = "remax_tf/protos"


def generate(output_root: str) -> list:
    """Writes <output_root>/remax_tf/protos/*_pb2.py; returns their paths."""
    import grpc_tools  # pylint: disable=g-import-not-at-top
    from grpc_tools import protoc  # pylint: disable=g-import-not-at-top

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    sources = sorted(glob.glob(os.path.join(PROTO_DIR, "*.proto")))
    os.makedirs(os.path.join(output_root, VIRTUAL_DIR), exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{VIRTUAL_DIR}={PROTO_DIR}",
        f"-I{include}",
        f"--python_out={output_root}",
    ]
    args += [os.path.join(PROTO_DIR, os.path.basename(s)) for s in sources]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + ", ".join(sources))
    init = os.path.join(output_root, VIRTUAL_DIR, "__init__.py")
    if not os.path.exists(init):
        with open(init, "w", encoding="utf-8") as f:
            f.write('"""Generated protobuf modules (see protos/generate.py)."""\n')
    return [
        os.path.join(
            output_root, VIRTUAL_DIR, os.path.basename(s)[: -len(".proto")] + "_pb2.py"
        )
        for s in sources
    ]


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(PROTO_DIR)
    for path in generate(root):
        print(path)
