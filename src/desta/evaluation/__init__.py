"""Evaluation: benchmark readers, official scoring rules, LLM judges, and the runner behind
`desta eval` (see docs/evaluation.md). Benchmarks register themselves (`registry.py`)."""

from desta.evaluation.records import BenchmarkDataError, BenchmarkItem
from desta.evaluation.registry import BenchmarkSpec, benchmark_names, get_spec, register
from desta.evaluation.runner import EvalResult, PredictionStore, evaluate

__all__ = ["BenchmarkDataError", "BenchmarkItem", "BenchmarkSpec", "EvalResult",
           "PredictionStore", "benchmark_names", "evaluate", "get_spec", "register"]
