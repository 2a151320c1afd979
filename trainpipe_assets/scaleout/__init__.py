"""Scale-out: the one home of distribution, shared by tuning (KerasTuner workers) and training (TF_CONFIG ranks).

A *member* is one process of a distributed step besides the step itself: a training rank or a KerasTuner worker. It
runs `python -m <entry>` with its job (JSON, in the environment) and its environment (TF_CONFIG, KERASTUNER_*), writes
its log, and reports what it returns on its last line. Where it runs:

- without Celery, a local child process of the step (`members.LocalMember`);
- with `execution.executor: celery`, a Celery task (`tasks.run_member`) on a queue of the settings, on whichever
  dagster-celery worker takes it (`members.TaskMember`): the workers import `trainpipe_assets.scaleout.tasks`
  (`dagster-celery worker start ... -i trainpipe_assets.scaleout.tasks`), so there is one kind of worker.

Everything between the step and its members goes through the engine: the job and environment are task arguments, a
member's address, worker name, heartbeat and log tail are its task state in the result backend, the cluster (every
rank's address) is a result the step stores there, cancelling is `revoke(terminate=True)`, and a task whose worker dies
is a failure (WorkerLostError) or a silent heartbeat. `supervise.py` waits for members and names the first to fail with
its worker and the end of its log."""
