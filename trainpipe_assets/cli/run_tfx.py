"""`trainpipe run-tfx FILE [--home DIR] [--export-config FILE] [-- flags]`: a TFX pipeline file (both DSL generations),
an InteractiveContext script or an .ipynb notebook, run as it is: the stand-ins for `tfx` and
`tensorflow_model_analysis` record it, map it onto trainpipe's settings (written under the home and printed) and run
trainpipe's jobs through the code location."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from pathlib import Path

from trainpipe_assets.cli.common import add_verbose


def _user_line(error: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/trainpipe_assets/" not in f.filename
              and "/lib/python3" not in f.filename]
    frame = frames[-1] if frames else None
    return f"{frame.filename}, line {frame.lineno}" if frame else str(path)


class _OptionsAfterFile(argparse.Action):
    """`FILE --home DIR --export-config F -- flags`: the command's options may follow FILE; the file's flags
    come after `--` (argparse hands everything after FILE over as one remainder). Without `--`, the command's own
    options are taken out wherever they are and the rest are the file's flags. Done while the command line is
    parsed, so that `--home` and `--verbose` after FILE also decide where the log goes."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        rest = list(values)
        ours = argparse.ArgumentParser(prog="trainpipe run-tfx FILE", add_help=False, allow_abbrev=False)
        ours.add_argument("--home")
        ours.add_argument("--export-config")
        ours.add_argument("--verbose", action="store_true")
        if "--" in rest:
            parsed, flags = ours.parse_args(rest[: rest.index("--")]), rest[rest.index("--") + 1:]
        else:
            parsed, flags = ours.parse_known_args(rest)
        namespace.home = parsed.home or getattr(namespace, "home", None)
        namespace.export_config = parsed.export_config or getattr(namespace, "export_config", None)
        namespace.verbose = parsed.verbose or getattr(namespace, "verbose", False)
        namespace.flags = flags


def run(args: argparse.Namespace) -> int:
    from trainpipe_assets.cli.console import error

    path = Path(args.file).resolve()
    if not path.is_file():
        raise ValueError(f"{args.file} does not exist")
    if args.home:
        os.environ["TRAINPIPE_HOME"] = str(Path(args.home).resolve())
    os.environ.pop("TRAINPIPE_CONFIG", None)
    from trainpipe_assets.tfx import execute, install
    from trainpipe_assets.tfx.mapping import MappingError

    used = install()
    print(f"{path.name}: stand-ins for " + (", ".join(n for n, shim in used.items() if shim) or "nothing")
          + "; home " + execute.home().as_posix())
    if args.export_config:
        execute.EXPORT_TO.append(str(Path(args.export_config).resolve()))
    flags = args.flags
    sys.argv = [str(path), *flags]
    sys.path.insert(0, str(path.parent))
    try:
        if path.suffix == ".ipynb":
            from trainpipe_assets.tfx.notebook import run_notebook

            run_notebook(path)
        else:
            runpy.run_path(str(path), run_name="__main__")
    except MappingError as e:
        error(f"trainpipe run-tfx: {path.name}: the pipeline cannot run here; nothing was run:\n{e}")
        return 2
    except SystemExit as e:  # absl.app.run ends with sys.exit
        if e.code not in (None, 0):
            return e.code if isinstance(e.code, int) else 1
    except Exception as e:  # the file's own error (or one raised for it): where, and what
        error(f"trainpipe run-tfx: {_user_line(e, path)}: {type(e).__name__}: {e}")
        return 1
    if not execute.OUTCOMES:
        print(f"{path.name} ran no pipeline (no runner .run(pipeline) and no context.run(component))")
        return 1
    failed = execute.OUTCOMES.count(False)
    print(f"\nrun-tfx: {len(execute.OUTCOMES) - failed} of {len(execute.OUTCOMES)} runs succeeded"
          f"; DAGSTER_HOME={os.environ.get('DAGSTER_HOME')}")
    return 1 if failed else 0


def register(sub) -> None:
    p = sub.add_parser("run-tfx", help="run a TFX pipeline file, InteractiveContext script or notebook as it is")
    p.add_argument("file", help="a pipeline .py (run as __main__) or an .ipynb notebook")
    p.add_argument("--home", help="TRAINPIPE_HOME for this pipeline (default: $TRAINPIPE_HOME or .trainpipe)")
    p.add_argument("--export-config", help="also write the settings file made from the pipeline here")
    p.add_argument("flags", nargs=argparse.REMAINDER, action=_OptionsAfterFile,
                   help="the file's own flags (after --, or any not this command's)")
    add_verbose(p)
    p.set_defaults(func=run)
