"""Summaries of a graph artifact: what ``kgrec info`` prints."""
from __future__ import annotations

from kgrec.graph.align import duplicate_audit
from kgrec.graph.artifact import SOURCE, TARGET, GraphArtifact, edge_key


def graph_info(g: GraphArtifact) -> dict:
    """Counts per node and edge type and domain, overlap, split sizes and density, the items aligned
    across domains with the held-out pairs removed as duplicates, and an audit of what duplicates
    remain (identical user sets over all interactions, :func:`~kgrec.graph.align.duplicate_audit`)."""
    m = g.manifest
    domains = m.get("domains", {})
    nodes = {}
    for t, frame in g.nodes.items():
        nodes[t] = {"total": int(len(frame)), **{str(k): int(v) for k, v in frame["domain"].value_counts().sort_index().items()}}
    edges = {edge_key(et): int(g.data[et].edge_index.shape[1]) for et in sorted(g.data.edge_types)}
    inter = g.interactions
    splits, density = {}, {}
    for role, name in domains.items():
        part = inter[inter["domain"] == role]
        live = part[~part["duplicate"]]
        splits[role] = {s: int((live["split"] == s).sum()) for s in ("train", "valid", "test")}
        n_users = int(part["user"].nunique())
        n_items = int((g.nodes["item"]["domain"] == role).sum())
        train = splits[role]["train"]
        density[role] = {"users": n_users, "items": n_items, "train_interactions": train,
                         "density": round(train / (n_users * n_items), 8) if n_users and n_items else 0.0}
    users = g.nodes["user"]
    entities = g.nodes.get("entity")
    return {
        "name": m.get("name"),
        "domains": domains,
        "nodes": nodes,
        "edges": edges,
        "relations": int(len(g.relations)),
        "users_in_both_domains": int((users["domain"] == "both").sum()),
        "cold_start_users": int(users["cold_start"].sum()),
        "cold_start_items": _cold_items(g),
        "shared_entities": int((entities["domain"] == "both").sum()) if entities is not None else 0,
        "splits": splits,
        "density": density,
        "literals": int(len(g.literals)),
        "item_alignment": m.get("accounting", {}).get("item_alignment", {"method": "none"}),
        "duplicate_audit": duplicate_audit(g) if SOURCE in domains else None,
    }


def _cold_items(g: GraphArtifact) -> dict:
    """Cold-start (new) target items: how many, and how many held-out interactions each split has on them."""
    cold = g.cold_items()
    inter = g.interactions
    on = inter[(inter["domain"] == TARGET) & inter["item"].isin(cold.tolist()) & ~inter["duplicate"]]
    per_split = {s: on.loc[on["split"] == s, "item"] for s in ("train", "valid", "test")}
    return {"items": int(len(cold)), **{f"{s}_items": int(v.nunique()) for s, v in per_split.items() if s != "train"},
            **{f"{s}_interactions": int(len(v)) for s, v in per_split.items()}}


def _cold_item_lines(c: dict | None) -> list[str]:
    if not c or not c["items"]:
        return []
    return [f"cold-start items       {c['items']:,}   valid {c['valid_items']:,} items ({c['valid_interactions']:,} "
            f"interactions), test {c['test_items']:,} items ({c['test_interactions']:,}), "
            f"train interactions {c['train_interactions']:,}"]


def format_info(info: dict) -> str:
    """Human-readable text of :func:`graph_info`."""
    d = info["domains"]
    lines = [f"graph {info['name']}: " + " -> ".join(f"{d[r]} ({r})" for r in (SOURCE, TARGET) if r in d), "", "nodes"]
    for t, c in info["nodes"].items():
        per = ", ".join(f"{k} {v:,}" for k, v in c.items() if k != "total")
        lines.append(f"  {t:<8}{c['total']:>12,}   {per}")
    lines += ["", "edges"]
    width = max((len(k) for k in info["edges"]), default=10)
    for k, v in info["edges"].items():
        lines.append(f"  {k:<{width}}{v:>12,}")
    lines += ["", f"users in both domains  {info['users_in_both_domains']:,}",
              f"cold-start users       {info['cold_start_users']:,}",
              *_cold_item_lines(info.get("cold_start_items")),
              f"shared entities        {info['shared_entities']:,}",
              f"relations              {info['relations']:,}", "", "splits (interactions)"]
    for role, s in info["splits"].items():
        dens = info["density"][role]
        lines.append(f"  {d[role]:<12} train {s['train']:>9,}  valid {s['valid']:>7,}  test {s['test']:>7,}"
                     f"   users {dens['users']:,}  items {dens['items']:,}  density {dens['density']:.6f}")
    a = info.get("item_alignment") or {"method": "none"}
    lines += ["", f"items aligned across domains ({a['method']})"]
    if a["method"] != "none":
        removed = a["duplicates_removed"]
        lines += [f"  same products           {a['pairs']:,} pairs ({a['source_items']:,} source, "
                  f"{a['target_items']:,} target items)",
                  f"  held-out pairs removed  valid {removed['valid']:,}  test {removed['test']:,}   (the user has "
                  f"the same product in source training)"]
    audit = info.get("duplicate_audit")
    if audit and "test" in audit:
        t = audit["test"]
        share = t["duplicates"] / t["pairs"] if t["pairs"] else 0.0
        lines.append(f"  audit: test pairs repeating a source training interaction under another listing "
                     f"(identical sets of >= {audit['min_users']} users): {t['duplicates']:,} of {t['pairs']:,} "
                     f"({share:.1%}), {t['users']:,} users")
    return "\n".join(lines)
