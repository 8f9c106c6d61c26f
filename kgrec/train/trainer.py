"""Transfer training, start to finish, in one visible loop.

``mode = "transfer"``: *pre-train* the model on the merged graph with
``L = w_S·L_S + λ·L_T + μ·L_KG (+ ν·L_align)``, then *fine-tune* on the target
(``L_T`` only) with the whole model, its upper layers, or the head trainable;
message passing keeps running over the merged graph, so the source still
informs the target (or, with ``finetune.graph = "target"``, over the target's
own graph, starting from the pre-trained weights). ``mode = "target_only"``: the same model trained from
scratch on the target domain's own graph (``L_T + μ·L_KG``), the control for
the transfer gain.

Every epoch: one pass over the target's training interactions, validation by
full-ranking NDCG@k on the target's validation split, an atomic checkpoint.
Only training interactions are ever edges or loss terms; validation and test
interactions are used to score, never to train.

Run directory::

    config.toml          the resolved config (every key)
    run.json             seed, device, versions, graph, timings, per-stage best epochs
    metrics.csv          one row per epoch: losses, validation metrics, seconds
    events/              TensorBoard event files
    checkpoints/<stage>.pt  the last epoch of each stage (for --resume)
    model.pt             the final weights and what is needed to rebuild the model
    paths.pt             the chosen walk's item-item operator (kgrec.models.paths.ItemWalks), when blended in
    results.json         final validation and test metrics

``run.json``, written last, records the SHA-256 of the files above (``files``) and the
``graph_checksum`` of the artifact trained on (:mod:`kgrec.integrity`); loading the run checks both.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import io
import json
import math
import platform
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import Tensor

from kgrec.atomic import atomic_file, check_output, check_writable, remove_output
from kgrec.errors import KgrecError
from kgrec.integrity import record_files
from kgrec.io import load_torch
from kgrec.eval import METRICS, RankingTask, mean_metrics, metrics_of_top, ranking_task, sample_users
from kgrec.eval.items import item_group_tasks, kind_tasks, positions
from kgrec.graph.artifact import INTERACTS, SOURCE, TARGET, GraphArtifact, load_graph, reverse_relation
from kgrec.graph.views import target_only
from kgrec.models import RelationalGraph, TransferModel
from kgrec.models.graph import gather_rows
from kgrec.progress import progress_bar
from kgrec.models.features import load_vectors, text_features
from kgrec.models.content import NewItemTerms, content_knn, content_settings, item_content
from kgrec.models.encoder import ModelConfig, items_with_interactions, resolve_cold_item_id
from kgrec.models.heads import MLPHead
from kgrec.models.itemknn import EASE_LAMBDAS, EASE_MAX_SIDE, EASE_SHORTLIST, EASE_SOURCE_WEIGHTS, EASEFilter
from kgrec.models.paths import (FILTER_ALPHAS, FILTER_BETAS, PATH_WEIGHTS, ItemWalks, PathScorer, blend, blends,
                                item_walks_state, standardise)
from kgrec.train.budget import check_memory
from kgrec.train.config import DEVICE, StageConfig, TrainConfig, to_toml
from kgrec.train.distributed import SINGLE, World
from kgrec.train.losses import RANKING_LOSSES, adversarial_loss, info_nce, kg_loss, l2_penalty, mmd
from kgrec.graph.negatives import NegativeSampler


@dataclass
class TrainResult:
    """What :func:`train` returns: where the run lives and how it scored."""

    run_dir: Path
    valid: dict[str, float]
    test: dict[str, float]
    history: pd.DataFrame
    model: TransferModel
    graph: RelationalGraph  # what the final model propagates over (merged or the target-only view)
    paths: PathScorer | None = None  # the walk scores blended in, at ``path_weight``
    path_weight: float = 0.0
    path_graph: str = ""  # what the walks cross: "merged" or "target" ("" without walks)
    terms: NewItemTerms | None = None  # what the blend adds for new items (content kNN, cold-item shift)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given.

    Raises:
        KgrecError: CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not DEVICE.fullmatch(name):
        raise KgrecError(f"device {name!r}: expected cpu, cuda, cuda:N, mps or auto")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise KgrecError(f"device {name!r} asked for, but CUDA is not available here (use device = \"cpu\" or \"auto\")")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise KgrecError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise KgrecError(f"device {name!r} asked for, but MPS is not available here (use device = \"cpu\")")
    return dev


def item_features(artifact: GraphArtifact, config: ModelConfig, seed: int) -> dict[str, Tensor]:
    """The item input features ``config.item_features`` asks for (``{}`` for ``"none"``)."""
    if config.item_features == "none":
        return {}
    items = artifact.nodes["item"]
    if config.item_features == "text":
        texts = items["text"].tolist() if "text" in items.columns else []
        if not any(isinstance(t, str) and t.strip() for t in texts):
            raise KgrecError("model.item_features = \"text\", but the graph's items have no text "
                             "(give the spec's items a title/text column)")
        return {"item": torch.from_numpy(text_features(texts, config.text_dim, seed))}
    return {"item": torch.from_numpy(load_vectors(config.item_features, items["id"].astype(str).tolist()))}


@dataclass
class _Batches:
    """Training data of one stage, as type-local indices (CPU)."""

    pairs: dict[str, Tensor]               # domain -> [2, P] (user, item)
    samplers: dict[str, NegativeSampler]
    kg: Tensor                             # [3, T] flat head, relation, flat tail
    kg_tail_offset: Tensor                 # [R] flat offset of each relation's tail type
    kg_tail_size: Tensor                   # [R] number of nodes of that type


def _batches(artifact: GraphArtifact, graph: RelationalGraph, domains: tuple[str, ...], config: TrainConfig) -> _Batches:
    num_users = int(artifact.data["user"].num_nodes)
    pairs, samplers = {}, {}
    for dom in domains:
        p = artifact.split("train", dom)
        pairs[dom] = p
        samplers[dom] = NegativeSampler(p[0], p[1], artifact.training_items(dom), num_users, config.loss.sampler)
    interaction = {INTERACTS[SOURCE][1], INTERACTS[TARGET][1]}
    is_kg = torch.tensor([not rev and rel not in interaction
                          for rev, (_, rel, _) in zip(graph.reverse.tolist(), graph.relations)], dtype=torch.bool)
    et = graph.edge_type.cpu()
    m = is_kg[et]
    kg = torch.stack([graph.edge_index[0].cpu()[m], et[m], graph.edge_index[1].cpu()[m]])
    off = torch.tensor([graph.offsets[d] for _, _, d in graph.relations], dtype=torch.long)
    size = torch.tensor([graph.sizes[d] for _, _, d in graph.relations], dtype=torch.long)
    return _Batches(pairs, samplers, kg, off, size)


def adam(params: list[torch.nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam over ``params``, the fused kernel where this torch has it for their device (CPU from torch
    2.4, CUDA): one pass over each table instead of a dozen (a step over cloth -> sport's tables on one
    CPU thread: 19.1 -> 5.0 ms, ``benchmarks/hot_paths.py``); the same update up to float rounding."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device/dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _trainable(model: TransferModel, stage: str, config: TrainConfig) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` for ``stage`` and return the parameters to optimise."""
    for p in model.parameters():
        p.requires_grad_(True)
    if stage == "finetune":
        unused = [model.heads["source"], model.kg_relations, model.discriminator]
        mode = config.finetune.mode
        if mode in ("frozen", "upper"):
            unused.append(model.encoder)
        for m in unused:
            for p in (m.parameters() if m is not None else []):
                p.requires_grad_(False)
        if mode == "upper":
            for layer in model.encoder.layers[-config.finetune.upper_layers:]:
                for p in layer.parameters():
                    p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def _interaction_loss(model: TransferModel, h: Tensor, domain: str, users: Tensor, pos: Tensor,
                      data: _Batches, graph: RelationalGraph, config: TrainConfig, gen: torch.Generator,
                      part: slice = slice(None)):
    """Ranking loss of the ``part`` of a batch of (user, positive) pairs of ``domain`` against sampled
    negatives; also returns the flat node rows it touched (for L2) and the positives' embeddings
    (for alignment). Negatives are drawn for the whole batch, so ``gen`` advances as on one process."""
    neg = data.samplers[domain].sample(users, config.loss.negatives, gen)
    users, pos, neg = users[part], pos[part], neg[part]
    if len(users) == 0:  # this rank's share of a batch smaller than the world
        return h[:0].sum(), torch.empty(0, dtype=torch.long, device=h.device), h[:0]
    b, k = neg.shape
    rows = torch.cat([users + graph.offsets["user"], pos + graph.offsets["item"],
                      neg.reshape(-1) + graph.offsets["item"]]).to(h.device)
    e = gather_rows(h, rows)  # one gather, so one scatter in the backward pass
    hu, hp, hn = e[:b], e[b:2 * b], e[2 * b:].view(b, k, -1)
    head = model.heads[domain]
    s_pos = head.score(hu, hp)
    s_neg = head.score_each(hu, hn)
    return RANKING_LOSSES[config.loss.loss](s_pos, s_neg), rows, e[b:2 * b]


def hide_target_edges(graph: RelationalGraph, users: Tensor, share: float, gen: torch.Generator) -> RelationalGraph:
    """``graph`` without the target interaction edges (both directions) of a random ``share`` of
    ``users`` (type-local ids): simulated cold-start users for one epoch."""
    s, rel, d = INTERACTS[TARGET]
    names = {(s, rel, d), (d, reverse_relation(rel), s)}
    return _hide_edges(graph, [r for r, t in enumerate(graph.relations) if t in names], "user", users, share, gen)


def hide_item_edges(graph: RelationalGraph, items: Tensor, share: float, gen: torch.Generator) -> RelationalGraph:
    """``graph`` without the interaction edges (either domain, both directions) of a random ``share`` of
    ``items`` (type-local ids): simulated new items for one epoch."""
    rels = [r for r, (_, rel, _) in enumerate(graph.relations) if "interacts_" in rel]
    return _hide_edges(graph, rels, "item", items, share, gen)


def _hide_edges(graph: RelationalGraph, rels: list[int], node_type: str, nodes: Tensor, share: float,
                gen: torch.Generator) -> RelationalGraph:
    """``graph`` without the edges of relations ``rels`` that touch a random ``share`` of ``nodes``."""
    if share <= 0 or not rels or len(nodes) == 0:
        return graph
    chosen = nodes[torch.randperm(len(nodes), generator=gen)[:round(share * len(nodes))]]
    hidden = torch.zeros(graph.num_nodes, dtype=torch.bool)
    hidden[chosen + graph.offsets[node_type]] = True
    hidden = hidden.to(graph.device)
    in_rels = torch.isin(graph.edge_type, torch.tensor(rels, device=graph.device))
    touches = hidden[graph.edge_index[0]] | hidden[graph.edge_index[1]]
    return graph.keep_edges(~(in_rels & touches))


#: the loss parts a step may have, in the order they are summed over the ranks
_PARTS = ("target", "source", "align", "kg", "cl", "l2")


def _train_epoch(stage: str, epoch: int, model: TransferModel, graph: RelationalGraph, data: _Batches,
                 config: TrainConfig, cfg: StageConfig, opt: torch.optim.Optimizer, gen: torch.Generator,
                 progress: bool, world: World = SINGLE) -> dict[str, float]:
    lc = config.loss
    target = data.pairs[TARGET]
    if cfg.cold_users > 0:
        graph = hide_target_edges(graph, target[0].unique(), cfg.cold_users, gen)
    if cfg.cold_items > 0:
        graph = hide_item_edges(graph, target[1].unique(), cfg.cold_items, gen)
    n = target.shape[1]
    perm = torch.randperm(n, generator=gen)
    steps = max(1, math.ceil(n / cfg.batch_size))
    frozen = stage == "finetune" and config.finetune.mode == "frozen"
    fixed = None
    if frozen:
        with torch.no_grad():
            fixed = model(graph)
    use_kg = stage != "finetune" and lc.kg_weight > 0 and data.kg.shape[1] > 0
    sums: dict[str, float] = defaultdict(float)
    use_cl = lc.cl_weight > 0 and not frozen
    users_rows, items_rows = graph.node_slice("user"), graph.node_slice("item")
    params = [p for p in model.parameters() if p.requires_grad]
    for s in progress_bar(range(steps), desc=f"{stage} epoch {epoch}", enabled=progress):
        idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
        # this rank scores its share of the global batch; a mean over the share, weighted by
        # share/batch, sums over the ranks to the one-process mean (kgrec.train.distributed)
        part = world.share(len(idx))
        w = (part.stop - part.start) / len(idx)
        whole = world.is_main  # rank 0 alone computes the terms that are not a mean over pairs
        if frozen:
            h, h0 = fixed, None
        else:
            enc = model.encoder(graph, noise=lc.cl_noise if use_cl else 0.0)
            h, h0 = enc.h, enc.h0
        loss_t, rows, h_items = _interaction_loss(model, h, TARGET, target[0, idx], target[1, idx], data, graph,
                                                  config, gen, part)
        loss_t = w * loss_t
        parts = {"target": loss_t}
        anchors = [torch.cat([target[0, idx] + graph.offsets["user"], target[1, idx] + graph.offsets["item"]])]
        loss = (lc.target_weight if stage == "pretrain" else 1.0) * loss_t
        if stage == "pretrain":
            src = data.pairs[SOURCE]
            j = torch.randint(src.shape[1], (len(idx),), generator=gen)
            loss_s, src_rows, src_items = _interaction_loss(model, h, SOURCE, src[0, j], src[1, j], data, graph,
                                                            config, gen, part)
            loss_s = w * loss_s
            parts["source"] = loss_s
            loss = loss + lc.source_weight * loss_s
            if lc.align != "none" and lc.align_weight > 0:
                if world.size > 1 and whole:  # the whole batch's positives, not this rank's share
                    off = graph.offsets["item"]
                    h_items, src_items = (gather_rows(h, (p + off).to(h.device)) for p in (target[1, idx], src[1, j]))
                parts["align"] = ((mmd(src_items, h_items) if lc.align == "mmd"
                                   else adversarial_loss(model.discriminator, src_items, h_items)) if whole
                                  else torch.zeros((), device=h.device))
                loss = loss + lc.align_weight * parts["align"]
            rows = torch.cat([rows, src_rows])
            anchors.append(torch.cat([src[0, j] + graph.offsets["user"], src[1, j] + graph.offsets["item"]]))
        if use_kg:
            t = torch.randint(data.kg.shape[1], (min(lc.kg_batch_size, data.kg.shape[1]),), generator=gen)
            head_n, rel, tail = data.kg[:, t]
            tail_neg = data.kg_tail_offset[rel] + (torch.rand(len(t), generator=gen) * data.kg_tail_size[rel]).long()
            mine = world.share(len(t))
            head_n, rel, tail, tail_neg = head_n[mine], rel[mine], tail[mine], tail_neg[mine]
            e = gather_rows(h, torch.cat([head_n, tail, tail_neg]).to(h.device)).view(3, len(head_n), h.shape[1])
            parts["kg"] = (len(head_n) / len(t)) * kg_loss(e[0], model.kg_relations(rel.to(h.device)), e[1], e[2],
                                                           lc.kg_loss) if len(head_n) else h[:0].sum()
            loss = loss + lc.kg_weight * parts["kg"]
        if use_cl and not whole:
            parts["cl"] = torch.zeros((), device=h.device)
        elif use_cl:
            # XSimGCL: the final (perturbed) embeddings against one perturbed layer's, per distinct node
            nodes = torch.cat(anchors).to(h.device).unique()
            view = enc.hidden[lc.cl_layer - 1]
            users = nodes[(nodes >= users_rows.start) & (nodes < users_rows.stop)]
            items = nodes[(nodes >= items_rows.start) & (nodes < items_rows.stop)]
            final = h if h.shape[1] == view.shape[1] else enc.hidden[-1]  # combine = "concat": the last layer
            parts["cl"] = sum(info_nce(gather_rows(final, x), gather_rows(view, x), lc.cl_temperature)
                              for x in (users, items))
            loss = loss + lc.cl_weight * parts["cl"]
        if lc.l2 > 0 and h0 is not None:
            # per target pair, whatever else the batch holds
            parts["l2"] = l2_penalty(h0, rows, batch_size=len(idx))
            loss = loss + lc.l2 * parts["l2"]
        opt.zero_grad(set_to_none=True)
        if loss.requires_grad:  # not when this rank's share is empty and the encoder frozen
            loss.backward()
        names = ["loss"] + [f"loss_{k}" for k in _PARTS]
        values = world.sum_gradients(params, torch.stack([loss.detach().float().cpu()] + [
            parts[k].detach().float().cpu() if k in parts else torch.zeros(()) for k in _PARTS]))
        opt.step()
        for k, v in zip(names, values.tolist()):
            if k == "loss" or k[5:] in parts:
                sums[k] += v
    return {k: v / steps for k, v in sums.items()}


def score_function(model: TransferModel, h: Tensor, graph: RelationalGraph, task: RankingTask,
                   paths: PathScorer | None = None, path_weight: float = 0.0,
                   terms: NewItemTerms | None = None, over: Tensor | None = None) -> Callable[[Tensor], Tensor]:
    """``users [B]`` -> ``[B, M]`` scores against ``task.items``: the target head's on embeddings ``h``,
    blended with ``paths``' walk scores at ``path_weight`` (see :mod:`kgrec.models.paths`), then the
    new-item ``terms`` (:class:`~kgrec.models.content.NewItemTerms`) when given. The blend standardises
    each user's scores over ``over`` (item indices holding ``task.items``; by default ``task.items``):
    a task ranking a subset of the catalogue (new items among new items) is then ranked by the
    scores the whole catalogue's ranking gives them."""
    scored = task.items if over is None else over
    cols = None if over is None else positions(task.items, over).to(h.device)
    items = gather_rows(h, scored.to(h.device) + graph.offsets["item"])
    head = model.heads["target"]

    def score(users: Tensor) -> Tensor:
        e = head.score_all(gather_rows(h, users.to(h.device) + graph.offsets["user"]), items)
        if paths is not None and path_weight != 0:
            e = blend(e, paths.scores(users, scored), path_weight)
        if terms is not None and terms.active:
            e = terms.apply(e, scored, terms.content_scores(users, scored))
        return e if cols is None else e[:, cols]
    return score


def _embeddings(model: TransferModel, graph: RelationalGraph) -> Tensor:
    was = model.training
    model.eval()
    h = model(graph)
    model.train(was)
    return h


def _memory(model: TransferModel, h: Tensor, memory_mb: int) -> int:
    return max(1, memory_mb // (2 * h.shape[1])) if isinstance(model.heads["target"], MLPHead) else memory_mb


@torch.no_grad()
def validate(model: TransferModel, graph: RelationalGraph, task: RankingTask, ks: tuple[int, ...],
             memory_mb: int = 256, paths: PathScorer | None = None, path_weight: float = 0.0,
             world: World = SINGLE, terms: NewItemTerms | None = None, over: Tensor | None = None) -> dict[str, Tensor]:
    """Per-user full-ranking metrics of ``model`` on ``task`` (eval mode, no gradients), scored as
    :func:`score_function` (over the items ``over``, by default the task's); under torchrun each rank
    ranks its share of the users and every rank gets all the metrics."""
    h = _embeddings(model, graph)
    scored = task.items if over is None else over
    walks = paths.batch_bytes(scored) if paths is not None and path_weight else 0
    score = score_function(model, h, graph, task, paths, path_weight, terms, over)
    wide = 1.0 if over is None else len(over) / max(len(task.items), 1)  # [B, len(over)] per [B, M] ranked
    top = world.rank_each(lambda users: [score(users)], task, max(ks), _memory(model, h, memory_mb), h.device,
                          matrices=math.ceil(wide * (4 if terms is not None and terms.active else 3)),
                          user_bytes=walks)[0]
    return metrics_of_top(top, task, ks)


def walk_graphs(config: TrainConfig, artifact: GraphArtifact, merged: RelationalGraph,
                final: RelationalGraph) -> dict[str, RelationalGraph]:
    """The graphs a run's walks may cross, by name (``model.path_graph``): a transfer run's merged
    graph and/or the target's own (``final`` when the run ended on it); a target-only run's own."""
    if config.mode != "transfer":
        return {"target": final}
    views = ("merged", "target") if config.model.path_graph == "auto" else (config.model.path_graph,)
    graphs = {}
    for view in views:
        if view == "merged":
            graphs[view] = merged
        else:
            graphs[view] = final if final is not merged else RelationalGraph.from_hetero(
                target_only(artifact.data), merged.device)
    return graphs


@torch.no_grad()
def choose_path_weight(model: TransferModel, graph: RelationalGraph, paths: PathScorer, task: RankingTask,
                       ks: tuple[int, ...], k: int, memory_mb: int = 256,
                       world: World = SINGLE) -> tuple[float, dict[float, dict[str, float]]]:
    """The blend weight of :data:`PATH_WEIGHTS` with the best mean NDCG@``k`` on ``task`` (the
    smaller on a tie), and every weight's mean metrics at ``ks``; path scores are computed once
    per user batch."""
    h = _embeddings(model, graph)
    embedding = score_function(model, h, graph, task)

    def every_weight(users: Tensor) -> list[Tensor]:
        e, p = embedding(users), paths.scores(users, task.items)
        return blends(e, p, PATH_WEIGHTS)
    tops = world.rank_each(every_weight, task, max(ks), _memory(model, h, memory_mb), h.device,
                           matrices=len(PATH_WEIGHTS) + 3,  # the blends, both parts, one being masked
                           user_bytes=paths.batch_bytes(task.items))
    scores = {w: mean_metrics(metrics_of_top(top, task, ks)) for w, top in zip(PATH_WEIGHTS, tops)}
    best = max(PATH_WEIGHTS, key=lambda w: (scores[w][f"ndcg@{k}"], -w))
    return best, scores


#: the weights of the content kNN term and the shifts of items without interactions a run chooses among
#: (:class:`~kgrec.models.content.NewItemTerms`; in standard deviations of the blended scores): a shift
#: may push new items down too, where the content term lifted them above what validation supports
CONTENT_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
COLD_SHIFTS = (0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 2.0, -2.0, 3.0, -3.0, 4.0, -4.0, 6.0, -6.0)


@torch.no_grad()
def choose_new_item_terms(model: TransferModel, graph: RelationalGraph, artifact: GraphArtifact, task: RankingTask,
                          ks: tuple[int, ...], k: int, memory_mb: int = 256, paths: PathScorer | None = None,
                          path_weight: float = 0.0, world: World = SINGLE, log: Callable[[str], None] = print
                          ) -> tuple[NewItemTerms, dict[str, dict[str, float]], dict[str, float]]:
    """The :class:`~kgrec.models.content.NewItemTerms` of a run on an artifact that holds new items (the
    item cold-start protocol, ``[cold_start] items``; otherwise no terms), for the candidates of ``task``
    without an interaction edge in ``graph``, each term chosen on ``task`` by the ranking it changes:
    the content kNN (each setting the artifact allows,
    :func:`~kgrec.models.content.content_settings`, at each weight of :data:`CONTENT_WEIGHTS`) by the
    NDCG@``k`` of the held-out pairs on new items ranked among the new items (a tie keeps no content,
    then the earlier setting); then the shift of :data:`COLD_SHIFTS` by the NDCG@``k`` of every held-out
    pair ranked among all items (a tie keeps the smaller in size). Returns the terms, the NDCG@``k`` of each
    content setting's best weight and of each shift (``{"content": {...}, "shift": {...}}``), and the
    chosen terms' mean metrics on ``task`` at ``ks`` (empty without new items)."""
    cold = ~items_with_interactions(graph)
    new = cold[task.items.to(cold.device)].cpu()
    if not len(artifact.cold_items()) or not bool(new.any()):
        return NewItemTerms(), {}, {}
    cold = cold.to(graph.device)
    h = _embeddings(model, graph)
    base = score_function(model, h, graph, task, paths, path_weight)
    mem, key = _memory(model, h, memory_mb), f"ndcg@{k}"
    walks = paths.batch_bytes(task.items) if paths is not None and path_weight else 0
    new_of = new.float().to(h.device)  # NewItemTerms.new_of of the task's candidates

    def best_of(on: RankingTask, make: Callable[[float], NewItemTerms], grid: tuple[float, ...],
                content) -> tuple[float, dict]:
        cols = positions(on.items, task.items).to(h.device)  # ``on`` ranks a subset of ``task``'s candidates

        def every(users: Tensor) -> list[Tensor]:  # each part standardised once, as apply would
            b = standardise(base(users))
            c = standardise(content.scores(users, task.items).to(b.device)) if content is not None else None
            return [make(v).combine(b, c, new_of)[:, cols] for v in grid]
        tops = world.rank_each(every, on, max(ks), mem, h.device, matrices=len(grid) + 4, user_bytes=walks)
        found = {v: mean_metrics(metrics_of_top(top, on, ks)) for v, top in zip(grid, tops)}
        return max(grid, key=lambda v: (found[v][key], -abs(v))), found  # a tie keeps the smaller

    among = kind_tasks(task, new).get("cold_among_cold")
    chosen, by_content, features = (-1.0, None, {}, 0.0), {}, {}  # (value, knn, setting, weight)
    for setting in content_settings(artifact) if among is not None else ():
        at = (setting["kind"], setting["hops"])
        if at not in features:
            features[at] = item_content(artifact, *at)
        knn = content_knn(artifact, setting, features[at])
        weight, found = best_of(among, lambda v: NewItemTerms(knn, setting, v, cold), CONTENT_WEIGHTS, knn)
        by_content[f"{setting['kind']} hops={setting['hops']} history={setting['history']}"] = found[weight][key]
        if found[weight][key] > chosen[0]:
            chosen = (found[weight][key], knn, setting, weight) if weight else (found[weight][key], None, {}, 0.0)
    _, knn, setting, weight = chosen
    shift, by_shift = best_of(task, lambda v: NewItemTerms(knn, setting, weight, cold, v), COLD_SHIFTS, knn)
    terms = NewItemTerms(knn, setting if weight else {}, weight, cold, shift)
    log(f"new items ({int(new.sum()):,} candidates without interactions): "
        + (f"content {setting['kind']} hops={setting['hops']} history={setting['history']} at weight {weight:g}"
           if weight else "no content term") + f", shift {shift:g}, chosen on validation (content, "
        + f"new items among new items: {', '.join(f'{n} {v:.4f}' for n, v in by_content.items()) or 'no held-out pairs'}"
        + "; shift, all pairs: " + ", ".join(f"{v:g}: {m[key]:.4f}" for v, m in by_shift.items()) + f" {key})")
    return terms, {"content": by_content, "shift": {f"{v:g}": m[key] for v, m in by_shift.items()}}, by_shift[shift]


def _filter_name(paths: PathScorer | EASEFilter) -> str:
    if isinstance(paths, EASEFilter):
        return f"EASE lambda {paths.lam:g}, source weight {paths.source_weight:g}"
    return f"default walk, alpha {paths.alpha:g}" if paths.beta is None else f"RP3beta alpha {paths.alpha:g} beta {paths.beta:g}"


def _filter_dict(paths: PathScorer | EASEFilter | None) -> dict:
    if isinstance(paths, EASEFilter):
        return paths.describe()
    return {} if paths is None else {"alpha": paths.alpha, "beta": paths.beta}


@torch.no_grad()
def filter_candidates(graph: RelationalGraph, hops: int, default_alpha: float, task: RankingTask, k: int,
                      memory_mb: int = 256, world: World = SINGLE, ease_weights: tuple[float, ...] = (),
                      ease_neighbours: int = 128) -> tuple[list[tuple[PathScorer | EASEFilter, float]], dict[str, float]]:
    """The best filter of each family by its own NDCG@``k`` on ``task``: the best walk (the default
    walk at ``default_alpha``, or RP3beta at each ``alpha`` of :data:`FILTER_ALPHAS` and ``beta`` of
    :data:`FILTER_BETAS`, one walk per alpha), then the best EASE
    (:class:`~kgrec.models.itemknn.EASEFilter` at each source weight of ``ease_weights``, its ``lambda``
    chosen the same way; left out where the graph is larger than
    :data:`~kgrec.models.itemknn.EASE_MAX_SIDE`). A tie keeps the earlier. Returns the candidates with
    their own NDCG@``k``, and every filter's NDCG@``k`` by name (``"default"``, ``"rp3 a=0.5 b=0.25"``, ``"ease w=0.5 lambda=100"``).
    The run then keeps the candidate whose *blend* with the embeddings is best on validation: two
    filters within noise of each other alone can differ once blended."""
    scores, walk, walk_value = {}, None, -1.0
    for alpha, betas in [(default_alpha, (None,))] + [(a, FILTER_BETAS) for a in FILTER_ALPHAS]:
        scorer = PathScorer(graph, hops, alpha, None if betas == (None,) else 0.0, memory_mb)
        penalty = [None if b is None else scorer.popularity_penalty(task.items, b) for b in betas]

        def every_beta(users: Tensor) -> list[Tensor]:
            walks = scorer.scores(users, task.items)
            return [walks if p is None else walks * p for p in penalty]
        tops = world.rank_each(every_beta, task, k, memory_mb, graph.device, matrices=len(betas) + 1,
                               user_bytes=scorer.batch_bytes(task.items))
        for b, top in zip(betas, tops):
            name = "default" if b is None else f"rp3 a={alpha:g} b={b:g}"
            scores[name] = mean_metrics(metrics_of_top(top, task, (k,)))[f"ndcg@{k}"]
            if scores[name] > walk_value:
                walk_value, walk = scores[name], scorer if b is None else scorer.with_beta(b)
    candidates: list[tuple[PathScorer | EASEFilter, float]] = [(walk, walk_value)]
    ease_best, ease_value = None, -1.0
    for weight in ease_weights:
        ease = EASEFilter(graph, task.items, weight, ease_neighbours)
        if ease.x.nnz == 0 or ease.side > EASE_MAX_SIDE:
            continue
        served, found = fit_ease(ease, task, k, memory_mb, world)
        scores.update(found)
        if served > ease_value:
            ease_value, ease_best = served, ease
    return candidates + ([(ease_best, ease_value)] if ease_best is not None else []), scores


def choose_filter(graph: RelationalGraph, hops: int, default_alpha: float, task: RankingTask, k: int,
                  memory_mb: int = 256, world: World = SINGLE, ease_weights: tuple[float, ...] = (),
                  ease_neighbours: int = 128) -> tuple[PathScorer | EASEFilter, dict[str, float]]:
    """The one filter with the best NDCG@``k`` on ``task`` by its own scores, among
    :func:`filter_candidates`' (a tie keeps the walk), and every filter's NDCG@``k`` by name."""
    candidates, scores = filter_candidates(graph, hops, default_alpha, task, k, memory_mb, world, ease_weights,
                                           ease_neighbours)
    return max(candidates, key=lambda c: c[1])[0], scores  # max keeps the first of a tie: the walk


#: EASE fits a process keeps for its later runs (a benchmark's seeds and variants fit the same matrices)
EASE_FITS_KEPT = 4
_EASE_FITS: dict[bytes, tuple[float, ItemWalks, float, dict[str, float]]] = {}


def fit_ease(ease: EASEFilter, task: RankingTask, k: int, memory_mb: int = 256, world: World = SINGLE,
             lambdas: tuple[float, ...] = EASE_LAMBDAS) -> tuple[float, dict[str, float]]:
    """Choose ``ease``'s ``lambda`` by NDCG@``k`` on ``task`` and leave it scoring with that operator:
    every ``lambda`` of ``lambdas`` is scored exactly, the :data:`~kgrec.models.itemknn.EASE_SHORTLIST`
    best of them are truncated to the weights a run serves, and the best of those is kept (a tie
    keeps the smaller ``lambda``). Returns the kept operator's NDCG@``k`` and every NDCG@``k`` by name:
    ``"ease w=0.5 lambda=50"`` for a truncated operator, ``"ease w=0.5 lambda=50 exact"`` for the
    exact scores. A fit of the same
    interactions, items and task earlier in the process is reused, not recomputed."""
    key = ease.fingerprint(task.items) + _task_key(task, k, lambdas)
    if key not in _EASE_FITS:
        found, shortlist, items = {}, [], task.items.cpu().numpy()
        name = f"ease w={ease.source_weight:g} lambda="
        for lam, scorer in ease.fits(task.items, lambdas):
            top = world.rank_each(lambda users: [scorer(users, items)], task, k, memory_mb, ease.graph.device,
                                  user_bytes=16 * len(items))[0]
            found[f"{name}{lam:g} exact"] = value = mean_metrics(metrics_of_top(top, task, (k,)))[f"ndcg@{k}"]
            shortlist = sorted(shortlist + [(-value, lam, scorer)], key=lambda c: c[:2])[:EASE_SHORTLIST]
        best = (-1.0, 0.0, None)
        for _, lam, scorer in sorted(shortlist, key=lambda c: c[1]):  # the smaller lambda first: a tie keeps it
            walks = ease.truncate(scorer, task.items)
            ease.use(lam, walks)
            top = world.rank_each(lambda users: [ease.scores(users, task.items)], task, k, memory_mb,
                                  ease.graph.device, user_bytes=ease.batch_bytes(task.items))[0]
            found[f"{name}{lam:g}"] = value = mean_metrics(metrics_of_top(top, task, (k,)))[f"ndcg@{k}"]
            if value > best[0]:
                best = (value, lam, walks)
        while len(_EASE_FITS) >= EASE_FITS_KEPT:  # each holds an operator of the catalogue times the neighbours
            del _EASE_FITS[next(iter(_EASE_FITS))]
        _EASE_FITS[key] = (best[1], best[2], best[0], found)
    lam, walks, value, found = _EASE_FITS[key]
    ease.use(lam, walks)
    return value, dict(found)


def _task_key(task: RankingTask, k: int, lambdas: tuple[float, ...]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (task.users, task.items, *task.relevant, *task.exclude, torch.tensor([k, *lambdas])):
        h.update(part.cpu().numpy().tobytes())
    return h.digest()


def _save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    with atomic_file(path, "wb") as f:
        f.write(buf.getvalue())


def _write_history(out: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_file(out / "metrics.csv") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _run_stage(stage: str, cfg: StageConfig, model: TransferModel, graph: RelationalGraph, data: _Batches,
               config: TrainConfig, task: RankingTask, out: Path, gen: torch.Generator, writer, history: list[dict],
               resume: bool, progress: bool, log: Callable[[str], None],
               on_epoch: Callable[[int, float], None] | None = None, graph_checksum: str | None = None,
               world: World = SINGLE) -> dict:
    ckpt = out / "checkpoints" / f"{stage}.pt"
    n = data.pairs[TARGET].shape[1]
    if cfg.for_interactions(n) != cfg:
        cfg = cfg.for_interactions(n)  # linear epochs: at most max_steps propagations
        log(f"{stage}: {n:,} target interactions in {cfg.max_steps} steps per epoch: batch {cfg.batch_size:,}, "
            f"lr {cfg.lr:.4g} ({cfg.lr_scaling} scaling)")
    params = _trainable(model, stage, config)
    opt = adam(params, cfg.lr, cfg.weight_decay)
    key = f"ndcg@{config.eval.k}"
    st = {"epoch": 0, "best": -math.inf, "best_epoch": 0, "best_state": None, "bad": 0, "rows": [], "done": False,
          "epoch_s": []}
    if resume and ckpt.exists():
        saved = load_torch(ckpt, "checkpoint", map_location=graph.device)
        was = saved.get("graph_checksum") if isinstance(saved, dict) else None
        if was and graph_checksum and was != graph_checksum:
            raise KgrecError(f"{ckpt} was trained on another graph than {config.graph} (checksum {was[:12]}..., "
                             f"the graph's is {graph_checksum[:12]}...); resume on that graph, or train afresh "
                             f"with --overwrite")
        try:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["rng"])
            gen.set_state(saved["generator"])
            st = saved["stage"]
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise KgrecError(f"{ckpt}: not a checkpoint of this run ({str(e).splitlines()[0][:120]}); delete it to "
                             f"restart the stage, or train afresh with --overwrite") from None
        log(f"{stage}: resumed after epoch {st['epoch']}" + (" (stage finished)" if st["done"] else ""))
    elif stage == "finetune":
        # the pre-trained model is the score to beat: fine-tuning can only improve on it
        m = mean_metrics(validate(model, graph, task, config.eval.ks, config.eval.memory_mb, world=world))
        st.update(best=m[key], best_state=copy.deepcopy(model.state_dict()))
        st["rows"].append({"stage": stage, "epoch": 0, **{f"valid_{k}": v for k, v in m.items()}})
    history += st["rows"]
    for epoch in range(st["epoch"] + 1, cfg.epochs + 1):
        if st["done"]:
            break
        t0 = time.perf_counter()
        model.train()
        losses = _train_epoch(stage, epoch, model, graph, data, config, cfg, opt, gen, progress, world)
        train_s = time.perf_counter() - t0
        m = mean_metrics(validate(model, graph, task, config.eval.ks, config.eval.memory_mb, world=world))
        better = m[key] > st["best"]
        if better:
            st.update(best=m[key], best_epoch=epoch, best_state=copy.deepcopy(model.state_dict()), bad=0)
        else:
            st["bad"] += 1
        row = {"stage": stage, "epoch": epoch, **losses, **{f"valid_{k}": v for k, v in m.items()},
               "train_s": round(train_s, 3), "epoch_s": round(time.perf_counter() - t0, 3)}
        st["rows"].append(row)
        st["epoch_s"].append(train_s)
        history.append(row)
        step = {"pretrain": 0, "finetune": 10_000, "target_only": 0}[stage] + epoch
        if world.is_main:  # rank 0 alone writes the run directory
            for k, v in row.items():
                if isinstance(v, float):
                    writer.add_scalar(f"{stage}/{k}", v, step)
            writer.flush()
            _write_history(out, history)
        log(f"{stage} epoch {epoch:>3}  loss {losses['loss']:.4f}  valid {key} {m[key]:.4f}"
            f"  recall@{config.eval.k} {m[f'recall@{config.eval.k}']:.4f}  {train_s:.1f}s" + ("  *" if better else ""))
        st["epoch"] = epoch
        st["done"] = st["bad"] >= cfg.patience or epoch == cfg.epochs
        if world.is_main:
            _save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                    "rng": torch.get_rng_state(), "generator": gen.get_state(), "stage": st,
                                    "graph_checksum": graph_checksum})
        if on_epoch is not None:
            on_epoch(sum(1 for r in history if r["epoch"] > 0), m[key])
    if not st["done"]:  # zero epochs configured, or resumed a finished stage
        st["done"] = True
    if st["best_state"] is not None:
        model.load_state_dict(st["best_state"])
    return {"best_epoch": st["best_epoch"], f"best_valid_{key}": st["best"], "epochs": st["epoch"],
            "mean_epoch_s": (sum(st["epoch_s"]) / len(st["epoch_s"])) if st["epoch_s"] else None}


def _versions() -> dict[str, str]:
    import torch_geometric

    from kgrec.version import __version__
    return {"kgrec": __version__, "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
            "python": platform.python_version()}


#: a run's files recorded in run.json: not run.json itself, the TensorBoard events, nor config.toml, which
#: is the user's to edit (to point it at a moved artifact: the graph's own checksum is recorded instead)
RUN_FILES = ("metrics.csv", "model.pt", "paths.pt", "results.json")


def write_run_record(out: Path, run: dict, graph_checksum: str | None) -> None:
    """Write ``out/run.json``: ``run`` plus the checksums of the run's files and of the graph trained on
    (``kgrec update`` rewrites it once the run's own graph is saved)."""
    names = [n for n in RUN_FILES if (out / n).is_file()]
    names += sorted(p.relative_to(out).as_posix() for p in (out / "checkpoints").glob("*.pt"))
    record = {**run, "graph_checksum": graph_checksum, "files": record_files(out, names)}
    with atomic_file(out / "run.json") as f:
        json.dump(record, f, indent=2)


def no_validation_hint(artifact: GraphArtifact) -> str:
    """What to change in the spec when its target split left no validation interaction: the split
    that failed, and one that gives every user with 3+ interactions a validation item."""
    split = ((artifact.manifest.get("spec") or {}).get("target") or {}).get("split") or {}
    method = split.get("method", "?")
    if method in ("ratio", "temporal"):
        return (f"the target's split method = \"{method}\" rounds each user's validation share to 0 items for "
                f"users with few interactions; rebuild with [target.split] method = \"loo\" (one validation and "
                f"one test item per user with 3+ interactions)")
    if method == "given":
        return ("the target's shipped split has no valid part; rebuild with [target.split] valid_from_train = "
                "\"loo\" (one training item per user moved to validation)")
    if method == "loo":
        return "no target user has the 3+ interactions that method = \"loo\" needs to hold one out; lower the filters"
    return (f"the target's split method = \"{method}\" holds nothing out; rebuild with [target.split] "
            f"method = \"loo\"")


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run directory kgrec wrote, finished or killed (what ``--overwrite`` may replace):
    its ``config.toml`` and what training writes next to it from the start (``events/``) or at the end."""
    return (path / "config.toml").is_file() and any((path / n).exists() for n in ("run.json", "events", "model.pt"))


def train(config: TrainConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, log: Callable[[str], None] = print, artifact: GraphArtifact | None = None,
          init: dict | None = None, on_epoch: Callable[[int, float], None] | None = None,
          world: World = SINGLE) -> TrainResult:
    """Train one run (transfer or target-only, per ``config.mode``) into ``out``.

    Args:
        config: the run's :class:`TrainConfig`.
        out: the run directory.
        resume: continue a killed run from its checkpoints (same seed and config -> same result).
        overwrite: replace an existing run directory.
        progress: show tqdm progress bars.
        log: where one-line progress messages go.
        artifact: the graph, when it is not (yet) on disk at ``config.graph``.
        init: a state dict to start from instead of a fresh initialisation (``kgrec update``).
        on_epoch: called after every training epoch with the epochs trained so far, over all stages
            (1, 2, ...), and that epoch's validation NDCG@k; it may raise to stop the run (``kgrec tune``
            prunes a trial so), after the epoch's checkpoint is written.
        world: this process's rank under torchrun (:func:`kgrec.train.distributed.init_from_env`); every
            rank calls ``train`` alike, rank 0 alone writes ``out`` and logs, and all return the same result.

    Raises:
        KgrecError: ``out`` holds another run, the graph is unusable, or the device is unavailable.
    """
    out = Path(out)
    config = dataclasses.replace(config, graph=str(Path(config.graph).resolve()))
    replace_out = False
    if not world.is_main:
        log, progress = (lambda _m: None), False
    if resume:
        check_writable(out / "config.toml")
    elif world.is_main:
        replace_out = check_output(out, overwrite=overwrite, ours=is_run_dir, what="run directory", empty_ok=True,
                               hint="pass resume=True (--resume) to continue it or overwrite=True (--overwrite) "
                                    "to replace it")
    if resume and (out / "config.toml").exists():
        from kgrec.train.config import load_config
        saved = load_config(out / "config.toml")
        if to_toml(saved) != to_toml(config):
            raise KgrecError(f"{out} was started with another config ({out / 'config.toml'}); resume needs the same one")
    device = resolve_device(world.device(config.device))
    started = time.time()
    artifact = artifact if artifact is not None else load_graph(config.graph)
    check_memory(config, {t: int(artifact.data[t].num_nodes) for t in artifact.data.node_types}, device)
    if config.mode == "transfer" and artifact.split("train", SOURCE).shape[1] == 0:
        raise KgrecError(f"{config.graph}: mode = \"transfer\" needs source training interactions; "
                         f"this graph has none (use mode = \"target_only\")")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    features = item_features(artifact, config.model, config.seed)
    merged = RelationalGraph.from_hetero(artifact.data, device)
    valid = sample_users(ranking_task(artifact, "valid"), config.eval.valid_users, config.seed)
    test = ranking_task(artifact, "test", exclude=("train", "valid"))
    if len(valid.users) == 0:
        raise KgrecError(f"{config.graph}: the target domain has no validation interactions, which early stopping "
                         f"needs: {no_validation_hint(artifact)}")
    if replace_out:  # only now that every input is known good
        remove_output(out)
    model_config = resolve_cold_item_id(config.model, len(artifact.cold_items()) > 0)  # config.toml keeps "auto"
    model = TransferModel(merged.sizes, merged.num_relations, model_config, features,
                          discriminator=config.loss.align == "adversarial").to(device)
    if init is not None:
        model.load_state_dict(init)
    writer = None
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_file(out / "config.toml") as f:
            f.write(to_toml(config))
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out / "events"))
    history: list[dict] = []
    summary: dict[str, dict] = {}
    if config.mode == "transfer":
        data = _batches(artifact, merged, (SOURCE, TARGET), config)
        tuned = merged if config.finetune.graph == "merged" else RelationalGraph.from_hetero(
            target_only(artifact.data), device)
        stages = [("pretrain", config.pretrain, merged), ("finetune", config.finetune, tuned)]
    else:
        graph = RelationalGraph.from_hetero(target_only(artifact.data), device)
        data = _batches(artifact, graph, (TARGET,), config)
        stages = [("target_only", config.target_only, graph)]
    try:
        for stage, cfg, graph in stages:
            summary[stage] = _run_stage(stage, cfg, model, graph, data, config, valid, out, gen, writer, history,
                                        resume, progress, log, on_epoch, artifact.manifest.get("checksum"), world)
    finally:  # on_epoch may raise
        if writer is not None:
            writer.close()
    final_graph = stages[-1][2]
    ks = config.eval.ks
    paths, path_graph, path_weight, path_valid, filters = None, "", 0.0, {}, {}
    blended: dict[str, dict[str, float]] = defaultdict(dict)  # view -> candidate filter -> its best blend
    key = f"ndcg@{config.eval.k}"
    if config.model.path_hops > 0:
        best = -1.0
        for view, walked in walk_graphs(config, artifact, merged, final_graph).items():
            ease = (() if not config.model.path_ease else (0.0,) if view == "target" else EASE_SOURCE_WEIGHTS)
            candidates, filters[view] = filter_candidates(walked, config.model.path_hops, config.model.path_alpha,
                                                          valid, config.eval.k, config.eval.memory_mb, world, ease,
                                                          config.model.ease_neighbours)
            kept = None
            for scorer, _ in candidates:  # the filter whose blend is best, not the best alone; a tie keeps the walk
                weight, by_weight = choose_path_weight(model, final_graph, scorer, valid, ks, config.eval.k,
                                                       config.eval.memory_mb, world)
                blended[view][_filter_name(scorer)] = by_weight[weight][key]
                if kept is None or by_weight[weight][key] > kept[0]:
                    kept = (by_weight[weight][key], scorer, weight, by_weight)
            _, scorer, weight, by_weight = kept
            path_valid[view] = {w: m[key] for w, m in by_weight.items()}
            if by_weight[weight][key] > best:  # a tie keeps the first: merged before target
                best, paths, path_graph, path_weight = by_weight[weight][key], scorer, view, weight
                valid_m = by_weight[weight]
        log(f"path scores: {_filter_name(paths)} over the {path_graph} graph at blend weight {path_weight}, "
            f"chosen on validation (filters alone: " + "; ".join(f"{view}: " + ", ".join(
                f"{n} {v:.4f}" for n, v in by.items()) for view, by in filters.items()) + "; best blends: "
            + "; ".join(f"{view}: " + ", ".join(f"{n} {v:.4f}" for n, v in by.items()) for view, by in blended.items())
            + "; blends of the filter kept: "
            + "; ".join(f"{view}: " + ", ".join(f"{w}: {v:.4f}" for w, v in by.items())
                        for view, by in path_valid.items()) + f" {key})")
    else:
        valid_m = mean_metrics(validate(model, final_graph, valid, ks, config.eval.memory_mb, world=world))
    terms, terms_valid = NewItemTerms(), {}
    if config.model.new_item_terms:
        terms, terms_valid, chosen = choose_new_item_terms(model, final_graph, artifact, valid, ks, config.eval.k,
                                                           config.eval.memory_mb, paths, path_weight, world, log)
        valid_m = chosen or valid_m
    test_m = (mean_metrics(validate(model, final_graph, test, ks, config.eval.memory_mb, paths, path_weight, world,
                                    terms)) if len(test.users) else {})
    test_items = {kind: {"users": len(sub.users), "candidates": len(sub.items),
                         **mean_metrics(validate(model, final_graph, sub, ks, config.eval.memory_mb, paths, path_weight,
                                                 world, terms, over=test.items))}
                  for kind, sub in item_group_tasks(artifact, test).items()}  # item cold start: kgrec.eval.items
    if world.is_main:  # rank 0 alone writes the run directory
        _save_checkpoint(out / "model.pt", {
            "state_dict": model.state_dict(), "model_config": asdict(model.config), "sizes": merged.sizes,
            "num_relations": merged.num_relations, "relations": merged.relations,
            "feature_dims": {t: int(getattr(model.encoder, f"features_{t}").shape[1]) for t in model.encoder.projections},
            "discriminator": model.discriminator is not None, "graph_view": "merged" if final_graph is merged else "target_only",
            "path_graph": path_graph, "path_weight": path_weight, "path_filter": _filter_dict(paths),
            "new_item_terms": terms.state()})
        if paths is not None and path_weight:  # what recommend and evaluate would otherwise recompute
            _save_checkpoint(out / "paths.pt", item_walks_state(paths, valid.items, path_graph))
        results = {"valid": valid_m, "test": test_m, "valid_users": len(valid.users), "test_users": len(test.users),
                   "metrics": list(METRICS), "ks": list(ks), "path_graph": path_graph,
                   "path_weight": path_weight, "path_filter": _filter_dict(paths), "path_filter_valid": filters,
                   "path_weight_valid": {view: {str(w): v for w, v in by.items()} for view, by in path_valid.items()},
                   "path_filter_blended": dict(blended), "new_item_terms": terms.state(),
                   "new_item_terms_valid": terms_valid,
                   **({"test_items": test_items} if test_items else {})}
        with atomic_file(out / "results.json") as f:
            json.dump(results, f, indent=2)
        run = {"mode": config.mode, "seed": config.seed, "device": str(device), "graph": config.graph,
               "graph_name": artifact.manifest.get("name"), "versions": _versions(), "stages": summary,
               "world_size": world.size, "backend": world.backend or None,
               "seconds": round(time.time() - started, 1)}
        write_run_record(out, run, artifact.manifest.get("checksum"))
    log(f"{config.mode}: valid ndcg@{config.eval.k} {valid_m[f'ndcg@{config.eval.k}']:.4f}"
        + (f", test ndcg@{config.eval.k} {test_m[f'ndcg@{config.eval.k}']:.4f}" if test_m else "")
        + "".join(f", {kind} items {m[key]:.4f}" for kind, m in test_items.items()) + f"  -> {out}")
    return TrainResult(out, valid_m, test_m, pd.DataFrame(history), model, final_graph, paths, path_weight,
                       path_graph, terms)
