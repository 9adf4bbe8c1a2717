"""Measurements: recall@k, V-MCQ and VE (`evaluate`), membership inference, deltas to
Retrain (`compare`), per-word score shifts, one pair's scores, the generators' quality
measures, and the provenance every results file records.

May import: data, models.
"""
