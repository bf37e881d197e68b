"""Fault campaign for docs/reliability.md: kill workers at random moments, many times, and count
what was lost. `python bench/fault_campaign.py [KILLS]` (default 20; about 10 s a kill on 2 cores).

For each kill: the run must read as failed, its last complete checkpoint must load, and resuming
from it must reproduce the uninterrupted loss curve of the same seed. A run is lost when any of
that fails, or when a completed output is missing or half-written.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "engine")]

import conftest  # noqa: E402
from fault_helpers import check_checkpoint_loads, kill_at, random_delays, run_status  # noqa: E402
from sft_helpers import losses, sft_config  # noqa: E402
from test_faults import FAULTY, run_worker  # noqa: E402


def main(kills: int = 20) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    from studio.engine.scratch import save_new_causal_lm

    model = save_new_causal_lm(tmp / "model", [f"{q} {a}" for q, a in conftest.QA_PAIRS] * 20 +
                               [conftest.plain_text()], vocab_size=400)
    conftest.pretrain_briefly(model)
    data = tmp / "qa.json"
    import json

    data.write_text(json.dumps([{"instruction": q, "output": a} for q, a in conftest.QA_PAIRS]))
    cfg = sft_config(model, data, **FAULTY)
    reference = losses(run_worker(cfg, tmp / "reference"))
    moments, lost, resumed = collections.Counter(), [], 0
    t0 = time.time()
    plans = [dict(after_s=d) for d in random_delays(kills - kills // 5, 1.5, seed=1)]
    plans += [dict(on_saving_output=True)] * (kills // 5)
    for i, plan in enumerate(plans):
        kill = kill_at(cfg, tmp / f"kill-{i}", **plan)
        moments[kill.moment] += 1
        problems = []
        if kill.final_event.get("type") != "failed" or run_status(kill.run_dir) != "failed":
            problems.append("does not read as failed")
        if (kill.run_dir / "adapter").exists():
            problems.append("an output exists after a kill")
        if kill.checkpoint is not None:
            try:
                check_checkpoint_loads(kill.checkpoint)
                events = run_worker(sft_config(model, data, **dict(FAULTY, resume_from=str(kill.checkpoint))),
                                    tmp / f"resume-{i}")
                curve = losses(events)
                if events[-1].get("type") != "finished" or any(abs(curve[s] - reference[s]) > 1e-5 for s in curve):
                    problems.append("resume did not reproduce the loss curve")
                resumed += 1
            except Exception as exc:  # noqa: BLE001
                problems.append(f"checkpoint unusable: {exc}")
        if problems:
            lost.append((kill.run_dir.name, kill.moment, problems))
        print(f"kill {i + 1}/{len(plans)}: during {kill.moment}, checkpoint "
              f"{kill.checkpoint.name if kill.checkpoint else 'none'}: {'; '.join(problems) or 'ok'}", flush=True)
    print(f"\n{len(plans)} kills ({dict(moments)}), {resumed} resumed, {len(lost)} runs lost, "
          f"{time.time() - t0:.0f} s")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
