"""mmu_core: the engine of multimodal machine unlearning, by concern, lowest layer first:
data -> models -> training, metrics -> mvi -> unlearn -> erasure -> bench; `__main__` is
the command line. Each subpackage's docstring names what it may import (tests check it);
nothing here imports gradio. See docs/architecture.md.
"""
