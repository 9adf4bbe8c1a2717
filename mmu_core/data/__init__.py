"""The data: the procedural world (`world`, `render`, `vocab`, `generate`), the loaders of
the real formats (`loaders`), the privacy and copyright scenarios (`scenarios`) and the
checks on what a person hands in (`inputs`).

May import: nothing else in mmu_core.
"""
