"""Analysis the benchmark scripts (``benchmarks/``) share, tested here.

``macs`` counts a traced model's multiply-accumulates per component;
``seed_statistics`` reduces repeated runs (seeds) to mean ± std and the
standard error of a difference, and formats them for tables and strict JSON.
Nothing here imports the rest of ``remax_tf``.
"""
