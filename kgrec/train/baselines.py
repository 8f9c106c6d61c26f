"""Training the baselines with the same budget, loss, sampler and early stopping as kgrec's model.

``fit_baseline(name, ...)`` for ``name`` in :data:`BASELINES`:

- ``mostpop``: target items by training popularity (no training);
- ``bprmf``: BPR-MF on the target interactions;
- ``lightgcn``: LightGCN on the target interactions;
- ``lightgcn_merged``: LightGCN on both domains' interactions, joined at the shared users;
- ``cmf``: collective MF: BPR-MF on both domains with shared user factors;
- ``paths``, ``paths_merged``: the graph-filter scores of :mod:`kgrec.models.paths` alone
  (normalised walk counts, no training), over the target's own graph or the merged one:
  what kgrec's embeddings are blended with, scored by themselves;
- ``emcdr``: EMCDR-style: BPR-MF per domain, an MLP mapping source to target user
  embeddings fitted on the users present in both; users without target training
  interactions are scored with their mapped source embedding.
- ``ease``: EASE (closed form, :mod:`kgrec.models.itemknn`) on the target interactions,
  ``lambda`` chosen among :data:`~kgrec.models.itemknn.EASE_LAMBDAS`;
- ``kg_knn``, ``text_knn`` (:data:`CONTENT_BASELINES`, for new items): content item kNN
  (:mod:`kgrec.models.content`) over the items' KG and attribute entities, or the TF-IDF of their
  text; the history (target, or both domains) and for ``kg_knn`` the hops (1, 2) chosen on
  validation (on the new items' pairs, where the graph holds new items). They score an item with
  no interaction at all;
- ``rp3beta``, ``rp3beta_merged``: RP3beta walks (:mod:`kgrec.models.itemknn`) over the
  target interactions, or over both domains' (user -> any item -> user -> target item),
  ``(alpha, beta)`` chosen among :data:`~kgrec.models.itemknn.RP3BETA_ALPHAS` x
  :data:`~kgrec.models.itemknn.RP3BETA_BETAS`.

The closed-form ones (``ease``, ``rp3beta*``) train nothing: each setting of their grid is
scored by full-ranking NDCG@k on the target's validation split and the best is kept; their
history has one row per setting (``model``, ``setting``, its values, ``valid_ndcg@k``,
``seconds``: its share of the time). They break ties (users without history, items a walk
does not reach) by training popularity: ``1e-6`` x popularity / max popularity is added to
the scores (RP3beta's rows first scaled to a maximum of 1, which keeps their order).

``lightgcn_merged`` and ``cmf`` weight the two domains' ranking losses by
``loss.source_weight`` and ``loss.target_weight``, as kgrec's pre-training does.
Every trained model is validated each epoch by full-ranking NDCG@k on the target's
validation split and keeps its best epoch (patience as configured).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import Tensor, nn

from kgrec.eval import RankingTask, evaluate, mean_metrics, metrics_of_top, ranking_task
from kgrec.errors import KgrecError
from kgrec.eval.items import item_group_tasks, positions
from kgrec.eval.ranking import rank_each
from kgrec.graph.artifact import SOURCE, TARGET, GraphArtifact
from kgrec.graph.views import target_only
from kgrec.models.baselines import MF, LightGCN, Mapping, most_popular
from kgrec.models.content import content_knn, content_settings, item_content
from kgrec.models.graph import RelationalGraph, gather_rows
from kgrec.models.heads import dot_each
from kgrec.models.itemknn import EASE, EASE_LAMBDAS, RP3BETA_ALPHAS, RP3BETA_BETAS, RP3beta
from kgrec.models.paths import PathScorer
from kgrec.train.config import LossConfig, StageConfig
from kgrec.train.losses import RANKING_LOSSES, l2_penalty
from kgrec.graph.negatives import NegativeSampler
from kgrec.train.trainer import adam, resolve_device

BASELINES = ("mostpop", "bprmf", "lightgcn", "lightgcn_merged", "cmf", "emcdr", "paths", "paths_merged", "ease",
             "rp3beta", "rp3beta_merged")
#: content baselines (new items): fitted by :func:`fit_baseline` too, benchmarked where the graph has cold items
CONTENT_BASELINES = ("kg_knn", "text_knn")


@dataclass
class BaselineFit:
    """A fitted baseline: ``score(users [B]) -> [B, n_items]`` over all item indices, and its history."""

    name: str
    score: Callable[[Tensor], Tensor]
    history: pd.DataFrame
    seconds: float


def _fit_mf(model: MF, artifact: GraphArtifact, domains: tuple[str, ...], stage: StageConfig, loss: LossConfig,
            gen: torch.Generator, device: torch.device, task: RankingTask | None, k: int, name: str,
            log: Callable[[str], None]) -> tuple[MF, list[dict]]:
    """BPR (or BCE) training of an MF-family model on ``domains``; early stopping on ``task`` when given."""
    n_users = int(artifact.data["user"].num_nodes)
    pairs = {d: artifact.split("train", d) for d in domains}
    samplers = {d: NegativeSampler(p[0], p[1], artifact.training_items(d), n_users, loss.sampler) for d, p in pairs.items()}
    lead = domains[-1]  # an epoch is one pass over the target's (or the only domain's) pairs
    stage = stage.for_interactions(pairs[lead].shape[1])  # at most max_steps propagations per epoch
    opt = adam(list(model.parameters()), stage.lr, stage.weight_decay)
    best, best_state, bad, rows = -math.inf, None, 0, []
    n = pairs[lead].shape[1]
    for epoch in range(1, stage.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, steps = 0.0, max(1, math.ceil(n / stage.batch_size))
        for s in range(steps):
            idx = perm[s * stage.batch_size:(s + 1) * stage.batch_size]
            users_emb, items_emb = model()
            u0, i0 = model.inputs()
            batch_loss, reg = 0.0, 0.0
            for d in domains:
                p = pairs[d]
                j = idx if d == lead else torch.randint(p.shape[1], (len(idx),), generator=gen)
                u, pos = p[0, j], p[1, j]
                neg = samplers[d].sample(u, loss.negatives, gen)
                u, pos, neg = u.to(device), pos.to(device), neg.to(device)
                eu = gather_rows(users_emb, u)
                s_pos = (eu * gather_rows(items_emb, pos)).sum(-1)
                s_neg = dot_each(eu, gather_rows(items_emb, neg))
                weight = 1.0 if len(domains) == 1 else (loss.target_weight if d == TARGET else loss.source_weight)
                batch_loss = batch_loss + weight * RANKING_LOSSES[loss.loss](s_pos, s_neg)
                reg = reg + l2_penalty(u0, u, len(idx)) \
                    + l2_penalty(i0, torch.cat([pos, neg.flatten()]), len(idx))
            total_loss = batch_loss + loss.l2 * reg
            opt.zero_grad(set_to_none=True)
            total_loss.backward()
            opt.step()
            total += total_loss.item()
        row = {"model": name, "epoch": epoch, "loss": total / steps, "train_s": round(time.perf_counter() - t0, 3)}
        if task is not None:
            model.eval()
            with torch.no_grad():
                users_emb, items_emb = model()
            m = mean_metrics(evaluate(lambda us: users_emb[us.to(device)] @ items_emb[task.items.to(device)].T, task,
                                      (k,), device=device))
            row[f"valid_ndcg@{k}"] = m[f"ndcg@{k}"]
            if m[f"ndcg@{k}"] > best:
                best, best_state, bad = m[f"ndcg@{k}"], copy.deepcopy(model.state_dict()), 0
            else:
                bad += 1
        rows.append(row)
        log(f"{name} epoch {epoch:>3}  loss {row['loss']:.4f}" +
            (f"  valid ndcg@{k} {row[f'valid_ndcg@{k}']:.4f}" if task is not None else ""))
        if bad >= stage.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, rows


def _held_out_task(artifact: GraphArtifact, domain: str) -> RankingTask | None:
    for split in ("valid", "test"):
        task = ranking_task(artifact, split, domain)
        if len(task.users):
            return task
    return None


def fit_baseline(name: str, artifact: GraphArtifact, stage: StageConfig, loss: LossConfig, dim: int = 64,
                 layers: int = 2, seed: int = 0, device: torch.device | str = "cpu", k: int = 10,
                 log: Callable[[str], None] = lambda m: None, path_hops: int = 3,
                 path_alpha: float = 0.75) -> BaselineFit:
    """Fit baseline ``name`` (see :data:`BASELINES`) with ``stage``'s budget and ``loss``'s settings
    (``path_hops``, ``path_alpha``: the walks of ``paths`` and ``paths_merged``).

    Raises:
        ValueError: unknown name.
    """
    if name not in BASELINES + CONTENT_BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES + CONTENT_BASELINES)}")
    device = resolve_device(str(device))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    n_users, n_items = int(artifact.data["user"].num_nodes), int(artifact.data["item"].num_nodes)
    task = ranking_task(artifact, "valid")
    if name == "mostpop":
        pop = most_popular(artifact).to(device)
        return BaselineFit(name, lambda users: pop.expand(len(users), -1), pd.DataFrame(), time.perf_counter() - t0)
    if name in ("paths", "paths_merged"):
        data = artifact.data if name == "paths_merged" else target_only(artifact.data)
        scorer = PathScorer(RelationalGraph.from_hetero(data, device), path_hops, path_alpha)
        items = artifact.items_of(TARGET).to(device)

        def score(users: Tensor) -> Tensor:
            out = torch.full((len(users), n_items), float("-inf"), device=device)
            out[:, items] = scorer.scores(users, items)
            return out
        return BaselineFit(name, score, pd.DataFrame(), time.perf_counter() - t0)
    if name == "ease":
        return _fit_ease(artifact, task, k, device, log, t0)
    if name in CONTENT_BASELINES:
        return _fit_content(name, artifact, task, k, device, log, t0)
    if name in ("rp3beta", "rp3beta_merged"):
        return _fit_rp3beta(name, artifact, task, k, device, log, t0)
    if name in ("bprmf", "cmf"):
        domains = (TARGET,) if name == "bprmf" else (SOURCE, TARGET)
        model, rows = _fit_mf(MF(n_users, n_items, dim).to(device), artifact, domains, stage, loss, gen, device,
                              task, k, name, log)
    elif name in ("lightgcn", "lightgcn_merged"):
        domains = (TARGET,) if name == "lightgcn" else (SOURCE, TARGET)
        pairs = torch.cat([artifact.split("train", d) for d in domains], 1)
        model = LightGCN(n_users, n_items, dim, pairs, layers).to(device)
        model, rows = _fit_mf(model, artifact, domains, stage, loss, gen, device, task, k, name, log)
    else:
        return _fit_emcdr(artifact, stage, loss, dim, gen, device, task, k, log, t0)
    with torch.no_grad():
        users_emb, items_emb = model()
    return BaselineFit(name, lambda users: users_emb[users.to(device)] @ items_emb.T, pd.DataFrame(rows),
                       time.perf_counter() - t0)


def _fit_emcdr(artifact: GraphArtifact, stage: StageConfig, loss: LossConfig, dim: int, gen: torch.Generator,
               device: torch.device, task: RankingTask, k: int, log, t0: float) -> BaselineFit:
    n_users, n_items = int(artifact.data["user"].num_nodes), int(artifact.data["item"].num_nodes)
    source, rows_s = _fit_mf(MF(n_users, n_items, dim).to(device), artifact, (SOURCE,), stage, loss, gen, device,
                             _held_out_task(artifact, SOURCE), k, "emcdr source MF", log)
    target, rows_t = _fit_mf(MF(n_users, n_items, dim).to(device), artifact, (TARGET,), stage, loss, gen, device,
                             task, k, "emcdr target MF", log)
    s_count = torch.bincount(artifact.split("train", SOURCE)[0], minlength=n_users)
    t_count = torch.bincount(artifact.split("train", TARGET)[0], minlength=n_users)
    both = ((s_count > 0) & (t_count > 0)).nonzero().flatten().to(device)
    with torch.no_grad():
        us, ut = source.users.weight.detach(), target.users.weight.detach()
    mapping = Mapping(dim).to(device)
    opt = adam(list(mapping.parameters()), 1e-3)
    perm_gen = torch.Generator().manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
    for _ in range(100):  # epochs over the overlapping users, mini-batches of 256
        perm = both[torch.randperm(len(both), generator=perm_gen).to(device)]
        for s in range(0, len(perm), 256):
            b = perm[s:s + 256]
            err = nn.functional.mse_loss(mapping(us[b]), ut[b])
            opt.zero_grad(set_to_none=True)
            err.backward()
            opt.step()
    with torch.no_grad():
        mapped = mapping(us)
    warm = (t_count > 0).to(device).unsqueeze(1)
    users_emb = torch.where(warm, ut, mapped)
    items_emb = target.items.weight.detach()
    rows = [{**r} for r in rows_s + rows_t]
    return BaselineFit("emcdr", lambda users: users_emb[users.to(device)] @ items_emb.T, pd.DataFrame(rows),
                       time.perf_counter() - t0)


def _popularity_ties(artifact: GraphArtifact) -> Tensor:
    """``[M]`` over the target's items: ``1e-6`` x training popularity / max popularity."""
    pop = most_popular(artifact)[artifact.items_of(TARGET)]
    return 1e-6 * pop / pop.max().clamp(min=1.0)


def _valid_ndcg(top: Tensor, task: RankingTask, k: int) -> float:
    return mean_metrics(metrics_of_top(top, task, (k,)))[f"ndcg@{k}"]


def _chosen(rows: list[dict], k: int) -> int:
    """Index of the best setting on validation (the first of the grid when there is no validation user)."""
    values = [r[f"valid_ndcg@{k}"] for r in rows]
    return max(range(len(rows)), key=lambda j: (-math.inf if math.isnan(values[j]) else values[j], -j))


def _on_all_items(score: Callable[[Tensor], Tensor], items: Tensor, n_items: int,
                  device: torch.device) -> Callable[[Tensor], Tensor]:
    """``score(users) -> [B, M]`` over ``items`` as ``[B, n_items]``, ``-inf`` elsewhere, on ``device``."""
    def full(users: Tensor) -> Tensor:
        out = torch.full((len(users), n_items), float("-inf"), device=device)
        out[:, items.to(device)] = score(users.cpu()).to(device)
        return out
    return full


def _fit_ease(artifact: GraphArtifact, task: RankingTask, k: int, device: torch.device,
              log: Callable[[str], None], t0: float) -> BaselineFit:
    """EASE on the target's training pairs, ``lambda`` chosen on ``task``."""
    n_users, n_items = int(artifact.data["user"].num_nodes), int(artifact.data["item"].num_nodes)
    items = artifact.items_of(TARGET)  # the order of task.items: local index = position
    train = artifact.split("train", TARGET)
    model = EASE(torch.stack([train[0], positions(train[1], items)]), n_users, len(items))
    ties = _popularity_ties(artifact)
    log(f"ease: {'dual' if model.dual else 'primal'} form, eigendecomposition in {time.perf_counter() - t0:.1f}s")
    rows, best = [], None
    for lam in EASE_LAMBDAS:
        t1 = time.perf_counter()
        scorer = model.solve(lam)
        top = rank_each(lambda us, s=scorer: [s(us) + ties], task, k)[0]
        rows.append({"model": "ease", "setting": f"lambda={lam:g}", "lambda": lam,
                     f"valid_ndcg@{k}": _valid_ndcg(top, task, k), "seconds": round(time.perf_counter() - t1, 2)})
        log(f"ease lambda={lam:g}  valid ndcg@{k} {rows[-1][f'valid_ndcg@{k}']:.4f}")
        if _chosen(rows, k) == len(rows) - 1:
            best = scorer
        del scorer
    chosen = rows[_chosen(rows, k)]
    log(f"ease: chose {chosen['setting']} (valid ndcg@{k} {chosen[f'valid_ndcg@{k}']:.4f})")
    return BaselineFit("ease", _on_all_items(lambda us: best(us) + ties, items, n_items, device), pd.DataFrame(rows),
                       time.perf_counter() - t0)


def _normalised(scores: Tensor, ties: Tensor) -> Tensor:
    """Each row divided by its maximum (when positive; the ranking is unchanged), plus ``ties``."""
    top = scores.max(1, keepdim=True).values
    return scores / torch.where(top > 0, top, torch.ones_like(top)) + ties


def _fit_rp3beta(name: str, artifact: GraphArtifact, task: RankingTask, k: int, device: torch.device,
                 log: Callable[[str], None], t0: float) -> BaselineFit:
    """RP3beta on the target's training pairs (``rp3beta``) or both domains' (``rp3beta_merged``),
    ``(alpha, beta)`` chosen on ``task``; scores on the target's items."""
    n_users, n_items = int(artifact.data["user"].num_nodes), int(artifact.data["item"].num_nodes)
    domains = (SOURCE, TARGET) if name == "rp3beta_merged" else (TARGET,)
    pairs = torch.cat([artifact.split("train", d) for d in domains], 1)
    items = artifact.items_of(TARGET)
    ties = _popularity_ties(artifact)
    rows, models = [], {}
    for alpha in RP3BETA_ALPHAS:
        t1 = time.perf_counter()
        model = models[alpha] = RP3beta(pairs, n_users, n_items, alpha, items)
        tops = rank_each(lambda us, m=model: [_normalised(s, ties) for s in m.scores_each(us, RP3BETA_BETAS)],
                         task, k, matrices=len(RP3BETA_BETAS) + 2)
        seconds = round((time.perf_counter() - t1) / len(RP3BETA_BETAS), 2)
        for beta, top in zip(RP3BETA_BETAS, tops):
            rows.append({"model": name, "setting": f"alpha={alpha:g} beta={beta:g}", "alpha": alpha, "beta": beta,
                         f"valid_ndcg@{k}": _valid_ndcg(top, task, k), "seconds": seconds})
            log(f"{name} {rows[-1]['setting']}  valid ndcg@{k} {rows[-1][f'valid_ndcg@{k}']:.4f}")
    chosen = rows[_chosen(rows, k)]
    log(f"{name}: chose {chosen['setting']} (valid ndcg@{k} {chosen[f'valid_ndcg@{k}']:.4f})")
    model, beta = models[chosen["alpha"]], chosen["beta"]
    score = _on_all_items(lambda us: _normalised(model.scores(us, beta), ties), items, n_items, device)
    return BaselineFit(name, score, pd.DataFrame(rows), time.perf_counter() - t0)


def _content_features(name: str, artifact: GraphArtifact, hops: int):
    """The content rows of every item for ``kg_knn`` (entities, ``hops``) or ``text_knn`` (text).

    Raises:
        KgrecError: the graph has no item-entity edges (``kg_knn``) or no item text (``text_knn``).
    """
    try:
        return item_content(artifact, "text" if name == "text_knn" else "entities", hops)
    except KgrecError as e:
        raise KgrecError(f"{name}: {e}") from None


def _fit_content(name: str, artifact: GraphArtifact, task: RankingTask, k: int, device: torch.device,
                 log: Callable[[str], None], t0: float) -> BaselineFit:
    """``kg_knn`` / ``text_knn``: the history (target, both domains) and, for ``kg_knn``, the hops chosen on
    ``task``: on its pairs on new items ranked among the new items where the graph holds new items (what a
    content baseline is for, and what kgrec's own content term is chosen on), else on all its pairs."""
    n_items = int(artifact.data["item"].num_nodes)
    items = artifact.items_of(TARGET)
    ties = _popularity_ties(artifact)
    on, on_ties = task, ties
    among = item_group_tasks(artifact, task).get("cold_among_cold")
    if among is not None:
        on, on_ties = among, ties[positions(among.items, items)]
    kind = "text" if name == "text_knn" else "entities"
    settings = [s for s in content_settings(artifact) if s["kind"] == kind]
    if not settings:  # the graph lacks that content: item_content says what is missing
        _content_features(name, artifact, 1)
        raise KgrecError(f"{name}: the graph's items have no {kind} to compare")
    rows, models, features = [], {}, {}
    for setting in settings:
        hops, history = setting["hops"], setting["history"]
        if hops not in features:
            features[hops] = _content_features(name, artifact, hops)
        t1 = time.perf_counter()
        model = models[(hops, history)] = content_knn(artifact, setting, features[hops])
        top = rank_each(lambda us, m=model: [_normalised(m.scores(us, on.items), on_ties)], on, k)[0]
        rows.append({"model": name, "setting": f"hops={hops} history={history}", "hops": hops, "history": history,
                     f"valid_ndcg@{k}": _valid_ndcg(top, on, k), "seconds": round(time.perf_counter() - t1, 2)})
        on_what = " (new items among new items)" if among is not None else ""
        log(f"{name} {rows[-1]['setting']}  valid ndcg@{k}{on_what} {rows[-1][f'valid_ndcg@{k}']:.4f}")
    chosen = rows[_chosen(rows, k)]
    log(f"{name}: chose {chosen['setting']} (valid ndcg@{k} {chosen[f'valid_ndcg@{k}']:.4f})")
    model = models[(chosen["hops"], chosen["history"])]
    score = _on_all_items(lambda us: _normalised(model.scores(us, items), ties), items, n_items, device)
    return BaselineFit(name, score, pd.DataFrame(rows), time.perf_counter() - t0)
