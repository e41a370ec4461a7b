"""The Ray Tune side: one trial (``orchestrator.trial``), the search-space schema
(``orchestrator.spec``), results on disk (``orchestrator.store``), MLflow
(``orchestrator.tracking``) and the sweep CLI (``orchestrator.sweep``).

Imports are one-way: ``lowprec`` <- ``workloads`` <- ``orchestrator``; ``analysis`` reads the
files this package writes (see docs/results.md) and is never imported here except, guarded, to
draw the report at the end of a sweep.
"""
