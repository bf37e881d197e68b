"""Cleaning the text of rows as they are read, and saying what was done: control characters, duplicate
JSON keys and template placeholders.

Nothing here drops a row. What is changed or suspicious becomes a warning that names the file, the
locations (line, item or row) and counts, so the GUI's dataset panel and `studio check` can show it.

Placeholders: only the double-brace form `{{name}}` (spaces inside allowed: `{{ name }}`) is treated as a
placeholder. Single braces (`{name}`) are everywhere in code, JSON and LaTeX that people fine-tune on, and
`<<name>>` is rare; flagging either would mostly raise false alarms. Values come from the fine-tuning
config's `placeholders` knob ({name: value}); names without a value are left as written and warned about.
"""

from __future__ import annotations

import copy
import re
from collections import Counter

# CSI sequences (colours, cursor moves), OSC sequences (terminal titles, links; only when terminated, so a
# stray "ESC ]" never takes the text after it along), other two-character escape sequences, then any other
# C0 control character except tab, newline and carriage return. Whole escape sequences go: stripping only
# the ESC byte would leave "[31m" in the text.
CONTROL_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]"
                        r"|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)"
                        r"|\x1b[@-Z\\-_]"
                        r"|[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Every match of CONTROL_RE starts with one of these; searching for them alone is several times faster.
CONTROL_CHAR_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
CONTROL_NAMES = {"\x00": "NUL", "\x07": "BEL", "\x08": "backspace", "\x0b": "vertical tab", "\x0c": "form feed",
                 "\x1b": "ESC"}
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
MAX_LOCATIONS = 5  # per warning: enough to find the rows, short enough to read


def locations(where: list[str]) -> str:
    shown = ", ".join(where[:MAX_LOCATIONS])
    return shown + (f" and {len(where) - MAX_LOCATIONS} more" if len(where) > MAX_LOCATIONS else "")


def _control_kind(match: str) -> str:
    if len(match) > 1:
        return "ANSI escape sequence"
    return CONTROL_NAMES.get(match, f"control character U+{ord(match):04X}")


def _strings(value):
    """(container, key, text) for every string value inside `value` (dict keys excluded), without
    recursion: a row nested a thousand levels deep must not overflow the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in pairs:
            if isinstance(child, str):
                yield item, key, child
            elif isinstance(child, (dict, list)):
                stack.append(child)


def strip_control_characters(path, rows: list[dict], where: list[str]) -> list[str]:
    """Remove control characters from every text value in `rows` (in place); warnings saying what went."""
    kinds: Counter = Counter()
    affected: list[str] = []
    for row, loc in zip(rows, where):
        found = False
        for container, key, text in _strings(row):
            if not CONTROL_CHAR_RE.search(text):
                continue
            found = True
            for match in CONTROL_RE.findall(text):
                kinds[_control_kind(match)] += 1
            container[key] = CONTROL_RE.sub("", text)
        if found:
            affected.append(loc)
    if not affected:
        return []
    what = ", ".join(f"{kind} ×{n}" for kind, n in kinds.most_common())
    return [f"{path}: {sum(kinds.values())} control characters stripped from the text of {len(affected)} "
            f"row(s) ({locations(affected)}): {what}. They are invisible in editors and only confuse the model."]


class DuplicateKeys:
    """A json `object_pairs_hook` that keeps the last value of a repeated key (as json does) and remembers
    which objects repeated which keys, so the warning can say where."""

    def __init__(self):
        self.found: list[tuple[dict, list[str]]] = []

    def __call__(self, pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set = set()
            repeated = [k for k, _ in pairs if k in seen or seen.add(k)]
            self.found.append((obj, list(dict.fromkeys(repeated))))
        return obj

    def take(self) -> list[str]:
        """The repeated keys seen since the last call."""
        keys = [k for _, ks in self.found for k in ks]
        self.found = []
        return keys

    def by_item(self, items: list) -> dict[int, list[str]]:
        """Repeated keys per top-level item (for a JSON list, where the parser does not know the item)."""
        owner = {id(obj): keys for obj, keys in self.found}
        out: dict[int, list[str]] = {}
        for i, item in enumerate(items):
            stack = [item]
            while stack and owner:
                node = stack.pop()
                if isinstance(node, dict):
                    if id(node) in owner:
                        out.setdefault(i, []).extend(owner.pop(id(node)))
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
        self.found = []
        return out


def duplicate_key_warning(path, keys_at: dict[str, list[str]]) -> list[str]:
    """keys_at: repeated key -> locations."""
    if not keys_at:
        return []
    listed = "; ".join(f"'{key}' ({locations(locs)})" for key, locs in keys_at.items())
    return [f"{path}: an object names the same key twice — {listed}. JSON keeps only the last value, so the "
            f"earlier ones are ignored; remove the duplicates if they were meant to be different fields."]


def placeholder_values_from_mapping(mapping: dict | None) -> dict[str, str]:
    """Mapping entries whose key is a placeholder ("{{name}}": value) as {name: value}. This is how values
    reach the loader through paths that carry only a column mapping (`studio check --map '{{name}}=Ann'`)."""
    out = {}
    for key, value in (mapping or {}).items():
        match = PLACEHOLDER_RE.fullmatch(str(key).strip())
        if match:
            out[match.group(1)] = str(value)
    return out


def fill_placeholders(path, rows: list[dict], where: list[str], values: dict[str, str]
                      ) -> tuple[list[dict], dict[str, list[str]], list[str]]:
    """The rows with `{{name}}` replaced by values[name] in every text value (changed rows are copies: the
    records stay as read), every placeholder name found (filled or not) with its rows, and a warning
    naming those left without a value."""
    found: dict[str, list[str]] = {}
    out = []
    for row, loc in zip(rows, where):
        names: list[str] = []
        for _, _, text in _strings(row):
            if "{{" in text:
                names += PLACEHOLDER_RE.findall(text)
        for name in dict.fromkeys(names):
            found.setdefault(name, []).append(loc)
        if any(name in values for name in names):
            row = copy.deepcopy(row)
            for container, key, text in _strings(row):
                if "{{" in text:
                    container[key] = PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)
        out.append(row)
    unfilled = {name: locs for name, locs in found.items() if name not in values}
    warnings = []
    if unfilled:
        listed = "; ".join(f"{{{{{name}}}}} ({locations(locs)})" for name, locs in unfilled.items())
        warnings.append(f"{path}: template placeholders left in the text — {listed}. Give them values in the "
                        f"'placeholders' setting (Data), or they are trained on as written.")
    return out, found, warnings
