"""Analysis of a sweep's files: Pareto fronts of accuracy against bits, hypervolume, plots, a
report and notebooks. Reads ``RESULTS/<name>/`` only; imports neither Ray, MLflow nor the
samplers.

    from analysis.load import load_sweep
    from analysis.pareto import pareto_front, aggregate_seeds, hypervolume, knee
    from analysis.report import write_report
"""
