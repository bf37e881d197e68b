#!/usr/bin/env bash
# Build the desktop app and prove the built folder works. Too slow for the CI suite (a build takes
# 10-30 minutes); run it before a release:
#
#   packaging/check_build.sh                  # build (clean venv) and check
#   packaging/check_build.sh --current-env    # build from the active Python env and check
#   packaging/check_build.sh --no-build       # only check an existing dist/adapt-studio
#
# Checks, all with QT_QPA_PLATFORM=offscreen:
#   1. dist/adapt-studio/adapt-studio --smoke-test   (main window, three tabs, starter model; exit 0)
#   2. dist/adapt-studio/adapt-studio -m studio.engine.worker RUN_DIR   on a 2-step LoRA run of the
#      starter model (or a tiny model made with studio.engine.scratch if the starter model is absent)
#      on resources/sample-instructions.json: the run must end with a `finished` event and an adapter.
#   3. dist/adapt-studio/adapt-studio train CONFIG   the same run through the CLI, whose supervisor
#      starts the worker as `sys.executable -m studio.engine.worker` — the path the GUI takes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD=1
BUILD_ARGS=()
for a in "$@"; do
    case "$a" in
        --no-build) BUILD=0 ;;
        *) BUILD_ARGS+=("$a") ;;
    esac
done
if [[ $BUILD == 1 ]]; then
    "$ROOT/packaging/build.sh" "${BUILD_ARGS[@]}"
fi

APP="$ROOT/dist/adapt-studio/adapt-studio"
[[ -x "$APP" ]] || { echo "FAIL: $APP not found" >&2; exit 1; }
export QT_QPA_PLATFORM=offscreen
WORK="$(mktemp -d "${TMPDIR:-/tmp}/adapt-studio-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export ADAPT_STUDIO_WORKSPACE="$WORK/workspace"  # keep the user's workspace out of it
status=0

echo "== 1. smoke test"
t0=$(date +%s.%N)
if "$APP" --smoke-test; then
    echo "PASS: --smoke-test ($(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s)"
else
    echo "FAIL: --smoke-test exited $?"; status=1
fi

echo "== 2. frozen worker: $APP -m studio.engine.worker RUN_DIR"
# A run folder with a tiny config, written by a Python that has the project installed (the build
# venv if there is one); the frozen app reads the same config format.
PY="${PYTHON:-python3}"
[[ -x "$ROOT/build/venv/bin/python" ]] && PY="$ROOT/build/venv/bin/python"
RUN_DIR=$("$PY" - "$WORK" <<'PYEOF'
import sys
from pathlib import Path

from studio.engine.config import FineTuneConfig, save_config
from studio.engine.supervisor import prepare_run
from studio.resources import sample_dataset, starter_model_dir

work = Path(sys.argv[1])
model = starter_model_dir()
if not (model / "config.json").exists():
    from studio.engine.scratch import save_new_causal_lm
    import json
    rows = json.loads(sample_dataset().read_text())
    texts = [" ".join(str(v) for v in r.values()) for r in rows] * 4
    model = save_new_causal_lm(work / "tiny-model", texts, vocab_size=300, hidden=32, layers=2, heads=2, context=256)
    print(f"(no starter model: made a tiny one in {model})", file=sys.stderr)
cfg = FineTuneConfig(model=str(model), dataset=str(sample_dataset()), name="frozen-check", method="lora",
                     max_steps=2, batch_size=2, max_length=128, eval_every=0, save_every=0,
                     validation_fraction=0.0, log_every=1, device="cpu")
save_config(cfg, work / "config.yaml")
print(prepare_run(cfg, work / "workspace"))
PYEOF
)
echo "run folder: $RUN_DIR"
t0=$(date +%s)
"$APP" -m studio.engine.worker "$RUN_DIR" > "$WORK/worker-stdout.jsonl" </dev/null || true
last=$(tail -n 1 "$RUN_DIR/events.jsonl" || true)
echo "last event: ${last:0:300}"
if [[ "$last" == *'"type": "finished"'* || "$last" == *'"type":"finished"'* ]] && [[ -f "$RUN_DIR/adapter/adapter_model.safetensors" ]]; then
    echo "PASS: frozen worker trained 2 steps and saved an adapter ($(( $(date +%s) - t0 )) s)"
else
    echo "FAIL: frozen worker; worker.log tail:"; tail -n 30 "$RUN_DIR/worker.log" || true; status=1
fi

echo "== 3. frozen CLI: $APP train CONFIG (the supervisor starts sys.executable -m studio.engine.worker)"
t0=$(date +%s)
if "$APP" train "$WORK/config.yaml" --workspace "$WORK/workspace-cli" --quiet; then
    echo "PASS: frozen CLI train ($(( $(date +%s) - t0 )) s)"
else
    echo "FAIL: frozen CLI train"; status=1
fi

[[ $status == 0 ]] && echo "ALL CHECKS PASSED" || echo "SOME CHECKS FAILED"
exit $status
