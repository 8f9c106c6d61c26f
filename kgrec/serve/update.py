"""Periodic update: fold new feedback into a trained run without retraining from scratch.

New interactions become training edges (new users and new items are appended,
every existing index is kept), the embedding tables grow by those rows
(initialised at the mean of their type), and the model is fine-tuned from its
current weights for a few epochs. The new run directory holds its own graph
(``graph/``) and reports the held-out target metrics before and after.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import json
import re
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from kgrec.atomic import atomic_file, check_output, remove_output
from kgrec.errors import InputError
from kgrec.io import decoding, load_parquet, open_text, read_json
from kgrec.eval import mean_metrics, ranking_task
from kgrec.graph.artifact import INTERACTS, SOURCE, TARGET, GraphArtifact, reverse_relation
from kgrec.graph.views import target_only
from kgrec.models import RelationalGraph
from kgrec.models.content import new_item_terms
from kgrec.models.encoder import items_with_interactions
from kgrec.serve.run import Run, build_model, path_scorer
from kgrec.train.trainer import TrainResult, is_run_dir, train, validate, write_run_record


def read_feedback(path: str | Path, run: Run) -> pd.DataFrame:
    """New interactions: a CSV/TSV/Parquet file with columns ``user``, ``item`` and optionally
    ``domain`` (the domain's name, or ``source``/``target``; default ``target``).

    Raises:
        InputError: missing file or column, unknown domain (with the line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "interactions file not found")
    if path.suffix in (".parquet", ".pq"):
        df = load_parquet(path, "interactions file")
    else:
        with open_text(path, "interactions file") as f, decoding(path):
            try:
                df = pd.read_csv(f, sep=None, engine="python", dtype=str, keep_default_na=False)
            except pd.errors.EmptyDataError:
                raise InputError(path, "empty file; expected a header with user, item (and optionally domain)") \
                    from None
            except (pd.errors.ParserError, csv.Error) as e:
                m = re.search(r"line (\d+)", str(e))
                raise InputError(path, f"malformed CSV/TSV ({str(e).strip().splitlines()[0][:160]})",
                                 int(m.group(1)) if m else None) from None
    missing = [c for c in ("user", "item") if c not in df.columns]
    if missing:
        raise InputError(path, f"expected columns user, item (and optionally domain); missing {missing}, "
                               f"got {list(df.columns)}")
    names = {run.domain_name(SOURCE): SOURCE, run.domain_name(TARGET): TARGET, SOURCE: SOURCE, TARGET: TARGET}
    roles = []
    for n, d in enumerate(df["domain"].astype(str) if "domain" in df.columns else [TARGET] * len(df), start=2):
        if d not in names:
            raise InputError(path, f"unknown domain {d!r}; expected one of {sorted(set(names))}", n)
        roles.append(names[d])
    if not len(df):
        raise InputError(path, "no interactions in the file")
    for col in ("user", "item"):
        values = df[col].astype(str).str.strip()
        bad = (values == "") | values.str.contains("\x00", regex=False)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            what = "is empty" if values.iloc[i] == "" else "holds a NUL byte"
            raise InputError(path, f"column '{col}' {what}; every row needs a user and an item",
                             None if path.suffix in (".parquet", ".pq") else i + 2)
    return pd.DataFrame({"user": df["user"].astype(str).str.strip(), "item": df["item"].astype(str).str.strip(),
                         "domain": roles})


def fold_in(artifact: GraphArtifact, feedback: pd.DataFrame) -> tuple[GraphArtifact, dict[str, int]]:
    """A new artifact with ``feedback`` as training interactions; new users/items appended at the end
    of their type. Pairs the graph already holds (any split) are skipped. Returns it and counts
    (``new_users``, ``new_items``, ``new_interactions``, ``skipped_known``)."""
    a = copy.deepcopy(artifact)
    users, items = a.nodes["user"], a.nodes["item"]
    user_ids = dict(zip(users["id"].astype(str), users["index"]))
    new_users = [u for u in dict.fromkeys(feedback["user"]) if u not in user_ids]
    for u in new_users:
        user_ids[u] = len(user_ids)
    item_ids = {(r, i): k for r, i, k in zip(items["domain"], items["id"].astype(str), items["index"])}
    new_items = [key for key in dict.fromkeys(zip(feedback["domain"], feedback["item"])) if key not in item_ids]
    domain_names = {r: artifact.domain_name(r) for r in (SOURCE, TARGET)}
    for key in new_items:
        item_ids[key] = len(item_ids)
    if new_users:
        roles = feedback.groupby("user")["domain"].agg(lambda s: "both" if s.nunique() > 1 else s.iloc[0])
        add = pd.DataFrame({"index": [user_ids[u] for u in new_users], "id": new_users,
                            "domain": [roles[u] for u in new_users], "cold_start": False, "label": new_users})
        a.nodes["user"] = pd.concat([users, add[[c for c in users.columns if c in add.columns]]], ignore_index=True)
    if new_items:
        add = pd.DataFrame({"index": [item_ids[k] for k in new_items], "id": [i for _, i in new_items],
                            "domain": [r for r, _ in new_items], "domain_name": [domain_names[r] for r, _ in new_items],
                            "label": [i for _, i in new_items], "text": ""})
        a.nodes["item"] = pd.concat([items, add[[c for c in items.columns if c in add.columns]]], ignore_index=True)
    rows = pd.DataFrame({"domain": feedback["domain"], "user": [user_ids[u] for u in feedback["user"]],
                         "item": [item_ids[(r, i)] for r, i in zip(feedback["domain"], feedback["item"])],
                         "split": "train", "timestamp": float("nan"), "duplicate": False})
    # a pair the graph already holds (in any split) is skipped: re-adding a held-out pair as training would leak it
    known = set(zip(a.interactions["domain"], a.interactions["user"], a.interactions["item"]))
    fresh = [k not in known for k in zip(rows["domain"], rows["user"], rows["item"])]
    skipped = len(rows) - sum(fresh)
    rows = rows[fresh].drop_duplicates()
    a.interactions = pd.concat([a.interactions, rows], ignore_index=True)
    if "cold_start" in a.nodes["item"]:  # a new item with interactions now is a new item no longer
        warmed = a.nodes["item"]["index"].isin(set(rows["item"]))
        a.nodes["item"]["cold_start"] = a.nodes["item"]["cold_start"].fillna(False).astype(bool) & ~warmed
    data = a.data
    n_users, n_items = len(user_ids), len(item_ids)
    data["user"].num_nodes, data["item"].num_nodes = n_users, n_items
    data["item"].domain = torch.cat([data["item"].domain,
                                     torch.tensor([1 if r == TARGET else 0 for r, _ in new_items], dtype=torch.long)])
    if "cold_start" in data["item"]:  # items that arrive with interactions are not cold
        data["item"].cold_start = torch.cat([data["item"].cold_start, torch.zeros(len(new_items), dtype=torch.bool)])
        data["item"].cold_start &= torch.from_numpy(a.nodes["item"]["cold_start"].to_numpy(dtype=bool).copy())
    for attr in ("cold_start", "in_source", "in_target"):
        if attr in data["user"]:
            old = data["user"][attr]
            data["user"][attr] = torch.cat([old, torch.zeros(len(new_users), dtype=old.dtype)])
    for role in (SOURCE, TARGET):
        mine = rows[rows["domain"] == role]
        pair = torch.tensor(mine[["user", "item"]].to_numpy().T.copy(), dtype=torch.long).reshape(2, -1)
        s, rel, d = INTERACTS[role]
        data[s, rel, d].edge_index = torch.cat([data[s, rel, d].edge_index, pair], 1)
        data[d, reverse_relation(rel), s].edge_index = torch.cat([data[d, reverse_relation(rel), s].edge_index,
                                                                  pair.flip(0)], 1)
        if role == SOURCE and len(mine):
            data["user"]["in_source"][torch.tensor(mine["user"].unique())] = True
        if role == TARGET and len(mine):
            data["user"]["in_target"][torch.tensor(mine["user"].unique())] = True
    kept = {k: v for k, v in a.manifest.items() if k not in ("files", "checksum")}  # another graph now
    a.manifest = {**kept, "updated_with": {"new_users": len(new_users), "new_items": len(new_items),
                                                 "new_interactions": int(len(rows)), "skipped_known": skipped}}
    return a, a.manifest["updated_with"]


def _grown_state(run: Run, sizes: dict[str, int]) -> dict:
    """The run's weights with embedding tables (and feature buffers) grown to ``sizes``."""
    state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    for t, n in sizes.items():
        key = f"encoder.embeddings.{t}.weight"
        old = state[key]
        if n > old.shape[0]:
            state[key] = torch.cat([old, old.mean(0, keepdim=True).expand(n - old.shape[0], -1)])
        fkey = f"encoder.features_{t}"
        if fkey in state and n > state[fkey].shape[0]:
            state[fkey] = torch.cat([state[fkey], state[fkey].new_zeros(n - state[fkey].shape[0], state[fkey].shape[1])])
    return state


def update(run: Run, interactions: str | Path, out: str | Path, epochs: int = 3, overwrite: bool = False,
           progress: bool = True, log: Callable[[str], None] = print) -> tuple[TrainResult, dict]:
    """Fold ``interactions`` into ``run`` and fine-tune for ``epochs`` epochs into the new run ``out``.

    Returns the fine-tuned :class:`TrainResult` and a report: counts of what was added, and the
    held-out target metrics (valid, test) before and after (also written to ``out/update.json``).

    Raises:
        InputError: a bad interactions file. OutputError: ``out`` exists without ``overwrite``, or is not a kgrec run.
    """
    out = Path(out)
    check_output(out, overwrite=overwrite, ours=is_run_dir, what="run directory", empty_ok=True)
    feedback = read_feedback(interactions, run)
    artifact, counts = fold_in(run.artifact, feedback)
    data = artifact.data if run.view == "merged" else target_only(artifact.data)
    graph = RelationalGraph.from_hetero(data, run.device)
    state = _grown_state(run, graph.sizes)
    saved = {"state_dict": state, "model_config": dataclasses.asdict(run.model.config), "sizes": graph.sizes,
             "num_relations": graph.num_relations,
             "feature_dims": {t: int(state[f"encoder.features_{t}"].shape[1]) for t in run.model.encoder.projections},
             "discriminator": run.model.discriminator is not None}
    before_model = build_model(saved, run.device)
    ks = run.config.eval.ks
    valid, test = ranking_task(artifact, "valid"), ranking_task(artifact, "test", exclude=("train", "valid"))
    paths = path_scorer(run.config, artifact, run.path_graph, run.device, run.path_filter) if run.path_weight else None
    terms = new_item_terms(run.new_items, artifact, ~items_with_interactions(graph))
    before = {split: mean_metrics(validate(before_model, graph, task, ks, paths=paths, path_weight=run.path_weight,
                                           terms=terms))
              for split, task in (("valid", valid), ("test", test)) if len(task.users)}
    cfg = dataclasses.replace(run.config, device=str(run.device))  # where the run was loaded (--device)
    graph_dir = out / "graph"
    if cfg.mode == "transfer":  # fine-tuning again, on the graph the run was fine-tuned on (finetune.graph)
        cfg = dataclasses.replace(cfg, graph=str(graph_dir), pretrain=dataclasses.replace(cfg.pretrain, epochs=0),
                                  finetune=dataclasses.replace(cfg.finetune, epochs=epochs))
    else:
        cfg = dataclasses.replace(cfg, graph=str(graph_dir), target_only=dataclasses.replace(cfg.target_only, epochs=epochs))
    if check_output(out, overwrite=overwrite, ours=is_run_dir, what="run directory", empty_ok=True):
        remove_output(out)
    result = train(cfg, out, progress=progress, log=log, artifact=artifact, init=state)
    artifact.save(graph_dir)
    record = {k: v for k, v in read_json(out / "run.json").items() if k not in ("files", "graph_checksum")}
    write_run_record(out, record, artifact.manifest["checksum"])  # the graph it was fine-tuned on, now saved
    report = {**counts, "from_run": str(run.path), "epochs": epochs, "before": before,
              "after": {"valid": result.valid, "test": result.test}}
    with atomic_file(out / "update.json") as f:
        json.dump(report, f, indent=2)
    return result, report
