"""``kgrec`` command line: a thin shell over the public API in :mod:`kgrec`.

Errors a user can fix (:class:`kgrec.errors.KgrecError`) print as one line
and exit with status 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kgrec.errors import KgrecError

EXAMPLES = {
    "build": "example: kgrec build graphs/examples/movies_books.toml --out artifacts/example",
    "info": "example: kgrec info artifacts/example --json",
    "export-graph": "example: kgrec export-graph artifacts/example --format ntriples --out artifacts/example-rdf",
    "datasets": "example: kgrec datasets --fetch movielens-100k",
    "train": "examples:\n  kgrec train --graph artifacts/example --out runs/example\n"
             "  kgrec train configs/amazon_cloth_to_sport.toml --seed 1 --set finetune.mode=upper\n"
             "  kgrec train --graph artifacts/example --mode target_only --set target_only.epochs=5",
}


def _build(args: argparse.Namespace) -> int:
    from kgrec.graph import build_graph, load_spec
    from kgrec.graph.info import format_info, graph_info
    from kgrec.graph.spec import with_seed

    spec = load_spec(args.spec)
    if args.seed is not None:
        spec = with_seed(spec, args.seed)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise KgrecError(f"{out} already exists; pass --overwrite to replace it")
    start = time.perf_counter()
    graph = build_graph(spec, progress=not args.quiet)
    graph.save(out)
    if not args.quiet:
        print(format_info(graph_info(graph)))
        print(f"\nwrote {out} in {time.perf_counter() - start:.1f}s")
    return 0


def _info(args: argparse.Namespace) -> int:
    from kgrec.graph import load_graph
    from kgrec.graph.info import format_info, graph_info

    info = graph_info(load_graph(args.graph))
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _export(args: argparse.Namespace) -> int:
    from kgrec.graph import load_graph
    from kgrec.graph.export import export_graph

    out = export_graph(load_graph(args.graph), args.out, args.format)
    print(f"wrote {out}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from kgrec.data.datasets import DATASETS, data_dir, ensure_dataset

    for name in args.fetch or []:
        print(f"{name}: {ensure_dataset(name)}")
    if not args.fetch:
        root = data_dir()
        for ds in DATASETS.values():
            present = all((root / ds.name / f).exists() for f in ds.files)
            print(f"{ds.name:<20} {'present' if present else 'missing':<8} {ds.description}")
        print(f"\ndata directory: {root}")
    return 0


def _override_value(text: str):
    """``--set`` values are TOML literals (``5``, ``0.1``, ``true``, ``[10, 20]``); anything else is a string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _train(args: argparse.Namespace) -> int:
    from kgrec.train import train
    from kgrec.train.config import make_config

    overrides = {}
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise KgrecError(f"--set expects KEY=VALUE (e.g. pretrain.epochs=5), got {item!r}")
        overrides[key.strip()] = _override_value(value.strip())
    for key in ("graph", "mode", "seed", "device"):
        if getattr(args, key) is not None:
            overrides[key] = str(Path(getattr(args, key)).resolve()) if key == "graph" else getattr(args, key)
    if args.config is None and "graph" not in overrides:
        raise KgrecError("give a config file or --graph DIR (a graph artifact built by 'kgrec build')")
    cfg = make_config(args.config, overrides)
    out = args.out or Path("runs") / f"{Path(cfg.graph).name}-{cfg.mode}-seed{cfg.seed}"
    from tqdm.auto import tqdm

    log = (lambda _m: None) if args.quiet else (lambda m: tqdm.write(m, file=sys.stderr))
    result = train(cfg, out, resume=args.resume, overwrite=args.overwrite,
                   progress=not args.quiet and sys.stderr.isatty(), log=log)
    k = cfg.eval.k
    print(json.dumps({"run": str(result.run_dir), "valid": {m: round(v, 5) for m, v in result.valid.items()
                                                            if m.endswith(f"@{k}")},
                      "test": {m: round(v, 5) for m, v in result.test.items() if m.endswith(f"@{k}")}}))
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kgrec", description="Cross-domain recommendation over a knowledge graph.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a graph artifact from a spec", epilog=EXAMPLES["build"])
    b.add_argument("spec", help="graph spec (TOML), e.g. graphs/ml100k_genres.toml")
    b.add_argument("--out", required=True, help="artifact directory to write (atomically)")
    b.add_argument("--seed", type=int, default=None, help="override the spec's split seed")
    b.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    b.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    b.set_defaults(func=_build)

    i = sub.add_parser("info", help="summarise a graph artifact", epilog=EXAMPLES["info"])
    i.add_argument("graph", help="artifact directory")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.set_defaults(func=_info)

    e = sub.add_parser("export-graph", help="export a graph for networkx or as RDF", epilog=EXAMPLES["export-graph"])
    e.add_argument("graph", help="artifact directory")
    e.add_argument("--format", default="graphml", choices=["graphml", "edgelist", "ntriples", "turtle"])
    e.add_argument("--out", required=True, help="file (graphml, edgelist) or directory (ntriples, turtle)")
    e.set_defaults(func=_export)

    d = sub.add_parser("datasets", help="list registered datasets, or fetch them", epilog=EXAMPLES["datasets"])
    d.add_argument("--fetch", nargs="*", metavar="NAME", help="download (and verify) these datasets")
    d.set_defaults(func=_datasets)

    t = sub.add_parser("train", help="pre-train and fine-tune (or train target-only) into a run directory",
                       epilog=EXAMPLES["train"], formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", help="training config (TOML); optional with --graph")
    t.add_argument("--graph", help="graph artifact directory (overrides the config's)")
    t.add_argument("--mode", choices=["transfer", "target_only"], help="transfer (default) or the target-only control")
    t.add_argument("--seed", type=int, help="seed for initialisation, sampling and shuffling")
    t.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set pretrain.epochs=5 --set model.head=distmult")
    t.add_argument("--out", help="run directory (default runs/<graph>-<mode>-seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue a killed run from its checkpoints")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    t.set_defaults(func=_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except KgrecError as e:
        if args.debug:
            raise
        print(f"kgrec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
