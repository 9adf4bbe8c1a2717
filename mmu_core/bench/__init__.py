"""The benchmarks behind `python -m mmu_core bench ...`: `mvi` (fit, anchors, Table 5
probe, Table 3 quality), `unlearning` (methods x scenarios x sizes x seeds, resumable
cells, the paper-shaped tables) and `app` (page start and forget requests through the
app's API).

May import: data, models, training, metrics, mvi, unlearn, erasure.
"""
