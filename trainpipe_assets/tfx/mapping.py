"""A recorded TFX pipeline -> trainpipe's settings, component by component, with what each became, the warnings for
what has no counterpart, and the errors that stop the run before any step when the pipeline's outputs cannot be
honoured."""

from __future__ import annotations

from pathlib import Path

from trainpipe_assets.tfx import dsl_nodes
from trainpipe_assets.tfx.map_deploy import map_deploy, map_pipeline_level
from trainpipe_assets.tfx.map_eval import map_eval_config, map_slicing_spec
from trainpipe_assets.tfx.map_inputs import InputError, Landing, find_inputs, land
from trainpipe_assets.tfx.map_modules import ModuleMappingError, locate, module_for, string_constants
from trainpipe_assets.tfx.map_names import ASSETS, INGEST, TRAINING, Mapped, kind, slug, where  # noqa: F401


def map_pipeline(pipeline, runner, home: Path, cwd: Path) -> Mapped:
    errors: list[str] = []
    nodes = _with_upstream(pipeline.components)
    by_kind: dict[str, list] = {}
    for node in nodes:
        by_kind.setdefault(kind(node), []).append(node)
    m = Mapped(pipeline.pipeline_name, {}, Landing(days=[]), None, None)
    s = m.settings
    _check_unsupported(nodes, m, errors)
    gens = by_kind.get("CsvExampleGen", [])
    for other in ("ImportExampleGen", "BigQueryExampleGen"):
        for node in by_kind.get(other, []):
            errors.append(f"{where(node)}: {other} has no counterpart: trainpipe ingests CSV files "
                          "(CsvExampleGen) or SQL rows (source kind sql); convert the data to CSV files")
    if len(gens) != 1:
        errors.append(f"pipeline {pipeline.pipeline_name}: needs exactly one CsvExampleGen, found {len(gens)}")
    else:
        try:
            _map_example_gen(gens[0], m, home, cwd)
        except (InputError, ValueError) as e:
            errors.append(str(e))
    try:
        functions = _map_model_components(by_kind, m, cwd, errors)
        if any(v is not None for v in functions.values()):
            m.module_file, notes = module_for(functions, home, slug(pipeline.pipeline_name), cwd)
            s["module_file"] = str(m.module_file)
            m.lines += [f"module functions -> module_file {m.module_file}"] + [f"  {n}" for n in notes]
    except (ModuleMappingError, ValueError) as e:
        errors.append(str(e))
    _map_label(by_kind, m, errors)
    map_deploy(by_kind, m, home, errors)
    map_pipeline_level(pipeline, runner, nodes, m)
    if errors:
        raise MappingError("\n".join([f"error: {e}" for e in errors] + [f"warning: {w}" for w in m.warnings]))
    return m


def _with_upstream(components) -> list:
    seen: list = []

    def visit(node):
        if node in seen:
            return
        for dep in node.dependencies():
            visit(dep)
        seen.append(node)

    for c in components:
        visit(c)
    return seen


def _check_unsupported(nodes, m: Mapped, errors: list) -> None:
    for node in nodes:
        if isinstance(node, dsl_nodes.CustomComponent):
            consumers = [n for n in nodes if any(c.producer is node for c in n.inputs.values())
                         and not isinstance(n, dsl_nodes.CustomComponent)]
            what = f"{node.KIND} component {node.id}"
            if consumers:
                errors.append(f"{where(node)}: the {what} is not run by trainpipe, and "
                              f"{', '.join(c.id for c in consumers)} read its outputs, which cannot be made")
            else:
                m.warnings.append(f"{where(node)}: the {what} is not run (trainpipe runs only TFX's standard "
                                  "components); the rest of the pipeline runs without it")
        elif kind(node) in ("ExampleDiff", "DistributionValidator"):
            m.warnings.append(f"{where(node)}: {kind(node)} is not run; the statistics asset's skew and drift "
                              "tables (StatisticsGen) and example_anomalies (ExampleValidator) run instead")
        elif isinstance(node, dsl_nodes.Resolver):
            strategy = node.strategy_name
            if strategy in ("LatestBlessedModelStrategy", "LatestBlessedModelResolver"):
                m.lines.append(f"{node.id} ({strategy}) -> the Evaluator's baseline is the model serving now "
                               "(the latest pushed_model in the event log, or the rollback pin)")
            elif strategy == "SpanRangeStrategy":
                m.warnings.append(f"{where(node)}: the range resolver is not run; the training window "
                                  "(window_days, the days ending at the latest) is used instead")
            else:
                m.warnings.append(f"{where(node)}: resolver {strategy} is not run (its channels are not used)")
        elif isinstance(node, dsl_nodes.Importer):
            m.warnings.append(f"{where(node)}: the Importer of {node.source_uri} is not run; what reads it uses "
                              "trainpipe's own asset instead")


def _map_example_gen(gen, m: Mapped, home: Path, cwd: Path) -> None:
    s = m.settings
    base = gen.param("input_base")
    if base is None and gen.param("input") is not None:
        base = gen.param("input").get()[0].uri
    if not base:
        raise ValueError(f"{where(gen)}: no input_base")
    input_base = (cwd / str(base)).resolve()
    input_config = gen.param("input_config")
    splits = [(sp.name, sp.pattern) for sp in input_config.splits] if input_config is not None else [("", "*")]
    m.landing = land(find_inputs(input_base, splits, where(gen)), where(gen))
    s["source"] = {"kind": "csv", "landing_dir": str(home / "landing" / slug(m.pipeline_name))}
    s["columns"] = {}
    m.lines.append(f"{gen.id}: input_base {input_base} -> source.landing_dir {s['source']['landing_dir']} "
                   f"({len(m.landing.files)} files linked, days {', '.join(m.landing.days)}); column types inferred")
    m.lines += [f"  {n}" for n in m.landing.notes]
    output_config = gen.param("output_config")
    if output_config is not None and output_config.split_config.splits:
        sc = output_config.split_config
        s["splits"] = {sp.name: int(sp.hash_buckets) for sp in sc.splits}
        if "train" not in s["splits"] or "eval" not in s["splits"]:
            raise ValueError(f"{where(gen)}: output_config split names {sorted(s['splits'])}: trainpipe needs "
                             "'train' and 'eval' buckets")
        if sc.partition_feature_name:
            s["partition_feature"] = sc.partition_feature_name
        m.lines.append(f"  output_config hash buckets -> splits {s['splits']}")
    elif len(splits) > 1:
        m.warnings.append(f"{where(gen)}: the input splits {[n for n, _ in splits]} are merged and split again "
                          "by hash (train 2, eval 1): trainpipe's ExampleGen always hashes rows into splits")
    rc = gen.param("range_config")
    if rc is not None and rc.HasField("rolling_range"):
        s["window_days"] = max(1, int(rc.rolling_range.num_spans or 1))
        m.lines.append(f"  range_config rolling_range num_spans -> window_days {s['window_days']}")
    elif rc is not None and rc.HasField("static_range"):
        m.warnings.append(f"{where(gen)}: static_range is not applied; every matched span is a day")


def _map_model_components(by_kind: dict, m: Mapped, cwd: Path, errors: list) -> dict:
    s = m.settings
    functions: dict = {}
    schema_gens = by_kind.get("ImportSchemaGen", [])
    if schema_gens:
        path = (cwd / str(schema_gens[0].param("schema_file") or "")).resolve()
        if not path.is_file():
            errors.append(f"{where(schema_gens[0])}: schema_file {path} does not exist")
        s["schema_file"] = str(path)
        m.lines.append(f"{schema_gens[0].id}: schema_file -> schema_file {path}")
    custom: dict = {}
    for name in ("Transform", "Tuner", "Trainer"):
        for node in by_kind.get(name, [])[:1]:
            config = node.param("custom_config") or {}
            clash = {k for k in config if k in custom and custom[k] != config[k]}
            if clash:
                m.warnings.append(f"{where(node)}: custom_config keys {sorted(clash)} differ between components; "
                                  f"{name}'s values are used (trainpipe has one custom_config)")
            custom.update(config)
    if custom:
        s["custom_config"] = custom
    transforms = by_kind.get("Transform", [])
    if transforms:
        functions["preprocessing_fn"] = locate(transforms[0], "preprocessing_fn", where(transforms[0]), cwd)
    trainers = by_kind.get("Trainer", [])
    if not trainers:
        m.lines.append("no Trainer: no model is trained")
        return functions
    trainer = trainers[0]
    spec = trainer.param("custom_executor_spec")
    if spec is not None and getattr(spec.executor_class, "__name__", "") == "Executor":
        m.lines.append(f"{trainer.id}: the Estimator executor -> run_fn (trainer_fn is not run)")
    if trainer.param("base_model") is not None or "base_model" in trainer.inputs:
        m.warnings.append(f"{where(trainer)}: base_model (warm start) is not passed to run_fn")
    functions.setdefault("preprocessing_fn", None)
    functions["run_fn"] = locate(trainer, "run_fn", where(trainer), cwd)
    if functions["run_fn"] is None:
        raise ModuleMappingError(f"{where(trainer)}: the Trainer names no module_file or run_fn")
    for arg, key in (("train_args", "train_steps"), ("eval_args", "eval_steps")):
        value = trainer.param(arg)
        if value is not None and value.num_steps:
            s[key] = int(value.num_steps)
            m.lines.append(f"{trainer.id}: {arg}.num_steps -> {key} {s[key]}")
    tuners = by_kind.get("Tuner", [])
    if tuners:
        tuner = tuners[0]
        functions["tuner_fn"] = locate(tuner, "tuner_fn", where(tuner), cwd)
        tuning: dict = {"enabled": True}
        train_args = tuner.param("train_args")
        if train_args is not None and train_args.num_steps:
            tuning["steps_fraction"] = round(min(1.0, train_args.num_steps / s.get("train_steps", 1000)), 4)
        tune_args = tuner.param("tune_args")
        if tune_args is not None and tune_args.num_parallel_trials:
            tuning["num_parallel_trials"] = int(tune_args.num_parallel_trials)
        s["tuning"] = tuning
        m.lines.append(f"{tuner.id}: tuner_fn -> tuning {tuning} (the Trainer uses its best_hyperparameters)")
    else:
        s["tuning"] = {"enabled": False}
        m.lines.append("no Tuner: tuning.enabled false (run_fn gets no hyperparameters)")
    return functions


def _map_label(by_kind: dict, m: Mapped, errors: list) -> None:
    s = m.settings
    header = m.landing.header
    evaluators = by_kind.get("Evaluator", [])
    raw = None
    if evaluators:
        ev = evaluators[0]
        config = ev.param("eval_config")
        try:
            if config is not None:
                em = map_eval_config(config, where(ev))
                s["evaluation"] = em.evaluation
                m.lines += [f"{ev.id}: EvalConfig -> evaluation"] + em.lines
                m.warnings += em.warnings
                raw = em.label_key
            elif ev.param("feature_slicing_spec") is not None:
                s["evaluation"] = {"slices": map_slicing_spec(ev.param("feature_slicing_spec")), "thresholds": {}}
                m.lines.append(f"{ev.id}: feature_slicing_spec -> evaluation.slices {s['evaluation']['slices']}")
        except ValueError as e:
            errors.append(str(e))
    else:
        s["evaluation"] = {"thresholds": {}}
    for node in by_kind.get("ModelValidator", []):
        m.warnings.append(f"{where(node)}: ModelValidator is deprecated in TFX; mapped to an Evaluator threshold "
                          "(accuracy must not fall below the serving model's)")
        s.setdefault("evaluation", {}).setdefault("thresholds", {})["accuracy"] = {
            "change": {"direction": "higher_is_better", "absolute": 0.0}}
    if raw is None and m.module_file is not None and m.module_file.suffix == ".py":
        constants = string_constants(m.module_file)
        raw = next((constants[k] for k in ("LABEL_KEY", "_LABEL_KEY", "LABEL", "_LABEL")
                    if constants.get(k) in header), None)
    transformed = s.get("evaluation", {}).get("label_key")
    if raw is None and transformed and header:
        raw = next((c for c in (transformed.removesuffix("_xf"), transformed) if c in header), None)
    if raw is None:
        if by_kind.get("Trainer"):
            errors.append("the label column is not known: give the Evaluator an EvalConfig whose model_specs name "
                          "label_key (or define LABEL_KEY in the module file)")
        raw = header[-1] if header else "label"
    elif header and raw not in header:
        errors.append(f"label_key {raw!r} is not a column of the input files (columns: {', '.join(header)})")
    s["label_key"] = raw


class MappingError(ValueError):
    pass
