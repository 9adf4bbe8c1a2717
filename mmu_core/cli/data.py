"""`data generate`: the procedural world, written in the real datasets' formats."""

from __future__ import annotations


def add_data(sub) -> None:
    """`data` and its one sub-command, `generate`."""
    data = sub.add_parser("data", help="procedural data").add_subparsers(dest="data_cmd",
                                                                          required=True)
    p = data.add_parser("generate", help="write the procedural world in real formats")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="default", choices=["default", "tiny"])
    p.set_defaults(func=run_data_generate)


def run_data_generate(a) -> None:
    import time

    from mmu_core.data.generate import generate_world

    t = time.time()
    m = generate_world(a.out, seed=a.seed, size=a.size)
    print(f"wrote the {a.size} world (seed {a.seed}) to {a.out} in {time.time() - t:.1f} s; "
          f"fingerprint {m['fingerprint'][:16]}")
