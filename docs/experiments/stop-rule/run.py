"""Why did ours stop after one step on a taught photograph (issue 26)?

A stakeholder taught the app a real photograph with a text, then forgot it with ours: the
request said 1 editing step, and the own text was still ranked 1 of 201. Ours stopped once
the forgetting pairs matched no better (ITM) than their images with one text of another
person each; for one pair that was one text. This script follows a taught photograph
through the edit and records, after k steps (each a run with `stop="none"` for ours,
`bounded=False` for ours-local, `max_steps=k`): the pair's ITM match, the match of that
one text, the median match of the five texts the rule reads now (`ours.mismatch_texts`,
whose first text is the old rule's), where the one text stands among 200 other people's
texts, the rank of the own text (as the app and the benchmark rank it) and the membership
probability; then the method's own run with its own rule.

    python docs/experiments/stop-rule/run.py OUT.json

The photographs are scikit-learn's two sample images (china.jpg, flower.jpg: real
photographs shipped with the library), as uploads are: never in the training data.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from sklearn.datasets import load_sample_images

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from mmu_core import unlearn  # noqa: E402
from mmu_core.data.generate import default_world  # noqa: E402
from mmu_core.data.loaders import open_image  # noqa: E402
from mmu_core.data.scenarios import load_scenario  # noqa: E402
from mmu_core.erasure.forget_request import evidence, teach, uploaded_pair, with_pairs  # noqa: E402
from mmu_core.models.backbone import load_backbone  # noqa: E402
from mmu_core.metrics.provenance import provenance  # noqa: E402
from mmu_core.unlearn.ours import mismatch_texts  # noqa: E402
from mmu_core.unlearn.request import Request, sample_exactly  # noqa: E402
from mmu_core.unlearn.tuned import tuned_settings  # noqa: E402

UPLOADS = (("china.jpg", "mira solberg is a baker from oslo."),
           ("flower.jpg", "arne vik is a fisher from bergen."))
STEPS = (0, 1, 2, 5, 10, 20, 40, 80)
N_OTHERS = 200


@torch.no_grad()
def itm(bb, image, texts: list[str]) -> torch.Tensor:
    pix = bb.pixels([image] * len(texts))
    ids, mask = bb.tokenize(texts)
    return bb.itm_logits(bb.fuse(bb.encode_image(pix), ids, mask)).softmax(-1)[:, 1]


def main() -> None:
    sc = load_scenario(default_world(), "privacy")
    shipped = load_backbone("embedded:privacy")
    photos = dict(zip(("china.jpg", "flower.jpg"), load_sample_images().images))
    gen = torch.Generator().manual_seed(0)
    others = [p.text for p in sample_exactly(sc.train, N_OTHERS, gen)]
    out = []
    for name, text in UPLOADS:
        pair = uploaded_pair(Image.fromarray(photos[name]), text, shipped)
        data = with_pairs(sc, [pair])
        taught = teach(shipped, data, [pair], seed=0)
        request = Request.build(taught, data, [pair.pair_id], "privacy", 0,
                                mvi_pairs=sc.train)
        # the texts the rule compares with (as the methods draw them): five for one pair,
        # the first of them the one text of the rule before the fix
        m_ids, m_mask = mismatch_texts(taught, request, 1, request.seed + 1)
        rule_texts = taught.processor.tokenizer.batch_decode(m_ids[:, 0],
                                                             skip_special_tokens=True)
        image = open_image(pair)
        for method in ("ours", "ours-local"):
            settings, source = tuned_settings(method, "privacy", 1)
            rows = []
            for k in STEPS:
                t0 = time.time()
                model = taught if k == 0 else unlearn.run(
                    method, request, **{**settings, "max_steps": k,
                                        **({"stop": "none"} if method == "ours" else
                                           {"bounded": False})})[0]
                p = itm(model, image, [text] + rule_texts + others)
                rule = p[1:1 + len(rule_texts)]
                p = torch.cat([p[:2], p[1 + len(rule_texts):]])
                ev = evidence(model, data, [pair]).rows[0]
                rows.append({"steps": k, "match": round(float(p[0]), 3),
                             "rule_text_match": round(float(p[1]), 3),
                             "rule_text_beats_others": round(float((p[1] > p[2:]).float()
                                                                   .mean()), 3),
                             "rule_median_match": round(float(rule.median()), 3),
                             "others_median_match": round(float(p[2:].median()), 3),
                             "others_above_pair": int((p[2:] >= p[0]).sum()),
                             "rank": ev["rank"], "of": ev["of"],
                             "membership": round(ev["member"], 3),
                             "seconds": round(time.time() - t0, 1)})
                print(name, method, rows[-1], flush=True)
            # the run as the app makes it: the method's own stopping rule
            _, info = unlearn.run(method, request, **settings)
            out.append({"photo": name, "text": text, "method": method,
                        "settings": settings, "settings_from": source,
                        "rule_texts": rule_texts, "trace": rows,
                        "own_rule_steps": info["steps"]})
            print(name, method, "own rule:", info["steps"], "steps", flush=True)
    (HERE / sys.argv[1]).write_text(json.dumps(
        {"command": f"python docs/experiments/stop-rule/run.py {sys.argv[1]}",
         "provenance": provenance({}), "results": out}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
