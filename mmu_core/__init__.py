"""mmu_core: the engine of multimodal machine unlearning, by concern, lowest layer first:
data -> models -> training, metrics -> mvi -> unlearn -> erasure -> bench; `cli/` holds the
command line's commands and `__main__` assembles them. Each subpackage's docstring names
what it may import (tests check it); nothing here imports gradio. See docs/architecture.md.
"""
