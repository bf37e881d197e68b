"""The command line: the sub-commands of `studio` (train, eval, export, generate, check, runs, doctor), the same jobs as
the app without a window. It never imports Qt: `studio` with no arguments opens the window through
studio.launcher, which calls this module for everything else."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from studio.engine.errors import StudioError


def _print_error(err: StudioError) -> None:
    print(f"error ({err.kind}): {err.message}", file=sys.stderr)
    if err.hint:
        print(f"hint: {err.hint}", file=sys.stderr)


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def _with_sets(cfg, sets):
    from studio.engine.config import from_dict, to_dict

    if not sets:
        return cfg
    data = to_dict(cfg)
    for item in sets:
        key, _, value = item.partition("=")
        data[key.strip()] = _parse_value(value)
    return from_dict(data, source="the config with --set")


def _supervise(cfg, args) -> tuple[int, Path]:
    """Check the config, create its run folder, run its worker with a progress bar; the exit code and folder."""
    from tqdm import tqdm

    from studio.engine.preflight import preflight
    from studio.engine.run_state import RunState, describe_event
    from studio.engine.runs import default_workspace
    from studio.engine.supervisor import WorkerProcess, prepare_run

    workspace = Path(args.workspace) if args.workspace else default_workspace()
    report = preflight(cfg, workspace)
    for finding in report.findings:  # the data summary and the warnings are shown even with --quiet
        if finding.level != "error":
            print(finding.line() + (f"\n  hint: {finding.hint}" if finding.level == "warning" and finding.hint
                                    else ""), file=sys.stderr)
    run_dir = prepare_run(cfg, workspace)
    print(f"run folder: {run_dir}", file=sys.stderr)
    worker = WorkerProcess(run_dir)
    worker.start()

    interrupts = 0

    def on_interrupt(*_):
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print("\nstopping after this step (Ctrl-C again to kill)…", file=sys.stderr)
            worker.request_stop()
        else:
            worker.kill()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        state, bar = RunState(), None
        evaluating = getattr(cfg, "task", "") == "eval"
        for ev in worker.events():
            state.apply(ev)
            t = ev["type"]
            line = describe_event(ev)
            if t == "started":
                bar = tqdm(total=state.total_steps, initial=state.resumed_at, unit="example" if evaluating else "step",
                           disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
            elif t == "log" and bar is not None:
                bar.n = state.step
                if evaluating:
                    bar.set_postfix_str(state.candidate or "", refresh=False)
                else:
                    bar.set_postfix(loss=f"{state.last_loss or float('nan'):.4f}",
                                    tok_s=f"{state.tokens_per_s or 0:.0f}", refresh=False)
                bar.refresh()
            if line and (not args.quiet or t in ("eval", "scored") or t == "progress" and "dataset" in ev):
                (tqdm.write if bar is not None else print)(line, file=sys.stderr)
        if bar is not None:
            bar.close()
    finally:
        signal.signal(signal.SIGINT, previous)  # a caller running main() in-process gets its Ctrl-C back
    ev = worker.outcome().final_event or {}
    if ev.get("type") == "finished":
        return 0, run_dir
    print(f"failed ({ev.get('kind')}): {ev.get('message')}", file=sys.stderr)
    if ev.get("hint"):
        print(f"hint: {ev['hint']}", file=sys.stderr)
    print(f"run folder: {run_dir}", file=sys.stderr)
    return 1, run_dir


def cmd_train(args) -> int:
    from studio.engine.config import load_config
    from studio.engine.run_state import load_run_state

    cfg = _with_sets(load_config(args.config), args.set)
    if getattr(cfg, "task", "") == "eval":
        return cmd_eval(args)
    if args.resume:
        cfg.resume_from = args.resume  # a run folder or a checkpoint; checked against the model before any start
    code, run_dir = _supervise(cfg, args)
    if code == 0:
        state = load_run_state(run_dir, with_history=False)
        print(f"{state.status}: {state.output}")
    return code


def cmd_eval(args) -> int:
    """Score candidates on a held-out file: from a config (an evaluation's config.yaml re-runs it), or flags."""
    from studio.engine.config import from_dict, load_config
    from studio.engine.evaluate.results import load_results, table_rows

    if args.config:
        cfg = load_config(args.config)
        if getattr(cfg, "task", "") != "eval":
            print(f"error (bad_config): {args.config} is a '{cfg.task}' run; `studio train` runs it.", file=sys.stderr)
            return 2
    else:
        cfg = from_dict({"task": "eval"}, source="the command line")
    flags = {"model": getattr(args, "model", None), "dataset": getattr(args, "data", None),
             "shots": getattr(args, "shots", None), "shot_pool": getattr(args, "shot_pool", None),
             "tuned": ";".join(getattr(args, "tuned", None) or []) or None}
    cfg = _with_sets(cfg, [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.set or []))
    code, run_dir = _supervise(cfg, args)
    if code != 0:
        return code
    results = load_results(run_dir)
    headers, rows = table_rows(results)
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    for row in [headers] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print()
    print(results.get("recommendation", ""))
    for warning in results.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"results: {run_dir / 'results.json'}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    """Export a run (or an adapter or model folder): merged model, GGUF files, Ollama Modelfile."""
    import json

    from studio.engine.config import from_dict
    from studio.engine.runs import read_run_config

    source = Path(args.source).expanduser()
    source = source.resolve() if source.exists() else source  # the saved config must not depend on the cwd
    name = args.name or read_run_config(source).get("name") or read_run_config(source.parent).get("name") or \
        source.name
    cfg = from_dict({"task": "export", "source": str(source), "formats": args.format, "name": str(name),
                     "system_prompt": args.system or "", "preset": args.preset or "",
                     "trust_remote_code": args.trust_remote_code, "allow_pickle": args.allow_pickle},
                    source="the command line")
    code, run_dir = _supervise(cfg, args)
    if code != 0:
        return code
    record = json.loads((run_dir / "export.json").read_text(encoding="utf-8"))
    for item in record["files"]:
        print(f"{item['format']:10} {item['bytes'] / 1e6:10.1f} MB  {item['path']}")
    for fmt, message in record["failed"].items():
        print(f"failed: {fmt}: {message}", file=sys.stderr)
    if record.get("ollama_command"):
        print(f"\nto run it in Ollama: {record['ollama_command']}")
    return 1 if record["failed"] else 0


def cmd_generate(args) -> int:
    from studio.engine.generation import generate_text, load_for_generation

    sampling = _sampling_from_args(args)  # checked before the (slow) model load
    loaded = load_for_generation(args.model, args.adapter, device=args.device,
                                 trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle)
    print(generate_text(loaded, args.prompt, system=args.system, chat=not args.raw, sampling=sampling))
    return 0


SAMPLING_SHAPE = ("temperature", "top_p", "top_k")  # giving one of these asks for a sampled reply


def _add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per SamplingSettings field, with the help, bounds and default its knob declares."""
    import dataclasses
    import typing

    from studio.engine.prompting.sampling import SamplingSettings

    hints = typing.get_type_hints(SamplingSettings)
    defaults = SamplingSettings()
    for f in dataclasses.fields(SamplingSettings):
        meta, flag, default = f.metadata, "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        text = meta["help"].replace("%", "%%")
        if meta.get("min") is not None:
            text += f" From {meta['min']} to {meta['max']}."
        if f.name == "greedy":
            text += (" Default: greedy, unless --temperature, --top-p or --top-k is given (--temperature 0 also "
                     "means greedy).")
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
            continue
        if f.name == "stop_strings":
            parser.add_argument(flag, metavar="TEXT", default=None, help=text)
            continue
        typ = next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        text += f" Default: {default}." if f.name not in SAMPLING_SHAPE else f" Default when sampling: {default}."
        parser.add_argument(flag, type=typ, metavar="N" if typ is int else "X", default=None, help=text)


def _sampling_from_args(args):
    """SamplingSettings from the options given (the others keep their declared defaults), validated."""
    import dataclasses

    from studio.engine.prompting.sampling import SamplingSettings, stop_strings_from_text

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(SamplingSettings)
             if getattr(args, f.name, None) is not None}
    if given.get("temperature") == 0:  # the first `studio generate` spelled greedy as --temperature 0
        del given["temperature"]
        given.setdefault("greedy", True)
    given.setdefault("greedy", not any(name in given for name in SAMPLING_SHAPE))
    if "stop_strings" in given:
        given["stop_strings"] = stop_strings_from_text(given["stop_strings"])
    return SamplingSettings(**given).validate()


def cmd_check(args) -> int:
    """Check a dataset the way a run would load it, and print its summary."""
    from studio.engine.data.files import read_records
    from studio.engine.data.formats import describe_drops, to_conversations

    # --map also takes placeholder values: --map '{{name}}=Ann' fills {{name}} as the config's placeholders do
    mapping = dict(item.split("=", 1) for item in args.map or [])
    convs = to_conversations(read_records(args.dataset), args.format, mapping)
    for warning in convs.warnings:  # to stderr: stdout stays the summary alone
        print(f"warning: {warning}", file=sys.stderr)
    if not args.model:
        print(f"{len(convs.conversations)} usable rows ({convs.format} format)")
        if convs.dropped:
            print(f"dropped: {describe_drops(convs.dropped)}")
        return 0
    from studio.engine.data.render import ensure_chat_template, tokenize_all
    from studio.engine.models import load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(resolve_model_path(args.model))
    ensure_chat_template(tokenizer)
    _, summary = tokenize_all(tokenizer, convs, args.max_length)
    print(summary.describe())
    return 0


def cmd_runs(args) -> int:
    from studio.engine.runs import default_workspace, list_runs

    workspace = Path(args.workspace) if args.workspace else default_workspace()
    for r in list_runs(workspace):
        best = f"{r.best_eval_loss:.4f}" if r.best_eval_loss is not None else "-"
        print(f"{r.path.name:45} {r.task:8} {r.method:10} {r.status:10} step {r.steps:<6} best eval {best}")
    sys.stdout.flush()  # inside main's guard: a closed pipe is found here, not at the interpreter's exit
    return 0


def cmd_doctor(args) -> int:
    """The system report: versions, the torch build, GPUs and their memory, the workspace, the OS."""
    import json

    from studio.engine.system_report import collect

    report = collect(args.workspace)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.text())
    return 0


def cmd_gui(args) -> int:
    print("The window is opened by `studio` (or `python -m studio`) with no arguments, or `studio gui`.",
          file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="Adapt Studio: adapt language models locally.")
    parser.add_argument("--version", action="store_true",
                        help="print the versions of Adapt Studio, Python and its libraries, and exit")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("train", help="run a training config (YAML or JSON) in a worker process")
    p.add_argument("config")
    p.add_argument("--workspace", help="workspace folder (default: the user data folder, or $ADAPT_STUDIO_WORKSPACE)")
    p.add_argument("--resume", help="a run folder (its last complete checkpoint) or a checkpoint folder")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="score the base model, k-shot prompts and fine-tuned models on a held-out file")
    e.add_argument("config", nargs="?", help="an evaluation config (YAML); an evaluation's config.yaml re-runs it")
    e.add_argument("--model", help="the base model (a folder or a model in the Hugging Face cache)")
    e.add_argument("--data", help="the held-out file: labelled text, instruction/output pairs or raw text")
    e.add_argument("--shots", help="k values for in-context candidates, e.g. 0,1,3,5")
    e.add_argument("--shot-pool", dest="shot_pool", help="where the k examples come from: a training file or a "
                                                        "playground preset")
    e.add_argument("--tuned", action="append", metavar="FOLDER",
                   help="a fine-tuned candidate: an adapter, a model or a run folder (repeat for more)")
    e.add_argument("--workspace")
    e.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a config field")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_eval)
    x = sub.add_parser("export", help="export a run: merged model, GGUF files and an Ollama Modelfile")
    x.add_argument("source", help="a run folder, or an adapter/ or model/ folder")
    x.add_argument("--format", default="merged,gguf-q8_0,ollama",
                   help="comma-separated: merged, gguf-f16, gguf-bf16, gguf-q8_0, ollama (default: %(default)s)")
    x.add_argument("--name", help="the exported model's name (default: the run's name)")
    x.add_argument("--system", help="a system prompt for the Ollama Modelfile")
    x.add_argument("--preset", help="a playground preset whose sampling settings go into the Modelfile")
    x.add_argument("--trust-remote-code", action="store_true")
    x.add_argument("--allow-pickle", action="store_true")
    x.add_argument("--workspace")
    x.add_argument("--quiet", action="store_true", help="no progress bar")
    x.set_defaults(func=cmd_export)
    g = sub.add_parser("generate", help="generate text from a model, optionally with an adapter")
    g.add_argument("--model", required=True)
    g.add_argument("--adapter")
    g.add_argument("--prompt", required=True)
    g.add_argument("--system", default="")
    g.add_argument("--raw", action="store_true", help="continue raw text instead of a chat turn")
    _add_sampling_arguments(g)
    g.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))
    g.add_argument("--trust-remote-code", action="store_true")
    g.add_argument("--allow-pickle", action="store_true")
    g.set_defaults(func=cmd_generate)
    c = sub.add_parser("check", help="check a dataset and print its summary (rows, format, token lengths)")
    c.add_argument("dataset")
    c.add_argument("--model", help="count tokens with this model's tokenizer and chat template")
    c.add_argument("--format", default="auto", choices=("auto", "alpaca", "messages", "sharegpt",
                                                         "prompt_completion"))
    c.add_argument("--map", action="append", metavar="FROM=TO", help="column mapping, e.g. question=instruction")
    c.add_argument("--max-length", type=int, default=512)
    c.set_defaults(func=cmd_check)
    r = sub.add_parser("runs", help="list the runs in the workspace")
    r.add_argument("--workspace")
    r.set_defaults(func=cmd_runs)
    d = sub.add_parser("doctor", help="print a system report (versions, torch build, GPUs, workspace, OS) "
                                      "to paste into a bug report")
    d.add_argument("--workspace", help="the workspace to report on (default: the one runs go to)")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.set_defaults(func=cmd_doctor)
    w = sub.add_parser("gui", help="open the application (the default)")
    w.add_argument("gui_args", nargs=argparse.REMAINDER)
    w.set_defaults(func=cmd_gui)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.version:
        from studio.engine.system_report import version_text

        print(version_text())
        return 0
    if not args.command:
        build_parser().print_help()
        return 2
    try:
        return args.func(args)
    except StudioError as err:
        _print_error(err)
        return 2
    except BrokenPipeError:
        # The reader went away (`studio runs | head`): not an error of ours. Point stdout at nothing so that
        # the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RecursionError:
        print("error (bad_input): the input is nested too deeply to read (a JSON or YAML structure hundreds of "
              "levels deep).", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a person gets one line, not a traceback; STUDIO_DEBUG shows it
        if os.environ.get("STUDIO_DEBUG"):
            raise
        print(f"error (internal): {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: this is a bug in Adapt Studio; run again with STUDIO_DEBUG=1 for the details, and include "
              "them with the output of `studio doctor` in a bug report.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
