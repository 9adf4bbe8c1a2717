"""Is calibrated-rank bit-reproducible on this CPU? Two runs of the same request and settings."""

from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn import run
from mmu_core.unlearn.request import Request

w = default_world()
sc = load_scenario(w, "privacy")
ids = load_forget_ids(forget_list_path(w, "privacy", 5, 0))
states = []
for k in range(2):
    req = Request.build(load_backbone("embedded:privacy"), sc, ids, "privacy", seed=0)
    m, info = run("calibrated-rank", req, max_steps=40, lr=1e-4, forget_weight=1.0)
    states.append(m.state_dict())
    print(k, info["forget_scores"], flush=True)
a, b = states
diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
print("max weight diff", diff, "identical" if diff == 0 else "DIFFERENT")
