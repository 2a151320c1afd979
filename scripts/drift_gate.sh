#!/usr/bin/env bash
# End to end, as a user runs it (CLI only, no benchmark): three good days are ingested and trained on; a drifted day
# fails its blocking examples_valid check at ingest; training for the window that contains it leaves it out, learns
# nothing from it (schema without the drifted company) and pushes nothing new from it.
#   bash scripts/drift_gate.sh            (after `make install`; uses a scratch TRAINPIPE_HOME under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export TRAINPIPE_HOME="${TRAINPIPE_HOME:-$(mktemp -d /tmp/trainpipe-drift-XXXX)}"
export DAGSTER_HOME="$TRAINPIPE_HOME/dagster"
mkdir -p "$DAGSTER_HOME" && printf 'telemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
export TRAINPIPE_CONFIG="$TRAINPIPE_HOME/trainpipe.yaml"
sed -e 's/^train_steps: .*/train_steps: 100/' -e 's/^  max_trials: .*/  max_trials: 2/' \
  trainpipe_assets/default_config.yaml > "$TRAINPIPE_CONFIG"
run() { "$BIN/dagster" job execute -m trainpipe_assets.definitions -j "$1" --tags "{\"dagster/partition\": \"$2\"}" \
  > "$TRAINPIPE_HOME/$1-$2.log" 2>&1; }
"$BIN/trainpipe" simulate --days 3 --rows-per-day 300 --end 2024-03-03 --seed 1
"$BIN/trainpipe" simulate --days 1 --rows-per-day 300 --end 2024-03-04 --seed 2 --drift-from 2024-03-04
for day in 2024-03-01 2024-03-02 2024-03-03; do run ingest_job "$day"; done
run training_job 2024-03-03
echo "trained and pushed on the good days: serving version $(ls "$TRAINPIPE_HOME/serving/trips_model" | grep -c .)"
if run ingest_job 2024-03-04; then echo "FAIL: the drifted day passed ingest"; exit 1; fi
echo "drifted day 2024-03-04: ingest failed its blocking check ($(grep -o '[0-9]* anomalies against schema [0-9-]*' \
  "$TRAINPIPE_HOME/ingest_job-2024-03-04.log" | head -1))"
versions_before=$(ls "$TRAINPIPE_HOME/serving/trips_model")
run training_job 2024-03-04 || true
grep -q "2024-03-04 is left out of the window: examples_valid failed" "$TRAINPIPE_HOME/training_job-2024-03-04.log" \
  || { echo "FAIL: the training run did not leave the drifted day out"; exit 1; }
grep -q "Drift Cab Co" "$TRAINPIPE_HOME/artifacts/schema/2024-03-04/schema.pbtxt" \
  && { echo "FAIL: the schema learned the drifted company"; exit 1; }
"$BIN/trainpipe" history --json > "$TRAINPIPE_HOME/history.json"
"$BIN/python" - "$TRAINPIPE_HOME/history.json" <<'PY'
import json, sys
models = json.load(open(sys.argv[1]))["models"]
trained_on_drift = [m for m in models if "2024-03-04" in m["example_partitions"]]
assert not trained_on_drift, f"FAIL: models trained on the drifted day: {trained_on_drift}"
print(f"{len(models)} trained models in the event log, none trained on 2024-03-04")
PY
echo "versions before: $(echo $versions_before) after: $(ls "$TRAINPIPE_HOME/serving/trips_model" | tr '\n' ' ')"
echo "OK: the drifted day failed ingest, was left out of training and nothing was learned or pushed from it"
