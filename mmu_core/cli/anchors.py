"""`anchors`: fit (or reuse) MVI and write the anchor samples R_1 / R_2 of a forget set."""

from __future__ import annotations


def add_anchors(sub) -> None:
    """`anchors`: MVI's anchor images and texts, written to a folder."""
    p = sub.add_parser("anchors", help="fit (or reuse) MVI and write anchor samples: R_1 "
                       "images and R_2 texts for a forget set")
    p.add_argument("--data", default=None, help="world root (default: the embedded world)")
    p.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    p.add_argument("--forget", required=True, help="forget list (Df/.../image-<seed>.txt)")
    p.add_argument("--out", required=True)
    p.add_argument("--strategy", default="swap",
                   choices=["swap", "no_swap", "only_u", "only_k", "random"],
                   help="paper Table 3: swap is the method's own")
    p.add_argument("--n-images", type=int, default=1, help="N_R1 per forgetting pair")
    p.add_argument("--n-texts", type=int, default=1, help="N_R2 per forgetting pair")
    p.add_argument("--captioner", default="embedded", help="'embedded', a folder or a hub "
                   "id such as Salesforce/blip2-opt-2.7b")
    p.add_argument("--painter", default="embedded", help="'embedded', a folder or an SD id")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fit-steps", type=int, default=150, help="MVI optimisation steps")
    p.add_argument("--no-cache", action="store_true", help="fit MVI afresh, store nothing")
    p.set_defaults(func=run_anchors)


def run_anchors(a) -> None:
    from mmu_core.mvi.anchors import anchors, write_anchors
    from mmu_core.mvi.fit import fit_or_load
    from mmu_core.mvi.model import MVIConfig

    captioner, painter, sc, forget = _mvi_inputs(a)
    config = MVIConfig(seed=a.seed, steps=a.fit_steps)
    model, summary = fit_or_load(captioner, painter, sc.train, config, cache=not a.no_cache)
    items = anchors(model, captioner, painter, forget, strategy=a.strategy,
                    n_images=a.n_images, n_texts=a.n_texts, seed=a.seed, pool=sc.train)
    index = write_anchors(items, a.out)
    print(f"MVI {'from the cache' if summary['cache_hit'] else 'fitted'} "
          f"({summary['cache_key']}); anchors for {len(items)} pairs in {index}")


def _mvi_inputs(a):
    """Generators, scenario and forgetting pairs named on the command line."""
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_forget_ids, load_scenario
    from mmu_core.models.generators import load_captioner, load_painter

    root = a.data or default_world()
    sc = load_scenario(root, a.scenario)
    forget, _ = sc.split(load_forget_ids(a.forget))
    return load_captioner(a.captioner), load_painter(a.painter), sc, forget
