"""``kgrec`` command line: a thin shell over the public API in :mod:`kgrec`.

Errors a user can fix (:class:`kgrec.errors.KgrecError`) print as one line
and exit with status 2; ``--debug`` shows the traceback instead. Every heavy
import (torch, pandas, PyG) happens inside a command's handler, so ``--help``
and argument errors answer at once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

from kgrec import argtypes
from kgrec.errors import KgrecError, KgrecWarning
from kgrec.memory import keep_freed_memory
from kgrec.progress import close_bars, log_line


EXAMPLES = {
    "build": "example: kgrec build graphs/examples/movies_books.toml --out artifacts/example",
    "info": "example: kgrec info artifacts/example --json",
    "kg-signal": "example: kgrec kg-signal artifacts/lastfm_satori --csv reports/lastfm_kg_signal.csv",
    "synth": "example: kgrec synth --edges 10M --seed 0 --out data/synth-10m && "
             "kgrec build data/synth-10m/spec.toml --out artifacts/synth-10m",
    "export-graph": "example: kgrec export-graph artifacts/example --format ntriples --out artifacts/example-rdf",
    "datasets": "example: kgrec datasets --fetch movielens-100k",
    "verify": "examples:\n  kgrec verify artifacts/example\n  kgrec verify runs/example",
    "train": "examples:\n  kgrec train --graph artifacts/example --out runs/example\n"
             "  kgrec train configs/amazon_cloth_to_sport.toml --seed 1 --set finetune.mode=upper\n"
             "  kgrec train --graph artifacts/example --mode target_only --set target_only.epochs=5",
    "recommend": "examples:\n  kgrec recommend runs/example --user u1 --k 5\n"
                 "  kgrec recommend runs/example --history my_movies.txt --explain\n"
                 "  kgrec recommend runs/example --users users.txt --out recs.parquet",
    "explain": "example: kgrec explain runs/example --user u1 --item books:solaris",
    "export": "example: kgrec export runs/example --format faiss --out exports/example-faiss",
    "update": "examples:\n  kgrec update runs/example --interactions new_feedback.csv --out runs/example-2 --epochs 3\n"
              "  kgrec update runs/example --new-items new_books.ttl --out runs/example-new",
    "evaluate": "example: kgrec evaluate runs/example --split test --ks 10,20",
    "benchmark": "examples:\n  kgrec benchmark graphs/examples/movies_books.toml --out reports/example --seeds 0,1\n"
                 "  kgrec benchmark graphs/amazon_cloth_to_sport.toml --out reports/cloth_to_sport "
                 "--config configs/amazon_cloth_to_sport.toml\n"
                 "  kgrec benchmark --graph artifacts/lastfm_satori --models bprmf,lightgcn,kgrec_target_only",
    "tune": "examples:\n  kgrec tune graphs/examples/movies_books.toml --out tuning/example --trials 20\n"
            "  kgrec tune --graph artifacts/lastfm_satori --out tuning/lastfm --trials 50 "
            "--config configs/lastfm_satori.toml --space space.toml\n"
            "  kgrec tune --graph artifacts/lastfm_satori --out tuning/lastfm --trials 80   # continues the study\n"
            "  kgrec train tuning/lastfm/best.toml\n"
            "  kgrec tune graphs/amazon_electronic_to_phone.toml graphs/art_office.toml --out tuning/amazon --trials 12"
            "   # defaults across pairs",
}


def _build(args: argparse.Namespace) -> int:
    from kgrec.atomic import check_output
    from kgrec.graph import build_graph, load_spec
    from kgrec.graph.artifact import is_artifact_dir
    from kgrec.graph.info import format_info, graph_info
    from kgrec.graph.spec import with_seed

    spec = load_spec(args.spec)
    if args.seed is not None:
        spec = with_seed(spec, args.seed)
    out = Path(args.out)
    check_output(out, overwrite=args.overwrite, ours=is_artifact_dir, what="graph artifact")
    start = time.perf_counter()
    graph = build_graph(spec, progress=not args.quiet)
    graph.save(out)
    if not args.quiet:
        print(format_info(graph_info(graph)))
        print(f"\nwrote {out} in {time.perf_counter() - start:.1f}s")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from kgrec.data.synth import SynthConfig, parse_edges, synth

    start = time.perf_counter()
    res = synth(SynthConfig(edges=parse_edges(args.edges), seed=args.seed, duplicates=args.duplicates),
                args.out, overwrite=args.overwrite)
    if not args.quiet:
        c = res.counts
        print(f"{c['users']:,} users ({c['shared_users']:,} in both domains), reviews source {c['source_reviews']:,} "
              f"target {c['target_reviews']:,}, items {c['source_items']:,} + {c['target_items']:,} "
              f"({c['duplicate_listings']:,} duplicate listings), {c['kg_triples']:,} KG triples; about "
              f"{c['edges_expected']:,} graph edges")
        print(f"wrote {res.out} in {time.perf_counter() - start:.1f}s; next: kgrec build {res.spec} --out ARTIFACT")
    return 0


def _info(args: argparse.Namespace) -> int:
    from kgrec.graph import load_graph
    from kgrec.graph.info import format_info, graph_info

    info = graph_info(load_graph(args.graph))
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _kg_signal(args: argparse.Namespace) -> int:
    from kgrec.graph import load_graph
    from kgrec.graph.signal import format_signal, kg_signal

    if args.csv:
        from kgrec.atomic import check_file_output
        check_file_output(args.csv, overwrite=args.overwrite, what="CSV file")
    table = kg_signal(load_graph(args.graph), args.domain, args.shuffles, args.seed, args.held_out)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        print(format_signal(table))
    if args.csv:
        from kgrec.atomic import atomic_file

        with atomic_file(args.csv, overwrite=args.overwrite, what="CSV file") as f:
            table.to_csv(f, index=False)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from kgrec.atomic import check_file_output, check_output
    from kgrec.graph import load_graph
    from kgrec.graph.export import export_graph

    if args.format in ("graphml", "edgelist"):
        check_file_output(args.out, overwrite=args.overwrite, what=f"{args.format} file")
    else:
        check_output(args.out, overwrite=args.overwrite, ours=("spec.toml", "graph.nt"), what="RDF export directory")
    out = export_graph(load_graph(args.graph), args.out, args.format, args.overwrite)
    print(f"wrote {out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from kgrec.serve.verify import verify

    report = verify(args.dir)
    print("\n".join(report.lines()))
    return 0 if report.ok else 2


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


def _log(args: argparse.Namespace):
    """Where a command's one-line progress messages go: stderr (above any bar), or nowhere with --quiet."""
    return (lambda _m: None) if args.quiet else log_line


def parse_overrides(items: list[str] | None) -> dict:
    """``--set KEY=VALUE`` items as a dict; values are TOML literals (``5``, ``0.1``, ``true``,
    ``[10, 20]``), anything else a string.

    Raises:
        KgrecError: an item without ``=`` or without a key.
    """
    import tomllib

    from kgrec.io import check_utf8_arg

    out = {}
    for item in items or []:
        key, eq, value = check_utf8_arg(item, "--set").partition("=")
        if not eq or not key.strip():
            raise KgrecError(f"--set expects KEY=VALUE (e.g. pretrain.epochs=5), got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def _train(args: argparse.Namespace) -> int:
    from kgrec.train import train
    from kgrec.train.config import make_config

    overrides = parse_overrides(args.set)
    for key in ("graph", "mode", "seed", "device"):
        if getattr(args, key) is not None:
            overrides[key] = str(Path(getattr(args, key)).resolve()) if key == "graph" else getattr(args, key)
    if args.config is None and "graph" not in overrides:
        raise KgrecError("give a config file or --graph DIR (a graph artifact built by 'kgrec build')")
    cfg = make_config(args.config, overrides)
    out = args.out or Path("runs") / f"{Path(cfg.graph).name}-{cfg.mode}-seed{cfg.seed}"
    from kgrec.train.distributed import init_from_env, is_lost_rank, lost_rank_message, shutdown
    world = init_from_env(cfg.device)  # one process unless torchrun started this one
    try:
        result = train(cfg, out, resume=args.resume, overwrite=args.overwrite,  # rank 0 alone shows progress
                       progress=not args.quiet and world.is_main,
                       log=_log(args) if world.is_main else (lambda _m: None), world=world)
    except RuntimeError as e:
        if world.size > 1 and is_lost_rank(e):
            raise KgrecError(lost_rank_message(world, e)) from None
        raise
    finally:
        shutdown(world)
    if not world.is_main:
        return 0
    k = cfg.eval.k
    print(json.dumps({"run": str(result.run_dir), "valid": {m: round(v, 5) for m, v in result.valid.items()
                                                            if m.endswith(f"@{k}")},
                      "test": {m: round(v, 5) for m, v in result.test.items() if m.endswith(f"@{k}")}}))
    return 0


def _print_recs(run, df, as_json: bool, explain_k: int) -> None:
    from kgrec.serve import explain

    rows = []
    for user, recs in df.groupby("user", sort=False):
        for r in recs.itertuples():
            row = {"user": user, "rank": r.rank, "item": r.item, "label": r.label, "score": round(float(r.score), 5)}
            if explain_k and user != "new":
                row["paths"] = [e.text for e in explain(run, user, f"target:{r.item}", explain_k)]
            rows.append(row)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    for row in rows:
        print(f"{row['user']:>8} {row['rank']:>3}  {row['score']:>9.4f}  {row['label']}  [{row['item']}]")
        for p in row.get("paths", []):
            print(f"{'':>16}because {p}")


def _recommend(args: argparse.Namespace) -> int:
    from kgrec.serve import load_run, read_history, recommend_from_history, recommend_many

    given = [x for x in (args.user, args.users, args.history) if x]
    if len(given) != 1:
        raise KgrecError("give exactly one of --user ID, --users FILE or --history FILE")
    if args.out:
        from kgrec.atomic import check_file_output
        if not args.users:
            raise KgrecError("--out writes the recommendations of --users FILE; it is not used with --user or "
                             "--history")
        check_file_output(args.out, overwrite=args.overwrite, what="recommendations file")
    run = load_run(args.run, args.device)
    if args.history:
        df = recommend_from_history(run, read_history(run, args.history), args.k, not args.include_seen)
    elif args.users:
        path = Path(args.users)
        if not path.is_file():
            raise KgrecError(f"{path}: users file not found")
        from kgrec.io import read_text
        users = [line.strip() for line in read_text(path, "users file").splitlines() if line.strip()]
        df = recommend_many(run, users, args.k, not args.include_seen)
        if args.out:
            from kgrec.atomic import atomic_file
            with atomic_file(args.out, "wb", overwrite=args.overwrite, what="recommendations file") as f:
                df.drop(columns="item_index").to_parquet(f, index=False)
            print(f"{len(users):,} users, {len(df):,} recommendations -> {args.out}")
            return 0
    else:
        df = recommend_many(run, [args.user], args.k, not args.include_seen)
    _print_recs(run, df, args.json, args.paths if args.explain else 0)
    return 0


def _explain(args: argparse.Namespace) -> int:
    from kgrec.serve import explain, load_run

    run = load_run(args.run, args.device)
    paths = explain(run, args.user, args.item, args.paths)
    if args.json:
        print(json.dumps([{"score": e.score, "text": e.text, "nodes": e.nodes, "relations": e.relations}
                          for e in paths], indent=1))
    elif not paths:
        print(f"no path of at most 4 edges joins user {args.user} to {args.item} in the graph")
    for e in paths if not args.json else []:
        print(f"{e.score:>9.5f}  {e.text}")
    return 0


def _export_embeddings(args: argparse.Namespace) -> int:
    from kgrec.serve import export_embeddings, load_run

    out = export_embeddings(load_run(args.run, args.device), args.out, args.format, args.overwrite,
                            faiss_index=args.faiss_index)
    kind = f" ({args.faiss_index or 'flat'} index)" if args.format == "faiss" else ""
    print(f"{args.format} export{kind} -> {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


def _update(args: argparse.Namespace) -> int:
    from kgrec.serve import add_items, load_run, update

    if bool(args.interactions) == bool(args.new_items):
        raise KgrecError("give --interactions FILE (new feedback, fine-tuned) or --new-items FILE (new items with "
                         "their knowledge only, no training), one of the two")
    if args.new_items:
        report = add_items(load_run(args.run, args.device), args.new_items, args.out, args.overwrite)
        if args.json:
            print(json.dumps(report, indent=1))
            return 0
        print(f"added {report['new_items']} new items ({report['new_entities']} new entities, {report['edges_added']} "
              f"edges; {report['facts_skipped']} of {report['facts']} facts skipped: unknown relation or entity); "
              f"no retraining -> {args.out}")
        return 0
    log = _log(args)
    _, report = update(load_run(args.run, args.device), args.interactions, args.out, args.epochs, args.overwrite,
                       progress=not args.quiet, log=log)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"added {report['new_users']} users, {report['new_items']} items, {report['new_interactions']} "
          f"interactions ({report['skipped_known']} already known, skipped); fine-tuned {args.epochs} epochs -> {args.out}")
    k = "ndcg@10"
    for split in ("valid", "test"):
        before, after = report["before"].get(split, {}), report["after"].get(split, {})
        if before:
            print(f"  {split:<5} {k} {before[k]:.4f} -> {after[k]:.4f}   recall@10 {before['recall@10']:.4f} -> "
                  f"{after['recall@10']:.4f}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from kgrec.serve import evaluate_run, load_run

    res = evaluate_run(load_run(args.run, args.device), args.split, args.ks)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    names = [m for m in res["all"] if m != "users"]
    width = max(12, *(len(g) + 2 for g in res))
    print(f"{'group':<{width}}{'users':>8}" + "".join(f"{m:>13}" for m in names))
    for group, m in res.items():
        print(f"{group:<{width}}{m['users']:>8,}" + "".join(f"{m[n]:>13.4f}" for n in names)
              + (f"   (ranked among {m['candidates']:,} items)" if "candidates" in m else ""))
    return 0


def _spec_or_graph(args: argparse.Namespace, out: Path, built: str = "graph"):
    """``(graph directory, artifact)`` of ``args.spec`` (built into OUT/``built``, or reused when its spec
    is unchanged) or of ``args.graph``."""
    import json as _json

    from kgrec.graph import build_graph, load_graph, load_spec

    if bool(args.spec) == bool(args.graph):
        raise KgrecError("give a graph spec (built into OUT/graph, or reused when unchanged) or --graph DIR, not both")
    if args.graph:
        graph_dir = Path(args.graph)
        artifact = load_graph(graph_dir)
    else:
        spec = load_spec(args.spec)
        graph_dir = out / built
        wanted = _json.loads(_json.dumps(spec.to_dict(), default=str))
        from kgrec.graph.artifact import is_artifact_dir, read_manifest
        if is_artifact_dir(graph_dir) and read_manifest(graph_dir).get("spec") == wanted:
            artifact = load_graph(graph_dir)
        else:
            artifact = build_graph(spec, progress=not args.quiet)
            artifact.save(graph_dir)
    return graph_dir, artifact


def _benchmark(args: argparse.Namespace) -> int:
    from kgrec.atomic import check_directory
    from kgrec.benchmark import CROSS_DOMAIN, DEFAULT_MODELS, SOURCE_MODELS, run_benchmark, save_settings
    from kgrec.train.config import make_config

    out = Path(args.out)
    check_directory(out, "report directory")
    graph_dir, artifact = _spec_or_graph(args, out)
    overrides = {"graph": str(graph_dir.resolve()), "device": args.device, **parse_overrides(args.set)}
    config = make_config(args.config, overrides)
    models = tuple(args.models.split(",")) if args.models else DEFAULT_MODELS + (
        ("kgrec_transfer_upper",) if config.model.transform or config.model.layer == "rgcn" else ()) + (
        ("kgrec_transfer_frozen",) if config.model.head != "dot" else ()) + (
        ("kgrec_transfer_target",) if config.finetune.graph == "merged" else ())
    if not args.models and not len(artifact.split("train", "source")[0]):  # one domain: nothing to transfer
        models = tuple(m for m in models if m not in SOURCE_MODELS + CROSS_DOMAIN)
    if not args.models and len(artifact.cold_items()):  # new items: the content baselines the graph can feed
        has_text = "text" in artifact.nodes["item"] and artifact.nodes["item"]["text"].astype(str).str.strip().any()
        has_links = any(s == "item" and d == "entity" for s, _, d in artifact.data.edge_types)
        models += (("kg_knn",) if has_links else ()) + (("text_knn",) if has_text else ())
    start = time.perf_counter()
    log = _log(args)
    run_benchmark(artifact, config, out, models, args.seeds, args.sampled, log, jobs=args.jobs)
    wall = time.perf_counter() - start
    save_settings(out, {"spec": args.spec, "graph": str(graph_dir), "models": models, "seeds": args.seeds,
                        "config": config.to_dict(), "wall_seconds": round(wall, 1)})
    print((out / "report.md").read_text())
    print(f"report -> {out} ({wall / 60:.1f} min)")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from kgrec.atomic import check_directory
    from kgrec.train.config import make_config
    from kgrec.tune import default_space, format_study, graph_names, load_space, tune

    out = Path(args.out)
    check_directory(out, "study directory")
    sources = [(spec, None) for spec in args.spec or []] + [(None, g) for g in args.graph or []] or [(None, None)]
    if args.spec and args.graph:
        raise KgrecError("give graph specs (built into OUT) or --graph DIRs, not both")
    # one graph is built into OUT/graph; several into OUT/graphs/NAME (each reused when its spec is unchanged)
    names = graph_names([Path(spec or g or "graph").stem for spec, g in sources])
    graphs = dict(_spec_or_graph(argparse.Namespace(spec=spec, graph=g, quiet=args.quiet), out,
                                 "graph" if len(sources) == 1 else f"graphs/{name}")
                  for (spec, g), name in zip(sources, names))
    graph_dir, artifact = next(iter(graphs.items()))
    overrides = parse_overrides(args.set)
    config = make_config(args.config, {"graph": str(graph_dir.resolve()), "device": args.device, **overrides})
    space = load_space(args.space, config) if args.space else default_space(list(graphs.values()), config)
    log = _log(args)
    for key in sorted(set(overrides) & set(space)):
        log(f"note: --set {key} is ignored: the search space sets {key} in every trial (fix it with a --space "
            f"file without it)")
    study = tune(graphs, config, out, args.trials, seed=args.seed, space=space, log=log)
    print(format_study(study))
    print(f"study -> {out / 'study.db'}; best config -> {out / 'best.toml'} (kgrec train {out / 'best.toml'})")
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kgrec", description="Cross-domain recommendation over a knowledge graph.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("--quiet", action="store_true", dest="quiet_all",
                   help="as each command's --quiet: no progress bars, no progress lines (bars are drawn only "
                        "on a terminal; KGREC_PROGRESS=0 turns them off too)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a graph artifact from a spec", epilog=EXAMPLES["build"])
    b.add_argument("spec", help="graph spec (TOML), e.g. graphs/ml100k_genres.toml")
    b.add_argument("--out", required=True, help="artifact directory to write (atomically)")
    b.add_argument("--seed", type=argtypes.seed, default=None, help="override the spec's split seed")
    b.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    b.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    b.set_defaults(func=_build)

    y = sub.add_parser("synth", help="generate a two-domain dataset with a KG (Parquet + N-Triples + spec)",
                       epilog=EXAMPLES["synth"])
    y.add_argument("--edges", required=True, help="about how many edges the built graph has: 10M, 500k, 2000000")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--out", required=True, help="directory to write (atomically)")
    y.add_argument("--duplicates", type=float, default=0.02,
                   help="share of target items that are listings of source items (0: none)")
    y.add_argument("--overwrite", action="store_true", help="replace a directory kgrec synth wrote")
    y.add_argument("--quiet", action="store_true")
    y.set_defaults(func=_synth)

    i = sub.add_parser("info", help="summarise a graph artifact", epilog=EXAMPLES["info"])
    i.add_argument("graph", help="artifact directory")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.set_defaults(func=_info)

    s = sub.add_parser("kg-signal", help="per relation: do items sharing a KG neighbour share users beyond popularity?",
                       epilog=EXAMPLES["kg-signal"])
    s.add_argument("graph", help="artifact directory")
    s.add_argument("--domain", default="target", choices=["source", "target"], help="whose items and interactions")
    s.add_argument("--held-out", default="valid", choices=["valid", "test", ""],
                   help="split whose pairs the held-out share counts ('' for none)")
    s.add_argument("--shuffles", type=argtypes.positive_int, default=20, help="random deals of the items' neighbours (the chance level)")
    s.add_argument("--seed", type=argtypes.seed, default=0)
    s.add_argument("--csv", help="also write the whole table (every relation) to this CSV file")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")
    s.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    s.set_defaults(func=_kg_signal)

    e = sub.add_parser("export-graph", help="export a graph for networkx or as RDF", epilog=EXAMPLES["export-graph"])
    e.add_argument("graph", help="artifact directory")
    e.add_argument("--format", default="graphml", choices=["graphml", "edgelist", "ntriples", "turtle"])
    e.add_argument("--out", required=True, help="file (graphml, edgelist) or directory (ntriples, turtle)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing file, or an earlier RDF export")
    e.set_defaults(func=_export)

    d = sub.add_parser("datasets", help="list registered datasets, or fetch them", epilog=EXAMPLES["datasets"])
    d.add_argument("--fetch", nargs="*", metavar="NAME", help="download (and verify) these datasets")
    d.set_defaults(func=_datasets)

    f = sub.add_parser("verify", help="check a graph artifact's or a run's files against their recorded checksums",
                       epilog=EXAMPLES["verify"], formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("dir", help="a graph artifact or run directory; prints each file's state, exits 2 if any is wrong")
    f.set_defaults(func=_verify)

    t = sub.add_parser("train", help="pre-train and fine-tune (or train target-only) into a run directory",
                       epilog=EXAMPLES["train"], formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", help="training config (TOML); optional with --graph")
    t.add_argument("--graph", help="graph artifact directory (overrides the config's)")
    t.add_argument("--mode", choices=["transfer", "target_only"], help="transfer (default) or the target-only control")
    t.add_argument("--seed", type=argtypes.seed, help="seed for initialisation, sampling and shuffling")
    t.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set pretrain.epochs=5 --set model.head=distmult")
    t.add_argument("--out", help="run directory (default runs/<graph>-<mode>-seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue a killed run from its checkpoints")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    t.set_defaults(func=_train)

    def run_parser(name: str, help: str):
        q = sub.add_parser(name, help=help, epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)
        q.add_argument("run", help="run directory written by 'kgrec train'")
        q.add_argument("--device", default="cpu", help="cpu, cuda or auto")
        return q

    r = run_parser("recommend", "top-K target items for a user, a file of users, or a new user's history")
    r.add_argument("--user", help="a user id of the graph")
    r.add_argument("--users", help="file with one user id per line (batch mode; with --out writes Parquet)")
    r.add_argument("--history", help="a new user's items, one per line ('domain:id' or a target item id)")
    r.add_argument("--k", type=argtypes.positive_int, default=10)
    r.add_argument("--include-seen", action="store_true", help="keep items the user already interacted with (train/valid)")
    r.add_argument("--explain", action="store_true", help="print the KG paths behind each recommendation")
    r.add_argument("--paths", type=argtypes.positive_int, default=2, help="paths per item with --explain")
    r.add_argument("--json", action="store_true")
    r.add_argument("--out", help="Parquet file for --users")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never a directory)")
    r.set_defaults(func=_recommend)

    x = run_parser("explain", "the KG paths from a user to an item, ranked by the trained model")
    x.add_argument("--user", required=True)
    x.add_argument("--item", required=True, help="item id ('domain:id', or looked up in the target first)")
    x.add_argument("--paths", type=argtypes.positive_int, default=3)
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=_explain)

    o = run_parser("export", "export node embeddings (parquet, npy, projector, word2vec, faiss)")
    o.add_argument("--format", default="parquet", choices=["parquet", "npy", "projector", "word2vec", "faiss"])
    o.add_argument("--faiss-index", choices=["flat", "hnsw"],
                   help="with --format faiss: flat (default; exact inner-product search) or hnsw (approximate, "
                        "faster on large catalogues: M 64, efConstruction 40, efSearch 256; docs/guide/serving.md)")
    o.add_argument("--out", required=True, help="output directory (written atomically)")
    o.add_argument("--overwrite", action="store_true")
    o.set_defaults(func=_export_embeddings)

    u = run_parser("update", "fold new interactions into a run and fine-tune from its weights, or add new items "
                             "with their knowledge only (no training)")
    u.add_argument("--interactions", help="CSV/TSV/Parquet with user, item[, domain]")
    u.add_argument("--new-items", help="new target items with only their knowledge: RDF (Turtle, N-Triples, ...) or "
                                       "a CSV/TSV of item, relation, entity[, label] rows; ranked at once, no training")
    u.add_argument("--out", required=True, help="the new run directory")
    u.add_argument("--epochs", type=argtypes.non_negative_int, default=3)
    u.add_argument("--overwrite", action="store_true")
    u.add_argument("--quiet", action="store_true")
    u.add_argument("--json", action="store_true", help="print the whole report (also in OUT/update.json)")
    u.set_defaults(func=_update)

    v = run_parser("evaluate", "full-ranking metrics of a run on its held-out target split")
    v.add_argument("--split", default="test", choices=["valid", "test"])
    v.add_argument("--ks", type=argtypes.positive_ints, default=(10, 20), help="comma-separated cut-offs")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_evaluate)

    k = sub.add_parser("benchmark", help="train kgrec and the baselines over seeds and write a report",
                       epilog=EXAMPLES["benchmark"], formatter_class=argparse.RawDescriptionHelpFormatter)
    k.add_argument("spec", nargs="?", help="graph spec (TOML); the graph is built into OUT/graph")
    k.add_argument("--graph", help="an existing graph artifact instead of a spec")
    k.add_argument("--out", required=True, help="report directory")
    k.add_argument("--config", help="training config (TOML) for kgrec and the shared budget")
    k.add_argument("--models", help="comma-separated; default: every baseline, kgrec_target_only, kgrec_transfer, "
                                    "kgrec_transfer_target (fine-tuned on the target's own graph) unless the config "
                                    "already fine-tunes there, and kgrec_transfer_upper / kgrec_transfer_frozen "
                                    "where the model has the weights they fine-tune")
    k.add_argument("--seeds", type=argtypes.seeds, default=(0, 1, 2), help="comma-separated")
    k.add_argument("--sampled", type=argtypes.non_negative_int, default=999, help="negatives per test item in the sampled protocol (0: off)")
    k.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, as for 'kgrec train'")
    k.add_argument("--device", default="cpu")
    k.add_argument("--jobs", type=argtypes.positive_int, default=1,
                   help="(seed, model) trainings run at once, each in its own process with an equal share of the CPU threads "
                        "(docs/results.md has the wall times measured with it)")
    k.add_argument("--quiet", action="store_true")
    k.set_defaults(func=_benchmark)

    n = sub.add_parser("tune", help="search training settings with Optuna, chosen on validation NDCG",
                       epilog=EXAMPLES["tune"], formatter_class=argparse.RawDescriptionHelpFormatter)
    n.add_argument("spec", nargs="*", help="graph spec (TOML), built into OUT/graph; several: each trial trains on "
                                           "each (built into OUT/graphs/NAME) and scores their geometric mean")
    n.add_argument("--graph", action="append", help="an existing graph artifact instead of a spec (repeat it for "
                                                    "several)")
    n.add_argument("--out", required=True, help="study directory (study.db, trials.csv, best.toml, trials/); "
                                                "an existing study there is continued")
    n.add_argument("--trials", type=argtypes.positive_int, required=True, help="finished trials wanted in total, earlier runs' included")
    n.add_argument("--config", help="base training config (TOML): every key the search leaves alone")
    n.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, as for 'kgrec train'")
    n.add_argument("--space", help="search space (TOML): key = [low, high], { low, high, log = true } or "
                                   "{ choices = [...] }; default: loss weights, model.layers, model.dim, pretrain.lr, "
                                   "loss.l2")
    n.add_argument("--seed", type=argtypes.seed, default=0, help="the sampler's seed (the trainings use the config's seed)")
    n.add_argument("--device", default="cpu")
    n.add_argument("--quiet", action="store_true", help="no line per trial")
    n.set_defaults(func=_tune)
    return p


_LINE_BREAKS = {c: repr(chr(c))[1:-1] for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}


def one_line(message: str) -> str:
    """``message`` with its line breaks escaped (``\\n``, ``\\r``, ...): a file's text quoted in a message can
    hold them, and an error is always exactly one line."""
    return message.translate(_LINE_BREAKS)


_show_warning = warnings.showwarning


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A :class:`KgrecWarning` as one ``kgrec: warning:`` line (above any bar); any other warning as Python shows it."""
    if issubclass(category, KgrecWarning):
        log_line(f"kgrec: warning: {one_line(str(message))}")
    else:
        _show_warning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.quiet = getattr(args, "quiet", False) or args.quiet_all
    warnings.showwarning = _print_warning
    keep_freed_memory()
    try:
        return args.func(args)
    except KgrecError as e:
        close_bars()
        if args.debug:
            raise
        print(f"kgrec: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        close_bars()
        print("kgrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0
    finally:  # a bug's traceback, too, starts on a clean line
        close_bars()


if __name__ == "__main__":
    sys.exit(main())
