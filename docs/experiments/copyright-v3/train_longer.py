"""How many epochs does the copyright original need to remember its works? Trains the
copyright recipe from the pretrained model at LR for EPOCHS (the cosine schedule of that
length), measuring (measure.py) every CHUNK epochs. Usage:
MMU_WORLD_DIR=<world v3> python train_longer.py LR EPOCHS CHUNK OUT  (log: OUT/log.jsonl)"""
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import measure  # noqa: E402

from mmu_core.data.generate import default_world  # noqa: E402
from mmu_core.data.scenarios import load_scenario  # noqa: E402
from mmu_core.models.backbone import load_backbone  # noqa: E402
from mmu_core.training.recipes import RECIPES, scenario_inputs, train  # noqa: E402

lr, epochs, chunk, out = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
sc = load_scenario(default_world(), "copyright")
recipe = replace(RECIPES["copyright"], lr=lr, epochs=epochs)
pairs, mix, ve = scenario_inputs(sc, recipe)
bb = load_backbone("embedded:pretrained")
while True:
    s = train(bb, recipe, pairs, out / "model", mix=mix, ve=ve, seed=0, stop_after=chunk,
              keep_checkpoint=True)
    rec = {"lr": lr, "epochs": epochs, "epoch": s.get("stopped_at_epoch", epochs),
           "train_loss": s["history"][-1], **measure(bb, sc)}
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)
    if "stopped_at_epoch" not in s:
        break
