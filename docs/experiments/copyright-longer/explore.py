"""Exploration: does hotter/longer copyright training open a membership gap? Continues the
shipped copyright model in 5-epoch chunks at lr 1e-3, measuring attacks after each."""

import json
import os
import sys
import time
from dataclasses import replace
import numpy as np
from sklearn.metrics import roc_auc_score
from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import load_scenario
from mmu_core.models.backbone import load_backbone
from mmu_core.metrics.attacks import pair_losses, contrast_texts
from mmu_core.metrics.evaluate import subsample, retrieval
from mmu_core.metrics.membership import membership_inference
from mmu_core.training.recipes import RECIPES, scenario_inputs, train

lr = float(sys.argv[1])
chunks = int(sys.argv[2])
out = sys.argv[3]
os.makedirs(out, exist_ok=True)
w = default_world()
sc = load_scenario(w, "copyright")
recipe = replace(RECIPES["copyright"], lr=lr, epochs=5)
pairs, mix, ve = scenario_inputs(sc, recipe)
bb = load_backbone("embedded:copyright")
mem = subsample(sc.train, 300, 0)
non = subsample(sc.unseen, 300, 0)
c = contrast_texts(subsample(sc.train, 600, 1))
log = open(f"{out}/log.jsonl", "a")


def measure(epoch):
    lm, ln = pair_losses(bb, mem, c), pair_losses(bb, non, c)
    y = np.r_[np.ones(len(lm)), np.zeros(len(ln))]
    mi = membership_inference(bb, mem, non, mem[:50], seed=0)
    r = retrieval(bb, subsample(sc.test, 300, 0))["r_mean"]
    rec = {
        "epochs_extra": epoch,
        "loss_auc": round(roc_auc_score(y, -np.r_[lm, ln]), 3),
        "svm_cv_auc": round(mi["cv_auc"], 3),
        "R@test": round(r, 1),
        "loss_member": float(np.median(lm)),
        "loss_non": float(np.median(ln)),
        "t": time.time(),
    }
    log.write(json.dumps(rec) + "\n")
    log.flush()
    print(rec, flush=True)


measure(0)
for k in range(chunks):
    train(bb, recipe, pairs, f"{out}/chunk{k}", mix=mix, ve=ve, seed=k, resume=False)
    measure(5 * (k + 1))
