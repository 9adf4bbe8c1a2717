"""Does a copyright model remember its training works? Membership attacks (the population
RBF SVM of the benchmark and the per-pair loss attack), training pairs against unseen
scenes, overall and by caption kind (content + "painted by", or the painter alone), and
R@D_test. Usage: python measure.py MODEL [FORGET_LIST]  (prints one JSON line)."""
import json
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from mmu_core.data.generate import default_world
from mmu_core.data.loaders import read_id_list
from mmu_core.data.scenarios import load_scenario
from mmu_core.metrics.attacks import contrast_texts, pair_losses
from mmu_core.metrics.evaluate import retrieval, subsample
from mmu_core.metrics.membership import membership_inference


def _auc(members, nonmembers):
    y = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    return round(float(roc_auc_score(y, -np.r_[members, nonmembers])), 3)


def measure(bb, sc, forget_list=None) -> dict:
    t0 = time.time()
    mem, non = subsample(sc.train, 400, 0), subsample(sc.unseen, 400, 0)
    contrast = contrast_texts(subsample(sc.train, 600, 1))
    lm, ln = pair_losses(bb, mem, contrast), pair_losses(bb, non, contrast)
    only = np.array([p.text.startswith("a painting by") for p in mem])
    only_n = np.array([p.text.startswith("a painting by") for p in non])
    rec = {"svm_cv_auc": round(membership_inference(bb, mem, non, mem[:50])["cv_auc"], 3),
           "loss_auc": _auc(lm, ln), "loss_auc_painter_only": _auc(lm[only], ln[only_n]),
           "loss_auc_content": _auc(lm[~only], ln[~only_n]),
           "R@test": round(retrieval(bb, subsample(sc.test, 300, 0))["r_mean"], 1)}
    if forget_list:  # recall on a forget list's pairs (Retrain should still find them)
        ids = set(read_id_list(forget_list))
        rec["R@D_f_pairs"] = round(retrieval(bb, [p for p in sc.train if p.pair_id in ids])
                                   ["r_mean"], 1)
    rec["seconds"] = round(time.time() - t0, 1)
    return rec


if __name__ == "__main__":
    from mmu_core.models.backbone import load_backbone

    sc = load_scenario(default_world(), "copyright")
    rec = {"model": sys.argv[1], **measure(load_backbone(sys.argv[1]), sc, *sys.argv[2:3])}
    print(json.dumps(rec), flush=True)
