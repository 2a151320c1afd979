"""One KerasTuner worker process for parallel trials: `python -m trainpipe_assets.tuning_worker <job.json>`.

It runs the module's tuner_fn with the same FnArgs as the chief, as `KERASTUNER_TUNER_ID=tuner<i>`, so its tuner asks
the chief's oracle (at KERASTUNER_ORACLE_IP/PORT) for trials until the search is over (KerasTuner's distributed mode).
"""
import json
import sys


def main(job_path: str) -> None:
    import trainpipe_assets  # noqa: F401  (pins Keras 3 before TensorFlow loads)
    from trainpipe_assets.module_api import FnArgs
    from trainpipe_assets.module_file import user_function

    job = json.loads(open(job_path).read())
    tuner_fn = user_function(job["module_file"], "tuner_fn")
    result = tuner_fn(FnArgs(**job["fn_args"]))
    result.tuner.search(**result.fit_kwargs)


if __name__ == "__main__":
    main(sys.argv[1])
