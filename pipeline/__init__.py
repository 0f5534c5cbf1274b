"""Benchmark Scottish children's-services partnerships from joint inspection reports."""
