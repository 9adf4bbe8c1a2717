"""Each scene caption's ITM match with its own context vs the same caption with another
place and time (training and test scenes). Usage: context_check.py MODEL WORLD"""

import re
import sys
import torch
import numpy as np
from mmu_core.data.loaders import load_karpathy, open_image
from mmu_core.data import vocab as V
from mmu_core.models.backbone import load_backbone

torch.set_num_threads(1)
bb = load_backbone(sys.argv[1])
rng = np.random.default_rng(0)
for split in ("train", "test"):
    pairs = load_karpathy(f"{sys.argv[2]}/flickr30k/flickr30k_{split}.json")[:600:3]
    tail = re.compile(r" in the (\w+) (" + "|".join(V.CONTEXT_TIMES) + r")\.$")
    imgs = [open_image(p) for p in pairs]
    own = [p.text for p in pairs]
    swapped = []
    for t in own:
        m = tail.search(t)
        place = rng.choice([x for x in V.CONTEXT_PLACES if x != m.group(1)])
        time = rng.choice([x for x in V.CONTEXT_TIMES if x != m.group(2)])
        swapped.append(t[: m.start()] + f" in the {place} {time}.")
    with torch.no_grad():
        a = bb.score_pairs(imgs, own)
        b = bb.score_pairs(imgs, swapped)
    print(
        split,
        "ITM own %.3f swapped %.3f | ITC own %.3f swapped %.3f | own>swapped %.2f"
        % (
            a["itm"].mean(),
            b["itm"].mean(),
            a["itc"].mean(),
            b["itc"].mean(),
            float((a["itm"] > b["itm"]).float().mean()),
        ),
    )
