"""A fast stand-in for the worker: the real worker process (pid file, event stream, stop and detach on
stdin, the stop file, SIGTERM, worker.log) running a recipe that trains nothing, so supervision tests take a
second instead of a torch import. `python tests/fake_worker.py RUN_DIR`; the run's config decides how it goes:
max_steps steps of `seconds_per_step` (from the environment, default 0.05), a checkpoint every save_every.

Like a real trainer it looks at the stop request between steps only: with long steps
(FAKE_WORKER_SECONDS_PER_STEP=60) a stop cannot be honoured in time and the worker is killed after the grace
period. It reads the dataset with the engine's own reader, so a broken file fails the run as a real one does.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.engine import worker  # noqa: E402
from studio.engine.runs import CHECKPOINTS_DIR, atomic_dir, mark_complete  # noqa: E402

FAKE_SECONDS_ENV = "FAKE_WORKER_SECONDS_PER_STEP"


def fake_recipe(cfg, run_dir, events, stop):
    pause = float(os.environ.get(FAKE_SECONDS_ENV, "0.05"))
    if getattr(cfg, "dataset", ""):
        from studio.engine.data.files import read_records

        read_records(cfg.dataset)  # a bad file raises BadDataset, which the worker reports as a real run does
    start = 0
    if cfg.resume_from:
        start = json.loads((Path(cfg.resume_from) / "trainer_state.json").read_text())["global_step"]
    print(f"fake recipe: {cfg.task} run from step {start}")  # lands in worker.log, as library output does
    events.emit("progress", phase="tokenizing", fraction=0.0)
    events.emit("started", total_steps=cfg.max_steps, resumed_at=start, device="cpu", device_name="fake",
                precision="fp32", model=getattr(cfg, "model", ""), task=cfg.task)
    status, step = "completed", start
    while step < cfg.max_steps:
        time.sleep(pause)  # one training step; a stop request waits for its end
        if stop.is_set():
            status = "stopped"
        step += 1
        events.emit("log", step=step, total_steps=cfg.max_steps, loss=5.0 / step, learning_rate=1e-4,
                    tokens_per_s=1000.0, elapsed_s=step * pause, eta_s=(cfg.max_steps - step) * pause)
        if cfg.save_every and step % cfg.save_every == 0 or status == "stopped":
            point = Path(run_dir) / CHECKPOINTS_DIR / f"checkpoint-{step}"
            point.mkdir(parents=True, exist_ok=True)
            (point / "trainer_state.json").write_text(json.dumps({"global_step": step}))
            mark_complete(point)
            events.emit("checkpoint", step=step, path=str(point))
        if status == "stopped":
            break
    events.emit("progress", phase="saving", fraction=0.0)
    whole_model = cfg.task == "pretrain" or getattr(cfg, "method", "") == "full"
    output = Path(run_dir) / ("model" if whole_model else "adapter")
    with atomic_dir(output) as tmp:
        (tmp / ("config.json" if whole_model else "adapter_config.json")).write_text("{}")
    events.emit("finished", status=status, output=str(output), summary={"steps": step})


worker.RECIPES = {task: "__main__:fake_recipe" for task in worker.RECIPES}

if __name__ == "__main__":
    sys.exit(worker.main())
