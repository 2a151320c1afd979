"""`trainpipe rollback`: serve an earlier pushed version (a pin the server and the Evaluator follow), or clear it."""

import argparse

from trainpipe_assets.cli.common import use_instance_home


def run(args: argparse.Namespace) -> int:
    use_instance_home()
    from dagster import DagsterInstance

    from trainpipe_assets.core.settings import TrainpipeConfig
    from trainpipe_assets.deploy.rollback import clear, rollback

    trainpipe = TrainpipeConfig.from_env()
    with DagsterInstance.get() as instance:
        if args.clear:
            version = clear(instance, trainpipe, args.reason)
            print(f"pin removed: {trainpipe.settings.model_name} version {version} serves")
        else:
            version = rollback(instance, trainpipe, args.to, args.reason)
            print(f"{trainpipe.settings.model_name} version {version} serves (pinned in {trainpipe.serving_dir})")
    return 0


def register(sub) -> None:
    rollback = sub.add_parser(
        "rollback", help="serve an earlier pushed version (a pin the server and evaluator follow)"
    )
    rollback.add_argument("--to", type=int, help="version to serve (default: the one before the version serving now)")
    rollback.add_argument("--clear", action="store_true", help="remove the pin: the newest version serves again")
    rollback.add_argument("--reason", default="", help="recorded in the event log")
    rollback.set_defaults(func=run)
