"""Stand-ins for the nodes of TFX's DSL that are not standard components: Resolver and its strategies, the Importer,
and custom (`@component`) and container components. Recorded like the standard ones; the mapping decides what runs
instead of each (mapping._check_unsupported)."""

from __future__ import annotations

from trainpipe_assets.tfx.dsl import Artifact, BaseNode, Channel


# --- resolver, importer ---------------------------------------------------------------------------------------------
class ResolverStrategy:
    pass


LatestBlessedModelStrategy = type("LatestBlessedModelStrategy", (ResolverStrategy,), {})
LatestBlessedModelResolver = type("LatestBlessedModelResolver", (ResolverStrategy,), {})
LatestArtifactStrategy = type("LatestArtifactStrategy", (ResolverStrategy,), {})
LatestArtifactsResolver = type("LatestArtifactsResolver", (ResolverStrategy,), {})
SpanRangeStrategy = type("SpanRangeStrategy", (ResolverStrategy,), {})


class Resolver(BaseNode):
    KIND = "resolver"

    def __init__(self, strategy_class=None, config=None, instance_name=None, resolver_class=None,
                 resolver_configs=None, **channels):
        self.strategy_class = strategy_class or resolver_class
        self.config = config or resolver_configs or {}
        self.OUTPUTS = {}
        BaseNode.__init__(self)
        self.inputs = dict(channels)
        self.outputs = {k: Channel(type=c.type, producer=self, output_key=k) for k, c in channels.items()}
        if instance_name:
            self._id = instance_name

    @property
    def strategy_name(self) -> str:
        return getattr(self.strategy_class, "__name__", str(self.strategy_class))

    def dependencies(self) -> list:
        return []  # it reads what earlier runs made, not this run's nodes


class Importer(BaseNode):
    KIND = "importer"

    def __init__(self, source_uri: str = "", artifact_type=Artifact, reimport: bool = False, properties=None,
                 custom_properties=None, instance_name=None, output_key: str = "result"):
        BaseNode.__init__(self)
        self.source_uri = source_uri
        self.outputs = {output_key: Channel(type=artifact_type, producer=self, output_key=output_key)}
        if instance_name:
            self._id = instance_name


# --- custom components ----------------------------------------------------------------------------------------------
class CustomComponent(BaseNode):
    KIND = "custom"

    def __init__(self, name: str, kind: str, **kwargs):
        self.OUTPUTS = {}
        BaseNode.__init__(self)
        self.KIND = kind
        self._id = name
        self.inputs = {k: v for k, v in kwargs.items() if isinstance(v, Channel)}
        self.exec_properties = {k: v for k, v in kwargs.items() if not isinstance(v, Channel)}
        self.outputs = _OutputsOnDemand(self)


class _OutputsOnDemand(dict):
    """A custom component's outputs, whatever their names (its function's annotations are not interpreted)."""

    def __init__(self, node):
        super().__init__()
        self.node = node

    def __missing__(self, key):
        self[key] = Channel(producer=self.node, output_key=key)
        return self[key]


def component(func=None, **_options):
    """@component (tfx.dsl.component.experimental.decorators): a factory of custom components, never run here."""

    def wrap(fn):
        def factory(**kwargs):
            return CustomComponent(fn.__name__, "custom", **kwargs)

        factory.__name__ = fn.__name__
        return factory

    return wrap(func) if func is not None else wrap


def create_container_component(name: str, image: str = "", command=None, inputs=None, outputs=None,
                               parameters=None, **_):
    def factory(**kwargs):
        return CustomComponent(name, f"container ({image})", **kwargs)

    return factory
