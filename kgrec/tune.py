"""Hyper-parameter search for kgrec: an Optuna study of training runs, chosen on validation only.

Each trial trains kgrec (the config's ``mode``) with the trial's settings of a few config keys
(the *search space*, dotted keys -> :class:`Param`; the first trial is the base config's own values,
where the space holds them) and scores the best validation NDCG@k
(``eval.k``) the run reached, the score its early stopping keeps. The test split is taken out
of the graph the trials see (:func:`validation_view`), so no choice can depend on it. The
TPE sampler proposes settings; a median pruner stops a trial whose best validation NDCG after
an epoch is below the median of earlier trials at that epoch (after ``warmup`` epochs).

**Several graphs** (``kgrec tune A.toml B.toml ...``): each trial trains every graph with the
same settings and scores the *geometric mean* of their validation NDCG@k, so that a setting is
judged by its relative gain on each graph whatever the graphs' scales, and one that wins big on
one graph while losing on another does not; the pruner watches the first graph's epochs.

Output directory::

    study.db          the Optuna study (SQLite): running again continues it up to N trials
    trials.csv        every trial: number, state, validation NDCG@k (and each graph's), seconds, settings
    best.toml         the best trial's full training config: ``kgrec train OUT/best.toml`` repeats it
                      (on the first graph)
    trials/NNNN/      each trial's run directory (config, metrics.csv, results.json); with several
                      graphs one per graph in it, ``trials/NNNN/GRAPH/``; only the best trial keeps
                      its weights (model.pt), and no trial its checkpoints

Use it to choose defaults that hold across graphs, not to fit one pair: a score chosen as the
best of many trials on one validation split is optimistic for that split.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna

from kgrec.atomic import atomic_file, check_directory, remove_output
from kgrec.errors import OutputError, SpecError
from kgrec.graph.artifact import GraphArtifact
from kgrec.io import read_json
from kgrec.tomlconfig import read_toml
from kgrec.train.budget import check_memory
from kgrec.train.config import TrainConfig, parse_config, to_toml
from kgrec.train.trainer import resolve_device, train, write_run_record

STUDY_NAME = "kgrec"


@dataclass(frozen=True)
class Param:
    """One searched config key: a range ``low``..``high`` (log-uniform with ``log``; integers when
    the key is an integer) or a list of ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial: optuna.Trial, key: str, integer: bool) -> Any:
        if self.choices:
            return trial.suggest_categorical(key, list(self.choices))
        if integer:
            return trial.suggest_int(key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(key, float(self.low), float(self.high), log=self.log)

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices, or within the range."""
        if self.choices:
            return value in self.choices
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def values(self) -> tuple:
        """The values to check against the config: the choices, or both ends of the range."""
        return self.choices or (self.low, self.high)


#: what ``kgrec tune`` searches unless given ``--space``: the transfer loss weights, the encoder's
#: depth and width, the pre-training step size and L2 (``loss.kg_weight`` only where the graph has
#: KG edges; see :func:`default_space`)
DEFAULT_SPACE: dict[str, Param] = {
    "loss.target_weight": Param(0.02, 2.0, log=True),
    "loss.source_weight": Param(0.1, 1.0),
    "model.layers": Param(1, 3),
    "pretrain.lr": Param(1e-3, 2e-2, log=True),
    "loss.l2": Param(1e-6, 1e-3, log=True),
    "loss.kg_weight": Param(0.0, 0.5),
    "model.dim": Param(choices=(32, 64, 128)),
}


def default_space(artifact: GraphArtifact | Sequence[GraphArtifact], config: TrainConfig) -> dict[str, Param]:
    """:data:`DEFAULT_SPACE` for these graphs and mode: without ``loss.kg_weight`` when no graph has
    an edge but interactions; for ``mode = "target_only"`` without the source's weight and the
    pre-training stage (its own stage's ``lr`` instead)."""
    space = dict(DEFAULT_SPACE)
    artifacts = [artifact] if isinstance(artifact, GraphArtifact) else list(artifact)
    if not any((a.relations["kind"] != "interaction").any() for a in artifacts):
        del space["loss.kg_weight"]
    if config.mode == "target_only":
        del space["loss.source_weight"], space["loss.target_weight"]
        space["target_only.lr"] = space.pop("pretrain.lr")
    return space


def configure(config: TrainConfig, settings: Mapping[str, Any], where: str = "<tune>") -> TrainConfig:
    """``config`` with dotted keys set, validated like a config file.

    Raises:
        SpecError: a key that is not a config key, or a value it does not take (naming ``where``).
    """
    data = tomllib.loads(to_toml(config))
    for key, value in settings.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.get(part)
            if not isinstance(node, dict):
                raise SpecError(where, key, "not a config key")
        if leaf not in node:
            raise SpecError(where, key, "not a config key")
        node[leaf] = value
    return parse_config(data, where)


def load_space(path: str | Path, config: TrainConfig) -> dict[str, Param]:
    """Read a search space from TOML: one entry per dotted config key, either ``[low, high]`` (a
    uniform range), ``{ low = .., high = .., log = true }`` (log-uniform) or ``{ choices = [..] }``::

        "loss.target_weight" = { low = 0.02, high = 2, log = true }
        model.layers = [1, 3]
        model.head = { choices = ["dot", "distmult"] }

    Every end and choice is checked against ``config`` (the key exists and takes it).

    Raises:
        SpecError: naming the file and the key.
    """
    space: dict[str, Param] = {}

    def flatten(table: dict, prefix: str) -> None:
        for k, v in table.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and not set(v) & {"low", "high", "log", "choices"}:
                flatten(v, key)
            else:
                space[key] = _param(path, key, v)
    flatten(read_toml(path, "search space"), "")
    if not space:
        raise SpecError(path, "<root>", "the search space is empty: give at least one key, e.g. model.dim = [16, 128]")
    check_space(space, config, str(path))
    return space


def _param(path: str | Path, key: str, v: Any) -> Param:
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    if isinstance(v, list):
        v = {"low": v[0], "high": v[1]} if len(v) == 2 and all(map(number, v)) else {"choices": v}
    if not isinstance(v, dict):
        raise SpecError(path, key, f"expected [low, high], {{ low = .., high = .., log = true }} or "
                                   f"{{ choices = [..] }}, got {v!r}")
    unknown = set(v) - {"low", "high", "log", "choices"}
    if unknown:
        raise SpecError(path, key, f"unknown field(s) {', '.join(sorted(unknown))} "
                                   f"(expected low, high, log or choices)")
    if "choices" in v:
        choices = v["choices"]
        if set(v) != {"choices"} or not isinstance(choices, list) or not choices or \
                not all(isinstance(c, (str, int, float, bool)) for c in choices):
            raise SpecError(path, key, f"choices must be a non-empty list of numbers, strings or booleans on their "
                                       f"own, got {v!r}")
        return Param(choices=tuple(choices))
    low, high, log = v.get("low"), v.get("high"), v.get("log", False)
    if not (number(low) and number(high)) or not isinstance(log, bool):
        raise SpecError(path, key, f"a range needs numbers low and high (and log = true or false), got {v!r}")
    if not low < high:
        raise SpecError(path, key, f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise SpecError(path, key, f"a log-uniform range needs low > 0, got {low}")
    return Param(low, high, log)


def check_space(space: Mapping[str, Param], config: TrainConfig, where: str = "<space>") -> None:
    """Check that every key of ``space`` is a config key that takes every end and choice.

    Raises:
        SpecError: naming ``where`` and the key.
    """
    for key, param in space.items():
        if "." not in key:
            raise SpecError(where, key, "search a key of a config section, e.g. model.dim (not graph, mode, "
                                        "seed or device)")
        value = _value(config, key, where)
        if not param.choices and isinstance(value, int) and not isinstance(value, bool) and \
                not all(float(x).is_integer() for x in (param.low, param.high)):
            raise SpecError(where, key, f"an integer key: the range needs integer ends, got {param.low}..{param.high}")
        for x in param.values():
            try:
                configure(config, {key: float(x) if isinstance(value, float) and not param.choices else x}, where)
            except SpecError as e:
                raise SpecError(where, key, f"{x!r} is not a value this key takes ({e.detail})") from None


def _value(config: TrainConfig, key: str, where: str) -> Any:
    node: Any = config.to_dict()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SpecError(where, key, "not a config key (see kgrec/train/config.py for the sections and keys)")
        node = node[part]
    if isinstance(node, dict):
        raise SpecError(where, key, "a config section, not a key")
    return node


def validation_view(artifact: GraphArtifact) -> GraphArtifact:
    """``artifact`` without its test interactions: what a trial may see. Held-out duplicates stay
    (validation filters them from the ranking, as in every run)."""
    i = artifact.interactions
    return dataclasses.replace(artifact, interactions=i[(i["split"] != "test") | i["duplicate"]])


def _fingerprint(artifacts: Sequence[GraphArtifact], config: TrainConfig, space: Mapping[str, Param]) -> str:
    # what must not change when a study is continued (the device may)
    graphs = [{k: a.manifest.get(k) for k in ("spec", "inputs", "counts")} for a in artifacts]
    return json.dumps({"graph": graphs[0] if len(graphs) == 1 else graphs,
                       "config": dataclasses.replace(config, device="").to_dict(),
                       "space": {k: dataclasses.asdict(p) for k, p in space.items()}}, sort_keys=True, default=str)


def graph_names(graphs: Sequence[str]) -> list[str]:
    """A short distinct name per graph directory (its folder name, numbered where two share one)."""
    names = [Path(g).name or "graph" for g in graphs]
    return [n if names.count(n) == 1 else f"{i}-{n}" for i, n in enumerate(names)]


def tune(artifact: GraphArtifact | Mapping[str | Path, GraphArtifact], base_config: TrainConfig, out: str | Path,
         trials: int, *, seed: int = 0, space: Mapping[str, Param] | None = None,
         pruner: optuna.pruners.BasePruner | None = None, warmup: int = 5,
         log: Callable[[str], None] = print) -> optuna.Study:
    """Search ``space`` around ``base_config`` until the study in ``out`` has ``trials`` finished
    trials (complete, pruned, or failed on a combination of settings the config refuses; not one
    left running by a killed process); write ``trials.csv`` and ``best.toml`` after each.

    Args:
        artifact: the graph (``base_config.graph`` is where ``best.toml`` points to it), or several:
            graph directory -> artifact, each trial trained on each and scored by the geometric
            mean of their validation NDCG@``eval.k``.
        base_config: every key the space leaves alone, as each trial trains it.
        out: the study's directory; an existing study there is continued.
        trials: finished trials wanted in total, counting those of earlier calls.
        seed: the sampler's seed (the trainings use ``base_config.seed``).
        space: dotted config keys -> :class:`Param`; default :func:`default_space`.
        pruner: default: the median of earlier trials, after ``warmup`` epochs (of the first graph).
        log: one line per trial.

    Returns:
        the Optuna study; its values are validation NDCG@``eval.k`` (the geometric mean over graphs).

    Raises:
        SpecError: a space key the config does not take.
        KgrecError: ``out`` holds a study of another base config, graphs or space, or a training fails.
    """
    if trials < 1:
        raise SpecError("<tune>", "trials", f"must be at least 1, got {trials}")
    out = Path(out)
    check_directory(out, "study directory")
    graphs = {str(Path(base_config.graph).resolve()): artifact} if isinstance(artifact, GraphArtifact) else \
        {str(Path(g).resolve()): a for g, a in artifact.items()}
    if not graphs:
        raise SpecError("<tune>", "graphs", "give at least one graph")
    base = dataclasses.replace(base_config, graph=next(iter(graphs)))
    space = dict(space if space is not None else default_space(list(graphs.values()), base))
    check_space(space, base)
    for a in graphs.values():
        check_memory(base, {t: int(a.data[t].num_nodes) for t in a.data.node_types}, resolve_device(base.device))
    key = f"ndcg@{base.eval.k}"
    out.mkdir(parents=True, exist_ok=True)
    seen = {g: validation_view(a) for g, a in graphs.items()}
    names = dict(zip(graphs, graph_names(list(graphs)))) if len(graphs) > 1 else {}

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is ours to print
    try:
        study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{out.resolve() / 'study.db'}",
                                    load_if_exists=True, direction="maximize",
                                    pruner=pruner or optuna.pruners.MedianPruner(n_warmup_steps=warmup))
        fingerprint = _fingerprint(list(graphs.values()), base, space)
        if "setup" not in study.user_attrs:
            study.set_user_attr("setup", fingerprint)
        elif study.user_attrs["setup"] != fingerprint:
            raise OutputError(f"{out / 'study.db'} holds a study of another graph, base config or search "
                              f"space; continue it with the same ones, or give another --out")
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            # left running by a killed process: failed, and not counted
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        # a continued study draws afresh rather than repeating the first call's random start
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
        done = sum(map(_finished, study.trials))
        if done:
            log(f"continuing {out / 'study.db'}: {done} of {trials} trials finished")
        elif not study.trials:  # the first trial is the base config: what every other one must beat
            base_values = {k: _value(base, k, "<space>") for k in space}
            study.enqueue_trial({k: v for k, v in base_values.items() if space[k].holds(v)})

        integer = {k: type(_value(base, k, "<space>")) is int for k in space}

        def objective(trial: optuna.Trial) -> float:
            settings = {k: p.suggest(trial, k, integer[k]) for k, p in space.items()}
            try:
                config = configure(base, settings, f"trial {trial.number}")
            except SpecError as e:  # a combination the config refuses (say, finetune.upper_layers > model.layers)
                trial.set_user_attr("error", str(e))
                log(f"trial {trial.number:>4}  invalid: {e}")
                raise
            best = -math.inf

            def on_epoch(step: int, value: float) -> None:
                nonlocal best
                best = max(best, value)  # the run keeps its best epoch, so that is what a trial is worth so far
                trial.report(best, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"validation {key} {best:.4f} after {step} epochs")
            values = {}
            for i, (graph, view) in enumerate(seen.items()):
                run = out / "trials" / f"{trial.number:04d}" / names.get(graph, "")
                result = train(dataclasses.replace(config, graph=graph), run, overwrite=True, progress=False,
                               log=lambda _m: None, artifact=view, on_epoch=on_epoch if i == 0 else None)
                values[graph] = result.valid[key]
            if names:
                trial.set_user_attr("valid", {names[g]: v for g, v in values.items()})
            return math.exp(sum(math.log(max(v, 1e-12)) for v in values.values()) / len(values))

        def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            value = "" if trial.value is None else f"valid {key} {trial.value:.4f}"
            each = trial.user_attrs.get("valid", {})
            if each and trial.value is not None:
                value += " (" + ", ".join(f"{n} {v:.4f}" for n, v in each.items()) + ")"
            log(f"trial {trial.number:>4}  {trial.state.name.lower():<8} {value}  "
                + "  ".join(f"{k}={_short(v)}" for k, v in trial.params.items()))
            _write_outputs(study, base, out, key)

        if trials > done:
            study.optimize(objective, n_trials=trials - done, catch=(SpecError,), callbacks=[after])
        _write_outputs(study, base, out, key)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study


def _finished(t: optuna.trial.FrozenTrial) -> bool:
    # a refused combination is an answer too, or a space holding many would never reach N trials
    state = optuna.trial.TrialState
    return t.state in (state.COMPLETE, state.PRUNED) or (t.state == state.FAIL and "error" in t.user_attrs)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _write_outputs(study: optuna.Study, base: TrainConfig, out: Path, key: str) -> None:
    """trials.csv, best.toml, and the weights of the best trial's run alone."""
    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "state": t.state.name, f"valid_{key}": t.value,
                     **{f"valid_{key} {n}": v for n, v in t.user_attrs.get("valid", {}).items()},
                     "epochs": max(t.intermediate_values, default=None),
                     "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
                     **t.params, "run": f"trials/{t.number:04d}"})
    import pandas as pd
    with atomic_file(out / "trials.csv") as f:
        pd.DataFrame(rows).to_csv(f, index=False)
    completed = _completed(study)
    best = max(completed, key=lambda t: t.value) if completed else None
    if best is not None:
        config = configure(base, best.params, f"trial {best.number}")
        with atomic_file(out / "best.toml") as f:
            each = best.user_attrs.get("valid", {})
            f.write(f"# kgrec tune: trial {best.number} of {len(study.trials)}, valid {key} {best.value:.5f} "
                    + (f"(geometric mean of {', '.join(f'{n} {v:.5f}' for n, v in each.items())}) " if each else "")
                    + f"(run: {out / 'trials' / f'{best.number:04d}'})\n" + to_toml(config))
    for trial_dir in sorted((out / "trials").glob("[0-9][0-9][0-9][0-9]")):
        keep = best is not None and trial_dir.name == f"{best.number:04d}"
        for run in [trial_dir, *sorted(trial_dir.iterdir())]:  # one graph's run, or several graphs' under it
            if (run / "config.toml").is_file():
                _tidy_run(run, keep)


def _tidy_run(run: Path, keep: bool) -> None:
    """Drop a trial run's checkpoints, and its weights unless ``keep``."""
    remove_output(run / "checkpoints")  # for --resume of a killed run, which a trial never does
    if not keep:
        (run / "model.pt").unlink(missing_ok=True)
        (run / "paths.pt").unlink(missing_ok=True)
    if (run / "run.json").is_file():  # record only the files kept, so that `kgrec verify` finds them all
        record = read_json(run / "run.json")
        write_run_record(run, {k: v for k, v in record.items() if k not in ("files", "graph_checksum")},
                         record.get("graph_checksum"))


def format_study(study: optuna.Study, top: int = 10) -> str:
    """The ``top`` complete trials by validation score, then how many were pruned or failed."""
    completed = sorted(_completed(study), key=lambda t: -t.value)
    keys = list(dict.fromkeys(k for t in completed for k in t.params))
    graphs = list(dict.fromkeys(g for t in completed for g in t.user_attrs.get("valid", {})))  # several graphs
    head = f"{'trial':>5}  {'valid':>8}  " + "".join(f"{g:>14.14}  " for g in graphs) + "  ".join(f"{k:>18}" for k in keys)
    lines = [head] + [f"{t.number:>5}  {t.value:>8.4f}  "
                      + "".join(f"{t.user_attrs['valid'].get(g, math.nan):>14.4f}  " for g in graphs)
                      + "  ".join(f"{_short(t.params.get(k, '')):>18}" for k in keys) for t in completed[:top]]
    states = [t.state.name.lower() for t in study.trials]
    counts = ", ".join(f"{states.count(s)} {s}" for s in ("complete", "pruned", "fail") if states.count(s))
    return "\n".join(lines + [f"\n{len(states)} trials: {counts}"])
