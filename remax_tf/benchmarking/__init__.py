"""What the benchmark scripts (``benchmarks/``) share, tested here.

``harness`` runs a measurement in a fresh process, loads a script's config
and prints its table and JSON line; ``macs`` counts a traced model's
multiply-accumulates per component; ``seed_statistics`` reduces repeated runs
(seeds) to mean ± std and the standard error of a difference, and formats
them for tables and strict JSON. No TensorFlow at import except ``macs``.
"""
