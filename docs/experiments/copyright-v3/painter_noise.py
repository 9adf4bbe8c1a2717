"""Why unseen works are retrieved less well: recall on 300 test captions as they are, on
the content captions only (painter named), and on those with the painter removed.
Usage: python painter_noise.py MODEL  (prints one JSON line)."""
import json
import re
import sys
from dataclasses import replace

from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import load_scenario
from mmu_core.metrics.evaluate import retrieval, subsample
from mmu_core.models.backbone import load_backbone

bb = load_backbone(sys.argv[1])
test = subsample(load_scenario(default_world(), "copyright").test, 300, 0)
content = [p for p in test if not p.text.startswith("a painting by")]
stripped = [replace(p, text=re.sub(r" painted by \w+ \w+\.$", ".", p.text)) for p in content]
print(json.dumps({"model": sys.argv[1], **{k: round(retrieval(bb, v)["r_mean"], 1) for k, v in (
    ("as_is", test), ("content_with_painter", content), ("content_painter_removed", stripped))}}))
