"""The command line, `python -m mmu_core`: one module per command group, each holding its
sub-parsers and their handlers side by side (`data`, `training`, `evaluation`, `anchors`,
`forget`, `bench`); `mmu_core/__main__.py` assembles them and dispatches. A shell over the
engine, as the app is: it may import every subpackage and nothing imports it.

May import: data, models, training, metrics, mvi, unlearn, erasure, bench.
"""
