"""Command line: `python -m mmu_core <command> ...` (see `--help` of each command).
A thin shell: the commands live in `mmu_core/cli/`, one module per group, each parsing its
arguments and calling one subpackage; this file assembles them and dispatches."""

from __future__ import annotations

import argparse
import sys

from mmu_core.cli import anchors, bench, data, evaluation, forget, training

# every top-level command, in `--help` order: each adds its parser and handler
COMMANDS = (data.add_data, training.add_train, evaluation.add_evaluate,
            evaluation.add_compare, training.add_train_generators, anchors.add_anchors,
            forget.add_forget, forget.add_audit, forget.add_export, forget.add_verify,
            bench.add_bench, evaluation.add_table)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mmu_core",
                                description="Multimodal machine unlearning engine.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from mmu_core.data.inputs import InputError
    from mmu_core.data.loaders import DataError
    from mmu_core.erasure.export import ExportError
    from mmu_core.models.backbone import UnknownModelError

    try:
        args.func(args)
    except (DataError, UnknownModelError, InputError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as err:  # unknown method or setting
        if "unexpected keyword" not in str(err) and "unknown method" not in str(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
