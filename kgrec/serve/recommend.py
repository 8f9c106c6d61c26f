"""Top-K recommendations of target items, for known users and for new users given their history."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from kgrec.errors import InputError, KgrecError
from kgrec.eval.metrics import top_k
from kgrec.eval.ranking import users_per_batch
from kgrec.graph.artifact import INTERACTS, SOURCE, TARGET, reverse_relation
from kgrec.io import read_text
from kgrec.models import RelationalGraph
from kgrec.models.paths import blend
from kgrec.serve.run import Run


@torch.no_grad()
def score_items(run: Run, user_vectors: Tensor, path_scores: Tensor | None = None,
                content_scores: Tensor | None = None) -> Tensor:
    """``[B, M]`` scores of users against every target item (in ``run.artifact.items_of("target")``
    order): the target head's on their ``[B, out_dim]`` embeddings, blended with their walk scores
    ``path_scores`` ``[B, M]`` at ``run.path_weight`` when given, then the run's new-item terms
    (:meth:`Run.new_item_terms`, with the users' content kNN scores ``content_scores`` ``[B, M]``)."""
    h = run.embeddings()
    targets = run.artifact.items_of(TARGET)
    items = h[targets.to(h.device) + run.graph.offsets["item"]]
    scores = blend(run.model.heads["target"].score_all(user_vectors.to(h.device), items), path_scores, run.path_weight)
    terms = run.new_item_terms()
    return scores if terms is None else terms.apply(scores, targets, content_scores)


def _top(run: Run, scores: Tensor, exclude: list[Tensor], k: int) -> list[tuple[list[int], list[float]]]:
    """Each row's top ``k`` (item indices, scores), its ``exclude`` items left out; filtered and ranked
    where the scores are (the GPU's, on CUDA), so only ``[B, k]`` comes back to the CPU."""
    dev = scores.device
    target_items = run.artifact.items_of(TARGET).to(dev)
    pos_of = torch.full((int(run.artifact.data["item"].num_nodes),), -1, dtype=torch.long, device=dev)
    pos_of[target_items] = torch.arange(len(target_items), device=dev)
    scores = scores.float().clone()
    rows = torch.repeat_interleave(torch.arange(len(exclude)), torch.tensor([len(ex) for ex in exclude],
                                                                            dtype=torch.long)).to(dev)
    cols = pos_of[torch.cat(exclude).to(dev)] if exclude else rows
    scores[rows[cols >= 0], cols[cols >= 0]] = float("-inf")
    k = min(k, scores.shape[1])
    top = top_k(scores, k)
    values, items = scores.gather(1, top).cpu(), target_items[top].cpu()
    found = values != float("-inf")
    return [(items[r][found[r]].tolist(), values[r][found[r]].tolist()) for r in range(len(values))]


def _frame(run: Run, user: str, items: list[int], scores: list[float]) -> pd.DataFrame:
    ids = run.artifact.nodes["item"]["id"].astype(str).tolist()
    labels = run.labels("item")
    return pd.DataFrame({"user": user, "rank": range(1, len(items) + 1), "item": [ids[i] for i in items],
                         "label": [labels[i] for i in items], "score": scores, "item_index": items})


def seen(run: Run, user: int) -> Tensor:
    """The target items the user interacted with in training and validation: what 'already seen'
    means here, as in test-time evaluation (the test split stands for the future)."""
    return run.seen_items(user, TARGET, ("train", "valid"))


def recommend(run: Run, user: str, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
    """The top ``k`` target items for a known user: columns user, rank, item, label, score, item_index.

    Raises:
        KgrecError: unknown user id (the message says where the valid ids are).
    """
    return recommend_many(run, [user], k, exclude_seen)


def recommend_many(run: Run, users: list[str], k: int = 10, exclude_seen: bool = True,
                   batch_size: int | None = None) -> pd.DataFrame:
    """:func:`recommend` for many users, batched (by default as many as fit in the run's
    ``eval.memory_mb``); one frame, ``k`` rows per user."""
    index = [run.user_index(u) for u in users]
    h = run.embeddings()
    paths, targets, terms = run.paths(), run.artifact.items_of(TARGET), run.new_item_terms()
    if batch_size is None:  # the head's, the walks', the content's, the blend's and the masked copy's [B, M]
        batch_size = users_per_batch(run.config.eval.memory_mb, len(targets), 5,
                                     paths.batch_bytes(targets) if paths is not None else 0)
    frames = []
    for start in range(0, len(index), batch_size):
        chunk = index[start:start + batch_size]
        vec = h[torch.tensor(chunk, device=h.device) + run.graph.offsets["user"]]
        walks = paths.scores(torch.tensor(chunk), targets) if paths is not None else None
        content = terms.content_scores(torch.tensor(chunk), targets) if terms is not None else None
        exclude = [seen(run, u) if exclude_seen else torch.empty(0, dtype=torch.long) for u in chunk]
        for u, (items, scores) in zip(users[start:start + batch_size],
                                      _top(run, score_items(run, vec, walks, content), exclude, k)):
            frames.append(_frame(run, str(u), items, scores))
    return pd.concat(frames, ignore_index=True) if frames else _frame(run, "", [], [])


@torch.no_grad()
def history_embedding(run: Run, items: list[int]) -> Tensor:
    """``[out_dim]`` embedding of a user the model never saw, from the items they interacted with
    (item indices, either domain): the user is added to the graph with those edges and the
    trained layers propagate over it; its ID embedding is the mean of the trained users'. No training."""
    if not items:
        raise KgrecError("a new user needs at least one item in their history")
    data = run.message_passing_data().clone()
    n_users = int(data["user"].num_nodes)
    domain = run.artifact.data["item"].domain
    for role in (SOURCE, TARGET):
        mine = torch.tensor([i for i in items if int(domain[i]) == (1 if role == TARGET else 0)], dtype=torch.long)
        if role == SOURCE and run.view != "merged":
            continue
        s, rel, d = INTERACTS[role]
        new = torch.stack([torch.full_like(mine, n_users), mine])
        data[s, rel, d].edge_index = torch.cat([data[s, rel, d].edge_index, new], 1)
        data[d, reverse_relation(rel), s].edge_index = torch.cat(
            [data[d, reverse_relation(rel), s].edge_index, new.flip(0)], 1)
    data["user"].num_nodes = n_users + 1
    graph = RelationalGraph.from_hetero(data, run.device)
    enc = run.model.encoder
    h0 = enc.inputs(run.graph)
    users = h0[run.graph.node_slice("user")]
    cut = run.graph.offsets["user"] + n_users
    inputs = torch.cat([h0[:cut], users.mean(0, keepdim=True), h0[cut:]])
    return enc(graph, inputs).h[cut]


def read_history(run: Run, path: str | Path) -> list[int]:
    """Item indices from a history file: one item per line (``domain:id`` or a bare id,
    looked up in the target domain first), or a CSV/TSV with an ``item`` column.

    Raises:
        InputError: missing file, or an item not in the graph (with its line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "history file not found")
    lines = read_text(path, "history file").splitlines()
    header = lines[0].replace("\t", ",").split(",") if lines else []
    out = []
    if "item" in header:
        col = header.index("item")
        rows = [(n, line.replace("\t", ",").split(",")) for n, line in enumerate(lines[1:], start=2) if line.strip()]
        ids = []
        for n, row in rows:
            if col >= len(row):
                raise InputError(path, f"expected an 'item' value in column {col + 1}", n)
            ids.append((n, row[col].strip()))
    else:
        ids = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    for n, item in ids:
        try:
            out.append(run.item_index(item))
        except KgrecError as e:
            raise InputError(path, str(e), n) from None
    if not out:
        raise InputError(path, "no items in the history file")
    return out


def recommend_from_history(run: Run, items: list[int], k: int = 10, exclude_seen: bool = True,
                           user: str = "new") -> pd.DataFrame:
    """Top ``k`` target items for a new user with history ``items`` (item indices); their
    target-domain history items are excluded when ``exclude_seen``."""
    vec = history_embedding(run, items).unsqueeze(0)
    paths = run.paths()
    history, targets, terms = torch.tensor(items, dtype=torch.long), run.artifact.items_of(TARGET), run.new_item_terms()
    in_target = history[run.artifact.data["item"].domain[history] == 1]
    walks = paths.history_scores(history, targets) if paths is not None else None
    content = None
    if terms is not None and terms.content is not None and terms.content_weight:  # the history the kNN was fitted on
        content = terms.content.history_scores(history if terms.setting.get("history") != "target" else in_target,
                                               targets)
    exclude = [in_target if exclude_seen else torch.empty(0, dtype=torch.long)]
    (top_items, scores), = _top(run, score_items(run, vec, walks, content), exclude, k)
    return _frame(run, user, top_items, scores)
