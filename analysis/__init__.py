"""Analysis of a sweep's files: the answer (how few bits suffice, with confidence intervals over
seeds and test examples, verdicts against a baseline), Pareto fronts of accuracy against bits,
plots, a report and a notebook. Reads ``RESULTS/<name>/`` only; imports neither torch, Ray,
MLflow, the workloads nor the samplers.

    from analysis.answer import compute_answer, select_baseline, DEFAULT_TOLERANCE
    from analysis.load import load_sweep
    from analysis.pareto import pareto_front, aggregate_seeds, hypervolume, knee
    from analysis.report import write_report
"""
