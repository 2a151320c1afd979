"""`trainpipe serve`: <base>/<version>/ SavedModels with TF Serving's REST API (the options live with the server)."""

import argparse


def run(args: argparse.Namespace) -> int:
    from trainpipe_assets.serving.main import serve_from_args

    return serve_from_args(args)


def register(sub) -> None:
    from trainpipe_assets.serving.flags import add_serve_arguments

    serve = sub.add_parser("serve", help="serve <base>/<version>/ SavedModels with TF Serving's REST API")
    add_serve_arguments(serve)
    serve.set_defaults(func=run)
