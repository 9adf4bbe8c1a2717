"""Continue the confirm half list by list (Retrain first, then every method's tuned setting,
then their guarded forms once another list's Retrain exists), each cell under the shared
torch lock so that tests can interleave. Resumable: finished cells are read from disk."""
import fcntl
import json
import time
from pathlib import Path

from mmu_core.bench.confirm import GUARD, confirm
from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import validation_sets

CONF = Path("docs/results/bench/confirm")
# the order the lists were run in, over three sessions (finished cells are read, not rerun)
ORDER = [("privacy", 5, ["confirm-0", "confirm-1"]), ("privacy", 50, None),
         ("copyright", 35, None), ("privacy", 5, ["confirm-0", "confirm-1", "confirm-2"]),
         ("privacy", 5, ["confirm-3"]), ("privacy", 5, ["confirm-4"]),
         ("privacy", 5, ["confirm-5"]), ("copyright", 170, None)]
settings = json.loads((CONF / "settings.json").read_text())["settings"]
root = default_world()


def cell(scenario, size, stem, method):
    with open("/tmp/torch.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        confirm(CONF, settings_path=CONF / "settings.json", scenarios=(scenario,),
                methods=[method], sizes=[size], lists=[stem],
                log=lambda *a: print(time.strftime("%H:%M:%S"), *a, flush=True))
    print(time.strftime("%H:%M:%S"), scenario, size, stem, method, "done", flush=True)


for scenario, size, only in ORDER:
    names = list(settings[scenario][str(size)])
    stems = [p.stem for p in validation_sets(root, scenario, "confirm")[size]]
    stems = [s for s in stems if only is None or s in only]
    for stem in stems:
        for method in ["retrain", *names]:
            cell(scenario, size, stem, method)
    for stem in stems:
        for method in names:
            cell(scenario, size, stem, method + GUARD)
