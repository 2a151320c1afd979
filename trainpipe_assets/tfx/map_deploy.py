"""The deployment side and the pipeline level of the mapping: InfraValidator's specs, the Pusher's destination,
BulkInferrer, enable_cache, beam_pipeline_args, the metadata store and the runner (Airflow's schedule)."""

from __future__ import annotations

from pathlib import Path

from trainpipe_assets.tfx.map_names import TRAINING, UNSERVED_BEAM_FLAGS, Mapped, slug, where


def map_deploy(by_kind: dict, m: Mapped, home: Path, errors: list) -> None:
    s = m.settings
    infra = by_kind.get("InfraValidator", [])
    if infra:
        node = infra[0]
        iv: dict = {"enabled": True}
        spec = node.param("validation_spec")
        if spec is not None:
            if spec.max_loading_time_seconds:
                iv["max_loading_time_seconds"] = int(spec.max_loading_time_seconds)
            if spec.num_tries:
                iv["num_tries"] = int(spec.num_tries)
        request = node.param("request_spec")
        iv["mode"] = "LOAD_AND_QUERY" if request is not None else "LOAD_ONLY"
        if request is not None:
            iv["num_examples"] = int(request.num_examples or 1)
        serving = node.param("serving_spec")
        if serving is not None and serving.HasField("kubernetes"):
            m.warnings.append(f"{where(node)}: serving_spec kubernetes: the model is served by a sandboxed "
                              "`trainpipe serve` process on this machine instead")
        s["infra_validation"] = iv
        m.lines.append(f"{node.id}: serving/validation/request specs -> infra_validation {iv} (a sandboxed "
                       "`trainpipe serve` process, not Docker)")
    else:
        s["infra_validation"] = {"enabled": False}
    pushers = by_kind.get("Pusher", [])
    model_name = slug(m.pipeline_name)
    if pushers:
        node = pushers[0]
        dest = node.param("push_destination")
        if dest is None or not dest.filesystem.base_directory:
            errors.append(f"{where(node)}: the Pusher has no push_destination.filesystem.base_directory"
                          + (" (a custom_config pusher for Vertex/AI Platform has no counterpart)"
                             if node.param("custom_config") else ""))
        else:
            m.serving_base = Path(dest.filesystem.base_directory).expanduser().resolve()
            model_name = slug(m.serving_base.name)
            m.lines.append(f"{node.id}: push_destination {m.serving_base} -> the serving folder "
                           f"(model_name {model_name}; {home}/serving/{model_name} links to it)")
    s["model_name"] = model_name
    trained = bool(by_kind.get("Trainer"))
    last = "pushed_model" if pushers else ("infra_validation" if infra else (
        "model_evaluation" if by_kind.get("Evaluator") or by_kind.get("ModelValidator") else "trained_model"))
    m.training_assets = TRAINING[: TRAINING.index(last) + 1] if trained else []
    if not pushers and trained:
        m.lines.append(f"no Pusher: training_job runs up to {last} and pushes nothing")
    if by_kind.get("BulkInferrer"):
        node = by_kind["BulkInferrer"][0]
        m.batch_inference = True
        data_spec = node.param("data_spec")
        if data_spec is not None and len(data_spec.example_splits) == 1:
            s["batch_inference"] = {"split": data_spec.example_splits[0]}
        m.lines.append(f"{node.id}: -> batch_inference_job for the latest day (scored by the model serving now)")
        if not pushers:
            m.warnings.append(f"{where(node)}: without a Pusher, batch inference scores the model serving now, "
                              "not this run's model")


def map_pipeline_level(pipeline, runner, nodes, m: Mapped) -> None:
    s = m.settings
    m.force = not pipeline.enable_cache
    m.lines.append(f"enable_cache {pipeline.enable_cache} -> "
                   + ("unchanged steps are reused" if pipeline.enable_cache else "every step recomputed "
                      "(run tag trainpipe/force=true)"))
    args = list(pipeline.beam_pipeline_args) + [a for n in nodes for a in n.beam_pipeline_args]
    kept = [a for a in args if a.split("=")[0] not in UNSERVED_BEAM_FLAGS]
    dropped = [a for a in args if a not in kept]
    if args:
        s["beam_pipeline_args"] = kept or ["--direct_running_mode=in_memory"]
        m.lines.append(f"beam_pipeline_args -> beam_pipeline_args {s['beam_pipeline_args']}")
    if dropped:
        m.warnings.append(f"beam_pipeline_args {dropped} are not served on this machine (Beam's DirectRunner runs "
                          "here); they were left out")
    if pipeline.metadata_connection_config:
        m.lines.append("metadata_connection_config -> Dagster's event log (DAGSTER_HOME) holds the history")
    if runner is not None and runner.REMOTE:
        m.warnings.append(f"{runner.NAME}: the pipeline runs here, through Dagster, not on Kubeflow/Vertex")
    interval = runner.schedule_interval() if runner is not None else None
    if interval:
        hour = _hour_of(interval)
        if hour is None:
            m.warnings.append(f"AirflowDagRunner schedule_interval {interval!r}: only daily schedules map to "
                              "retraining_schedule; the default hour is kept")
        else:
            s["retrain_hour"] = hour
            m.lines.append(f"schedule_interval {interval!r} -> retrain_hour {hour} (retraining_schedule; turn it "
                           "on in the UI)")


def _hour_of(interval: str) -> int | None:
    if interval in ("@daily", "@midnight"):
        return 0
    fields = interval.split()
    if len(fields) == 5 and fields[1].isdigit() and fields[2:] == ["*", "*", "*"]:
        return int(fields[1]) % 24
    return None
