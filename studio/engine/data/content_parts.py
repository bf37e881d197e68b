"""Message content given as a list of typed parts (OpenAI style), read as text.

`"content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]` becomes "Hello\nthere":
the text parts joined by a newline (parts are usually separate paragraphs, and joining them with nothing
would glue the last word of one to the first of the next). A part that is not text (image_url, image,
input_audio, file, …) makes the row unusable for a text model: the row is dropped with a reason naming the
part's type, the rest of the file is kept.
"""

from __future__ import annotations

from studio.engine.data.problems import RowProblem

# "input_text"/"output_text" are the OpenAI Responses API's names for the same thing.
TEXT_PART_TYPES = ("text", "input_text", "output_text")
PART_JOINER = "\n"


def content_text(content, key: str, field_name: str) -> str:
    """A turn's content as text: a string as is, a list of parts joined; anything else is a RowProblem."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
                continue
            if not isinstance(part, dict):
                raise RowProblem(f"a content part in '{field_name}' is a {type(part).__name__}; expected an "
                                 f"object such as {{\"type\": \"text\", \"text\": …}}")
            kind = part.get("type") or ("text" if isinstance(part.get("text"), str) else None)
            if kind is None:
                raise RowProblem(f"a content part in '{field_name}' has no 'type'; expected "
                                 f"{{\"type\": \"text\", \"text\": …}}")
            if kind not in TEXT_PART_TYPES:
                raise RowProblem(f"a content part of type '{kind}' in '{field_name}': only text parts can be "
                                 f"trained on, so the row is left out")
            text = part.get("text")
            if not isinstance(text, str):
                raise RowProblem(f"a text part in '{field_name}' has no 'text' string")
            texts.append(text)
        return PART_JOINER.join(texts)
    raise RowProblem(f"a turn's '{key}' in '{field_name}' is a {type(content).__name__}; expected text")
