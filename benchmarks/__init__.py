"""``make bench``: benchmarks and load tests, a client of the ``churn`` package's public API.

Run from the repository root: ``python -m benchmarks.run`` (pipeline steps, and the API with
``--serving-data-dir``) or ``python -m benchmarks.serving`` (the API alone). Not part of the
installed package; nothing here re-implements a pipeline step.
"""
