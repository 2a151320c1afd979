"""InteractiveContext: TFX's notebook way, one component at a time. `context.run(component)` maps the components
known so far onto the settings and materializes that component's assets -- and first those of what it depends on and
has not run in this context (the Tuner before the Trainer) -- through the code location: the ingest assets as ONE
run over the days, the training assets as one training_job run for the latest day. Afterwards
`component.outputs[name].get()[0].uri` is the asset's folder (`Split-train/`, `Format-Serving/`, `transform_fn/`)."""

from __future__ import annotations

from pathlib import Path

from trainpipe_assets.tfx import dsl

OUTPUT_ASSETS = {  # (component kind, output key) -> asset whose folder is the artifact
    "examples": "examples", "statistics": "statistics", "anomalies": "example_anomalies", "schema": "schema",
    "transform_graph": "transform_graph", "transformed_examples": "transform_graph",
    "best_hyperparameters": "best_hyperparameters", "model": "trained_model", "model_run": "trained_model",
    "evaluation": "model_evaluation", "pushed_model": "pushed_model", "inference_result": "batch_predictions",
}


class ExecutionResult:
    """What context.run returns (TFX's ExecutionResult): the component, whether its run succeeded, its outputs."""

    def __init__(self, component, succeeded: bool):
        self.component, self.component_id, self.succeeded = component, component.id, succeeded
        self.outputs = component.outputs

    def __repr__(self) -> str:
        return f"ExecutionResult(component_id={self.component_id!r}, succeeded={self.succeeded}, " \
               f"outputs={sorted(self.outputs)})"


class InteractiveContext:
    def __init__(self, pipeline_name: str | None = None, pipeline_root: str | None = None,
                 metadata_connection_config=None, beam_pipeline_args=None, **_):
        self.pipeline_name = pipeline_name or "interactive"
        self.pipeline_root = pipeline_root or ""
        self.beam_pipeline_args = list(beam_pipeline_args or [])
        self.known: list = []
        self.ran: set = set()
        self.mapped = None
        print(f"InteractiveContext {self.pipeline_name}: components run through trainpipe's Dagster jobs")

    def run(self, component, enable_cache: bool = True, beam_pipeline_args=None):
        from trainpipe_assets.tfx.execute import prepare
        from trainpipe_assets.tfx.mapping import INGEST, TRAINING, kind

        todo: list = []

        def visit(node):
            for dep in node.dependencies():
                if dep not in self.ran and dep not in todo:
                    visit(dep)
            if node not in todo:
                todo.append(node)

        visit(component)
        for node in todo:
            if node not in self.known:
                self.known.append(node)
        pipeline = dsl.Pipeline(self.pipeline_name, self.pipeline_root, self.known, enable_cache=enable_cache,
                                beam_pipeline_args=list(beam_pipeline_args or self.beam_pipeline_args))
        before = [n.id for n in todo if n is not component]
        print(f"\ncontext.run({component.id})" + (f": first {', '.join(before)}, not run yet" if before else ""))
        self.mapped = prepare(pipeline)
        kinds = [kind(n) for n in todo]
        ingest = set()
        if "CsvExampleGen" in kinds:
            ingest |= set(INGEST)  # the training gate reads each day's verdict: ExampleGen's run makes all three
        if "StatisticsGen" in kinds:
            ingest |= {"statistics", "example_anomalies"}  # a verdict older than the statistics is stale
        if "ExampleValidator" in kinds:
            ingest.add("example_anomalies")
        training = {a for k in kinds for a in _training_assets(k)}
        if "trained_model" in training and not any(kind(n) == "Tuner" for n in self.known):
            training.add("best_hyperparameters")  # tuning off: the fixed hyperparameters are still an asset
        if training & {"pushed_model"}:
            training.add("infra_validation")  # the Pusher reads the InfraValidator's verdict (off: a pass)
        ok = self._launch(ingest, INGEST, training, TRAINING, "BulkInferrer" in kinds, enable_cache)
        if ok:
            self.ran.update(todo)
            for node in todo:
                self._fill_outputs(node)
        return ExecutionResult(component, ok)

    def _launch(self, ingest, ingest_order, training, training_order, batch, enable_cache) -> bool:
        from dagster import DagsterInstance

        from trainpipe_assets.cli.runs import code_location
        from trainpipe_assets.tfx.execute import launch_assets

        days = self.mapped.landing.days
        tags = {} if enable_cache else {"trainpipe/force": "true"}
        ok = True
        with DagsterInstance.get() as instance, code_location(instance) as location:
            if ingest:
                ok = launch_assets(location, instance, "ingest_job", days, [a for a in ingest_order if a in ingest],
                                   {})
            if ok and training:
                ok = launch_assets(location, instance, "training_job", days[-1],
                                   [a for a in training_order if a in training], tags)
            if ok and batch:
                ok = launch_assets(location, instance, "batch_inference_job", days[-1], ["batch_predictions"], {})
        if not ok:
            raise RuntimeError("the run failed (see the lines above)")
        return ok

    def _fill_outputs(self, node) -> None:
        from trainpipe_assets.core.settings import default_home

        days = self.mapped.landing.days
        artifacts = Path(default_home()) / "artifacts"
        splits = list(self.mapped.settings.get("splits") or {"train": 2, "eval": 1})
        for key, channel in node.outputs.items():
            asset = OUTPUT_ASSETS.get(key)
            if asset is None or channel.producer is not node:
                continue
            per_day = asset in ("examples", "statistics", "example_anomalies")
            chosen = sorted(days, reverse=True) if per_day else [days[-1]]
            uris = [artifacts / asset / d for d in chosen]
            if asset == "trained_model":
                runs = sorted((p for p in uris[0].glob("*/Format-Serving")), key=lambda p: p.stat().st_mtime)
                uris = [runs[-1].parent] if runs else uris
                if key == "model_run":
                    uris = [uris[0] / "model_run"]
            if asset == "pushed_model":
                uris = [_pushed_path()] if _pushed_path() else uris
            channel._artifacts = [
                channel.type(uri=str(u), split_names=splits if asset in ("examples", "statistics",
                                                                         "transform_graph") else None)
                for u in uris
            ]

    def show(self, item) -> None:
        """Print the asset's latest materialization: its metadata (tables, schema, anomalies, evaluation) and where
        its page is in the UI."""
        from dagster import AssetKey, DagsterInstance

        from trainpipe_assets.tfx.show import summary

        channel = item if isinstance(item, dsl.Channel) else None
        key = channel.output_key if channel is not None else ""
        asset = OUTPUT_ASSETS.get(key)
        if asset is None:
            print(f"context.show: nothing to show for {item!r}")
            return
        with DagsterInstance.get() as instance:
            event = instance.get_latest_materialization_event(AssetKey(asset))
        if event is None:
            print(f"context.show: {asset} has not been materialized yet (context.run its component first)")
            return
        print(summary(asset, event.asset_materialization.metadata))

    def export_to_pipeline(self, notebook_filepath: str = "", export_filepath: str = "", runner_type: str = "",
                           **_) -> None:
        export_to_pipeline(self, export_filepath)


def export_to_pipeline(context=None, export_filepath: str = "", **_) -> None:
    """TFX turns a notebook into a pipeline file; here the settings file already is the pipeline: copy it."""
    import shutil

    from trainpipe_assets.core.settings import default_config_path

    source = default_config_path()
    if export_filepath:
        shutil.copyfile(source, export_filepath)
    print(f"export_to_pipeline: nothing needs porting; the settings {source} run the same pipeline "
          f"(TRAINPIPE_CONFIG={export_filepath or source} trainpipe ... / dagster dev)")


def _training_assets(kind_name: str) -> list[str]:
    from trainpipe_assets.tfx.mapping import ASSETS, TRAINING

    return [a for a in ASSETS.get(kind_name, []) if a in TRAINING]


def _pushed_path():
    from trainpipe_assets.core.settings import TrainpipeConfig

    base = TrainpipeConfig.from_env().serving_dir
    versions = sorted((int(p.name) for p in base.glob("[0-9]*") if p.name.isdigit()), reverse=True)
    return base / str(versions[0]) if versions else None
