"""One process-wide lock around building and loading models.

transformers' `from_pretrained` (`no_init_weights`) and diffusers' / accelerate's
empty-weights loading patch `torch.nn.init` and `nn.Module` for the whole process while
they run, and restore what they saw on entry. A model built in another thread meanwhile
keeps uninitialised (or meta) weights, and two overlapping loads can leave the patch in
place for good. The app loads the generators in a warm-up thread while requests build
models, so every build and load in mmu_core goes through `serialised`.
"""

import functools
import threading

LOCK = threading.RLock()  # re-entrant: a loader may build a model inside another


def serialised(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with LOCK:
            return fn(*args, **kwargs)
    return wrapper
