"""Tool (function) calling in fine-tuning data: reading it, and preparing it for a chat template.

Read from:
- ShareGPT rows: `function_call` turns (JSON {"name", "arguments"}, or a list of them for parallel calls)
  and `observation` turns (the tool's result), with the tool descriptions in a `tools` column (a JSON
  string or a list), as LLaMA-Factory and the glaive/xlam tool-calling sets write them;
- OpenAI-style rows: `tool_calls` on assistant messages (legacy: `function_call`), `role: tool` messages
  (legacy: `role: function`), and a `tools` (legacy: `functions`) column.

A conversation holds them in OpenAI's chat shape: an assistant message with `tool_calls`
([{"type": "function", "function": {"name", "arguments": JSON text}, "id"?}]), `tool` messages with the
results, and, when the row has tool descriptions, a first message {"role": "tools", "content": JSON list of
the descriptions}. Keeping everything in the message list (plain strings, no nested free-form objects)
lets a conversation travel alone — through `render.tokenize_conversation`, JSON or an Arrow table —
without losing its tools.

Rendering (`for_template`): when the model's chat template renders tool descriptions, calls and results
(probed once per template), the messages go to `apply_chat_template(messages, tools=…)` as transformers
expects them. Otherwise the documented fallback: the descriptions are appended to the system turn as JSON
(one a line, after TOOLS_PREAMBLE), each call is a line of JSON {"name", "arguments"} in the assistant's
text, and each result is a `tool` turn (a user turn starting "Tool result" when the template cannot show a
`tool` turn). Either way the call is trained (it is the assistant's turn) and the result is not.
"""

from __future__ import annotations

import json

from studio.engine.data.problems import RowProblem

TOOLS_ROLE = "tools"
TOOLS_COLUMNS = ("tools", "functions")
TOOLS_PREAMBLE = ("You can call these tools; to call one, answer with a line of JSON "
                  "{\"name\": …, \"arguments\": {…}}:")


def _without_nulls(value):
    """Parquet gives every struct all the keys of its column, the missing ones as None: drop those."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def parse_tools(value, column: str) -> list[dict]:
    """A `tools` cell (JSON text, a list or one object) as tool descriptions in transformers' shape
    {"type": "function", "function": {"name", "description", "parameters"}}."""
    if value is None:
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowProblem(f"column '{column}' is not valid JSON ({exc.msg}); expected a list of tool "
                             f"descriptions") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RowProblem(f"column '{column}' is a {type(value).__name__}; expected a list of tool descriptions")
    specs = []
    for tool in _without_nulls(value):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            spec = {"type": tool.get("type") or "function", "function": tool["function"]}
        elif isinstance(tool, dict):
            spec = {"type": "function", "function": tool}
        else:
            raise RowProblem(f"a tool in column '{column}' is a {type(tool).__name__}; expected an object "
                             f"with a 'name'")
        name = spec["function"].get("name")
        if not isinstance(name, str) or not name.strip():
            raise RowProblem(f"a tool in column '{column}' has no 'name'; expected {{\"name\": …, "
                             f"\"description\": …, \"parameters\": {{…}}}}")
        specs.append(spec)
    return specs


def tools_message(specs: list[dict]) -> dict:
    return {"role": TOOLS_ROLE, "content": json.dumps(specs, ensure_ascii=False)}


def _call(obj: dict, field_name: str) -> dict:
    fn = obj["function"] if isinstance(obj.get("function"), dict) else obj
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RowProblem(f"a tool call in '{field_name}' has no 'name'")
    args = fn.get("arguments", fn.get("parameters"))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            raise RowProblem(f"the arguments of a tool call in '{field_name}' are not valid JSON") from None
    args = {} if args is None else _without_nulls(args)
    if not isinstance(args, dict):
        raise RowProblem(f"the arguments of a tool call in '{field_name}' are a {type(args).__name__}; "
                         f"expected a JSON object")
    call = {"type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}
    if isinstance(obj.get("id"), str) and obj["id"]:
        call["id"] = obj["id"]
    return call


def sharegpt_calls(value, field_name: str) -> list[dict]:
    """The calls of a ShareGPT `function_call` turn."""
    problem = RowProblem(f"a 'function_call' turn in '{field_name}' is not JSON with a 'name' and "
                         f"'arguments'; expected {{\"name\": …, \"arguments\": {{…}}}}")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise problem from None
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, dict) for item in items):
        raise problem
    return [_call(item, field_name) for item in items]


def openai_calls(turn: dict, field_name: str) -> list[dict]:
    """The calls of an OpenAI-style assistant message (`tool_calls`, or the legacy `function_call`)."""
    calls = turn.get("tool_calls")
    out = []
    if calls is not None:
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise RowProblem(f"'tool_calls' of a turn in '{field_name}' must be a list of calls")
        out += [_call(c, field_name) for c in calls]
    if isinstance(turn.get("function_call"), dict):
        out.append(_call(turn["function_call"], field_name))
    return out


def has_tools(messages: list[dict]) -> bool:
    return any(m["role"] in (TOOLS_ROLE, "tool") or m.get("tool_calls") for m in messages)


# ---- rendering ------------------------------------------------------------------------------------------

_PROBE_TOOL = {"type": "function", "function": {
    "name": "probe_tool", "description": "probe-description-7f3",
    "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "q"}}, "required": ["q"]}}}
# The id has 9 letters and digits: Mistral's templates refuse any other shape.
_PROBE_CALL = [{"role": "user", "content": "probe-user-7f3"},
               {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function", "function": {
                   "name": "probe_tool", "arguments": {"q": "probe-argument-7f3"}}}]},
               {"role": "tool", "content": "probe-result-7f3", "name": "probe_tool", "tool_call_id": "call12345"},
               {"role": "assistant", "content": "probe-reply-7f3"}]
_PROBE_TOOL_ROLE = [{"role": "user", "content": "probe-user-7f3"}, {"role": "assistant", "content": "probe-a"},
                    {"role": "tool", "content": "probe-result-7f3"}, {"role": "assistant", "content": "probe-b"}]
_support: dict[tuple, tuple[bool, bool]] = {}


def _renders(tokenizer, messages, tools, needles) -> bool:
    try:
        text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    except Exception:  # noqa: BLE001 - a template that raises on these turns does not support them
        return False
    return isinstance(text, str) and all(n in text for n in needles)


def template_support(tokenizer) -> tuple[bool, bool]:
    """(the template renders tool descriptions, calls and results itself; it renders a `tool` turn)."""
    key = (type(tokenizer).__name__, str(tokenizer.chat_template))
    if key not in _support:
        native = _renders(tokenizer, _PROBE_CALL, [_PROBE_TOOL],
                          ("probe-description-7f3", "probe-argument-7f3", "probe-result-7f3", "probe-reply-7f3"))
        _support[key] = (native, native or _renders(tokenizer, _PROBE_TOOL_ROLE, None, ("probe-result-7f3",)))
    return _support[key]


def _native(message: dict) -> dict:
    calls = message.get("tool_calls")
    extra = {k: v for k, v in message.items() if k in ("name", "tool_call_id") and isinstance(v, str)}
    out = {"role": message["role"], "content": message["content"], **extra}
    if calls:
        out["tool_calls"] = [{**{k: v for k, v in c.items() if v is not None and k != "function"},
                              "function": {"name": c["function"]["name"],
                                           "arguments": json.loads(c["function"]["arguments"] or "{}")}}
                             for c in calls]
    return out


def call_text(call: dict) -> str:
    """A call as the fallback writes it in the assistant's text: one line of JSON."""
    return json.dumps({"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"]
                                                                                   or "{}")}, ensure_ascii=False)


def _fallback(messages: list[dict], specs: list[dict], tool_role: bool) -> list[dict]:
    out = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            lines = ([m["content"]] if m["content"].strip() else []) + [call_text(c) for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": "\n".join(lines)})
        elif m["role"] == "tool":
            if tool_role:
                out.append({"role": "tool", "content": m["content"]})
            else:
                name = m.get("name") if isinstance(m.get("name"), str) else ""
                out.append({"role": "user", "content": f"Tool result{f' ({name})' if name else ''}:\n{m['content']}"})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    if specs:
        described = TOOLS_PREAMBLE + "\n" + "\n".join(json.dumps(s["function"], ensure_ascii=False) for s in specs)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{described}"}
        else:
            out.insert(0, {"role": "system", "content": described})
    return out


def for_template(tokenizer, messages: list[dict]) -> tuple[list[dict], list[dict] | None]:
    """The messages to give the chat template and the `tools` argument (None without tool data)."""
    if not has_tools(messages):
        return messages, None
    specs: list[dict] = []
    for m in messages:
        if m["role"] == TOOLS_ROLE:
            specs += json.loads(m["content"] or "[]")
    rest = [m for m in messages if m["role"] != TOOLS_ROLE]
    native, tool_role = template_support(tokenizer)
    if native:
        return [_native(m) for m in rest], specs or None
    return _fallback(rest, specs, tool_role), None
