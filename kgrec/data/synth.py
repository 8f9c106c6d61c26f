"""Seeded two-domain data with the shape of real catalogues, written as the files a user has.

``synth(SynthConfig(edges=10_000_000, seed=0), out)`` writes::

    source.parquet, target.parquet   user, item, rating, timestamp (one row per review)
    kg.nt                            N-Triples: items -> categories, brands, tags; categories -> parents;
                                     brands -> countries
    spec.toml                        the graph spec: ``kgrec build OUT/spec.toml --out ARTIFACT``
    synth.json                       the config and the counts drawn

Shape, each part drawn with numpy from one ``default_rng(seed)``:

* **users**: a share ``shared_users`` is active in both domains, the rest in one (in
  proportion to ``target_share``). A user's number of reviews in a domain is Pareto:
  ``n = floor(min_activity · (1 + Lomax(user_alpha)))``, capped at ``max_activity``, so
  ``P(n ≥ x) ∝ x^-user_alpha`` (a heavy tail of very active users, most users near the minimum).
* **items**: ``interactions / interactions_per_item`` per domain, popularity Zipf,
  ``w_i ∝ rank_i^-item_zipf``. Items belong to one category (category sizes Zipf too); the
  source uses the lower 70 % of the categories, the target the upper 70 %: 40 % are shared,
  the KG's cross-domain bridge.
* **reviews**: a user draws a share ``taste`` of their items from one favourite category
  (at the same relative place in both domains, so a shared user's two histories agree), the
  rest from the whole domain, each by popularity; a repeated (user, item) pair is redrawn.
  A share ``low_ratings`` is rated 1–3 (below the spec's threshold of 4, dropped by the build).
* **duplicates**: a share ``duplicates`` of the target's items are listings of source items
  (same id; the spec aligns items by id, as ``[align] items = "id"`` describes).
* **KG**: every item (interacted with or not) has its IRI as a KG entity, with one
  ``category``, one ``brand`` and Poisson(``tags_per_item``) ``tag`` triples (brands and tags
  Zipf-popular); categories form a tree (``subCategoryOf``), brands have a ``country``.

``edges`` is the directed edge count of the graph ``kgrec build`` makes of these files
(every relation has its reverse): ``2 × (training interactions + item–KG links + KG triples +
same-product pairs)``. The interaction count is solved from it with the expected KG size per
item, and the target's two held-out interactions per user (the spec's leave-one-out split)
are subtracted; ``synth.json`` has the count this draw gives (``edges_expected``), usually
within 2 % of ``edges``, and the build's manifest the exact one.

Deterministic: the same config gives byte-identical files (Parquet written without
statistics' timestamps; zstd level fixed).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kgrec.atomic import atomic_directory
from kgrec.errors import KgrecError

IRI = "http://synth.kgrec.org/"
MARKER = "synth.json"
_KG_PER_ITEM_FIXED = 3.0  # linked_to, category, brand (tags come on top)


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`synth` draws; see the module docstring for each knob's meaning."""

    edges: int
    seed: int = 0
    target_share: float = 0.3
    shared_users: float = 0.5
    user_alpha: float = 1.5
    min_activity: int = 3
    max_activity: int = 2_000
    item_zipf: float = 0.9
    interactions_per_item: float = 12.0
    taste: float = 0.6
    categories_per_item: float = 0.01
    brands_per_item: float = 0.025
    tags_per_item: float = 1.0
    tags_vocabulary: float = 0.05   # distinct tags per item
    duplicates: float = 0.02
    low_ratings: float = 0.1

    def check(self) -> None:
        """Raises KgrecError naming the setting out of range."""
        if self.edges < 1_000:
            raise KgrecError(f"synth: edges must be at least 1,000, got {self.edges}")
        for name in ("target_share", "shared_users", "taste", "duplicates", "low_ratings"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0 or (name == "target_share" and v == 0.0):
                raise KgrecError(f"synth: {name} must be in [0, 1) (target_share > 0), got {v}")
        if self.user_alpha <= 1.0 or self.min_activity < 3 or self.max_activity < self.min_activity:
            raise KgrecError("synth: needs user_alpha > 1 and 3 <= min_activity <= max_activity "
                             f"(got {self.user_alpha}, {self.min_activity}, {self.max_activity})")


@dataclass(frozen=True)
class SynthResult:
    """Where :func:`synth` wrote, and what it drew."""

    out: Path
    spec: Path
    counts: dict


def parse_edges(text: str) -> int:
    """``"10M"`` -> 10_000_000, ``"500k"`` -> 500_000, ``"1.5M"``, ``"2000"``.

    Raises:
        KgrecError: not a positive count.
    """
    t = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        raise KgrecError(f"edges: expected a count such as 10M, 500k or 2000, got {text!r}") from None
    if value < 1:
        raise KgrecError(f"edges: expected a positive count, got {text!r}")
    return int(round(value))


def _pareto_counts(rng: np.random.Generator, n: int, c: SynthConfig) -> np.ndarray:
    x = np.floor(c.min_activity * (1.0 + rng.pareto(c.user_alpha, n)))
    return np.minimum(x, c.max_activity).astype(np.int64)


def _zipf_weights(rng: np.random.Generator, n: int, s: float) -> np.ndarray:
    """Weights ``rank^-s`` over ``n`` things in a random order (so index is not popularity)."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    return w[rng.permutation(n)]


def _draw(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(weights)
    return np.searchsorted(cum, rng.random(n) * cum[-1], side="right").clip(max=len(weights) - 1)


@dataclass
class _Domain:
    items: int             # catalogue size
    category: np.ndarray   # [items] category of each item
    users: np.ndarray      # [R] user of each review (local, then global ids)
    item: np.ndarray       # [R] item index within the domain


def _activity(rng: np.random.Generator, c: SynthConfig, n: int) -> np.ndarray:
    """``[n]`` the (local) user of each of ``n`` reviews: Pareto counts per user, just enough users."""
    mean = c.min_activity * c.user_alpha / (c.user_alpha - 1)
    counts = _pareto_counts(rng, int(n / mean * 1.5) + 10, c)
    while counts.sum() < n:
        counts = np.concatenate([counts, _pareto_counts(rng, len(counts), c)])
    keep = int(np.searchsorted(np.cumsum(counts), n)) + 1
    return np.repeat(np.arange(keep), counts[:keep])[:n]


def _reviews(rng: np.random.Generator, c: SynthConfig, who: np.ndarray, taste: np.ndarray, n_items: int,
             cat_lo: int, cat_hi: int, cat_weights: np.ndarray) -> _Domain:
    """Distinct (user, item) reviews of one domain: ``who`` ``[R]`` local users, ``taste`` ``[U]``
    each local user's place in ``[0, 1)`` among the categories (drops the few pairs still
    repeated after redrawing)."""
    category = cat_lo + _draw(rng, cat_weights[cat_lo:cat_hi], n_items)
    popularity = _zipf_weights(rng, n_items, c.item_zipf)
    order = np.argsort(category, kind="stable")
    cum = np.cumsum(popularity[order])
    start = np.searchsorted(category[order], np.arange(cat_lo, cat_hi + 1))
    fav = np.floor(taste * (cat_hi - cat_lo)).astype(np.int64)  # per user, relative to cat_lo
    first_of, end_of = start[fav][who], start[fav + 1][who]
    local = (rng.random(len(who)) < c.taste) & (first_of < end_of)
    lo = np.where(local & (first_of > 0), cum[np.maximum(first_of - 1, 0)], 0.0)
    hi = np.where(local, cum[np.maximum(end_of - 1, 0)], cum[-1])
    del first_of, end_of, local
    item = order[np.searchsorted(cum, lo + rng.random(len(who)) * (hi - lo), side="right").clip(max=n_items - 1)]
    del lo, hi
    for _ in range(8):  # redraw repeated pairs from the whole domain
        _, first = np.unique(who * n_items + item, return_index=True)
        again = np.ones(len(who), dtype=bool)
        again[first] = False
        if not again.any():
            break
        item[again] = order[np.searchsorted(cum, rng.random(int(again.sum())) * cum[-1], side="right")
                            .clip(max=n_items - 1)]
    _, first = np.unique(who * n_items + item, return_index=True)
    first.sort()
    return _Domain(n_items, category, who[first], item[first])


def _plan(c: SynthConfig) -> tuple[int, int]:
    """Interactions to draw in (source, target) so that the graph has about ``c.edges`` edges."""
    kg_per_item = _KG_PER_ITEM_FIXED + c.tags_per_item + c.categories_per_item + c.brands_per_item
    mean_activity = c.min_activity * c.user_alpha / (c.user_alpha - 1)  # Pareto mean, before the cap
    per_interaction = 1 + kg_per_item / c.interactions_per_item - c.target_share * 2 / mean_activity
    total = c.edges / 2 / per_interaction / (1 - c.low_ratings)  # low ratings are drawn on top
    return round(total * (1 - c.target_share)), round(total * c.target_share)


def _write_parquet(path: Path, users: np.ndarray, items: np.ndarray, rng: np.random.Generator,
                   low_share: float) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(users)
    rating = np.where(rng.random(n) < 0.6, 5, 4).astype(np.int8)
    low = rng.random(n) < low_share
    rating[low] = rng.integers(1, 4, int(low.sum()), dtype=np.int8)
    ts = 1_500_000_000 + rng.integers(0, 3 * 365 * 86_400, n, dtype=np.int64)
    table = pa.table({"user": pa.array(users.astype(np.int64)), "item": pa.array(items.astype(np.int64)),
                      "rating": pa.array(rating), "timestamp": pa.array(ts)})
    pq.write_table(table, path, compression="zstd", compression_level=3, write_statistics=False,
                   row_group_size=1 << 20)


def _write_ntriples(head_kind: str, heads: np.ndarray, rel: str, tail_kind: str,
                    tails: np.ndarray, f) -> None:
    lines = np.char.add(np.char.add(f"<{IRI}{head_kind}/", heads.astype(str)),
                        f"> <{IRI}vocab/{rel}> <{IRI}{tail_kind}/")
    lines = np.char.add(np.char.add(lines, tails.astype(str)), "> .\n")
    f.write("".join(lines.tolist()))


def _spec_text(c: SynthConfig) -> str:
    return f'''# Generated by kgrec synth (edges = {c.edges:,}, seed = {c.seed}); see kgrec/data/synth.py.
name = "synth-{c.edges}-{c.seed}"
description = "synthetic two-domain graph: power-law users and items, shared users, a KG"
seed = {c.seed}

[source]
name = "source"
path = "source.parquet"
columns = {{ user = "user", item = "item", rating = "rating", timestamp = "timestamp" }}
threshold = 4.0

[target]
name = "target"
path = "target.parquet"
columns = {{ user = "user", item = "item", rating = "rating", timestamp = "timestamp" }}
threshold = 4.0
split = {{ method = "loo" }}

[[knowledge]]
path = "kg.nt"

[[links]]
domain = "both"
by = "iri"
template = "{IRI}item/{{id}}"

[align]
users = "id"
items = "id"
'''


def synth(config: SynthConfig, out: str | Path, overwrite: bool = False) -> SynthResult:
    """Draw a two-domain dataset per ``config`` and write it to the directory ``out`` (atomically).

    Raises:
        KgrecError: a setting out of range, or ``out`` exists (without ``overwrite``) and is not a
            directory this function wrote.
    """
    c = config
    c.check()
    rng = np.random.default_rng(c.seed)
    n_src, n_tgt = _plan(c)
    who_src, who_tgt = _activity(rng, c, n_src), _activity(rng, c, n_tgt)
    # global user ids: `shared` of the union active in both domains (the target's first users
    # are the source's last), then one random relabelling
    u_src, u_tgt = int(who_src[-1]) + 1, int(who_tgt[-1]) + 1
    shared = min(u_src, u_tgt, round(c.shared_users * (u_src + u_tgt) / (1 + c.shared_users)))
    n_users = u_src + u_tgt - shared
    label = rng.permutation(n_users)
    src_user, tgt_user = label[:u_src], label[u_src - shared:u_src - shared + u_tgt]
    taste = rng.random(n_users)  # a shared user's favourite sits at the same place in both domains
    n_items_src = max(10, round(n_src / c.interactions_per_item))
    n_items_tgt = max(10, round(n_tgt / c.interactions_per_item))
    n_cat = max(10, round((n_items_src + n_items_tgt) * c.categories_per_item))
    cat_weights = _zipf_weights(rng, n_cat, 1.0)
    lo_t, hi_s = round(0.3 * n_cat), round(0.7 * n_cat)
    src = _reviews(rng, c, who_src, taste[src_user], n_items_src, 0, hi_s, cat_weights)
    tgt = _reviews(rng, c, who_tgt, taste[tgt_user], n_items_tgt, lo_t, n_cat, cat_weights)
    del who_src, who_tgt
    src.users, tgt.users = src_user[src.users], tgt_user[tgt.users]
    # item ids: source 0..S-1, target S..S+T-1, a share of target items re-using a source id (duplicates)
    tgt_ids = n_items_src + np.arange(n_items_tgt)
    dup = rng.random(n_items_tgt) < c.duplicates
    tgt_ids[dup] = rng.choice(n_items_src, int(dup.sum()), replace=False) if dup.sum() <= n_items_src else 0
    # the KG: one entity per catalogue item (a duplicate's is its source listing's)
    products = np.concatenate([np.arange(n_items_src), tgt_ids[~dup]])
    product_cat = np.concatenate([src.category, tgt.category[~dup]])
    n_brand = max(5, round(len(products) * c.brands_per_item))
    n_tag = max(5, round(len(products) * c.tags_vocabulary))
    brand = _draw(rng, _zipf_weights(rng, n_brand, 1.0), len(products))
    n_tags = rng.poisson(c.tags_per_item, len(products))
    tag_item = np.repeat(products, n_tags)
    tag = _draw(rng, _zipf_weights(rng, n_tag, 1.0), len(tag_item))
    tag_key = np.unique(tag_item * n_tag + tag)
    tag_item, tag = tag_key // n_tag, tag_key % n_tag
    parent = np.arange(1, n_cat) // 4  # a 4-ary category tree
    country = rng.integers(0, 60, n_brand)

    with atomic_directory(out, overwrite=overwrite, ours=(MARKER, "spec.toml"), what="synthetic dataset") as tmp:
        _write_parquet(tmp / "source.parquet", src.users, src.item, rng, c.low_ratings)
        _write_parquet(tmp / "target.parquet", tgt.users, tgt_ids[tgt.item], rng, c.low_ratings)
        with open(tmp / "kg.nt", "w", encoding="utf-8") as f:
            for lo in range(0, len(products), 1 << 20):
                part = slice(lo, lo + (1 << 20))
                _write_ntriples("item", products[part], "category", "category", product_cat[part], f)
                _write_ntriples("item", products[part], "brand", "brand", brand[part], f)
            for lo in range(0, len(tag_item), 1 << 20):
                part = slice(lo, lo + (1 << 20))
                _write_ntriples("item", tag_item[part], "tag", "tag", tag[part], f)
            _write_ntriples("category", np.arange(1, n_cat), "subCategoryOf", "category", parent, f)
            _write_ntriples("brand", np.arange(n_brand), "country", "country", country, f)
        (tmp / "spec.toml").write_text(_spec_text(c), encoding="utf-8")
        counts = _counts(c, src, tgt, dup, products, len(tag_item), n_cat, n_brand)
        (tmp / MARKER).write_text(json.dumps({"config": asdict(c), "counts": counts}, indent=2) + "\n",
                                  encoding="utf-8")
    out = Path(out)
    return SynthResult(out, out / "spec.toml", counts)


def _counts(c: SynthConfig, src: _Domain, tgt: _Domain, dup: np.ndarray, products: np.ndarray, tags: int,
            n_cat: int, n_brand: int) -> dict:
    """What was drawn, and the edges the build should make of it (before the threshold drops
    low ratings, which the expectation accounts for)."""
    keep = 1 - c.low_ratings
    tgt_users = np.bincount(tgt.users).astype(bool).sum() if len(tgt.users) else 0
    interactions = len(src.users) + len(tgt.users)
    train = keep * interactions - 2 * tgt_users
    reached = len(np.unique(src.item)) + len(np.unique(tgt.item))  # items with a review: linked_to
    kg = 2 * len(products) + tags + (n_cat - 1) + n_brand
    expected = 2 * (train + reached + kg + int(dup.sum()))
    return {"users": int(len(np.union1d(np.unique(src.users), np.unique(tgt.users)))),
            "shared_users": int(len(np.intersect1d(np.unique(src.users), np.unique(tgt.users)))),
            "source_reviews": int(len(src.users)), "target_reviews": int(len(tgt.users)),
            "source_items": int(src.items), "target_items": int(tgt.items),
            "duplicate_listings": int(dup.sum()), "kg_triples": int(kg), "categories": n_cat, "brands": n_brand,
            "edges_asked": c.edges, "edges_expected": int(round(expected))}
