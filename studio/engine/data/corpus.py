"""Raw-text corpora for pre-training: finding the files, reading documents, removing exact duplicates,
tokenizing, joining with the end-of-text token and packing into blocks, and the held-out split.

Plain text files (.txt, .md, .text, or any file named explicitly that is not a table) are split into
documents at blank lines by default, or kept whole, or split one document per line (DOCUMENT_SPLITS);
JSON, JSONL, CSV, TSV and Parquet files give one document per row, from the text column.
Reading is light (no torch), so the GUI may summarise a corpus before a run.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.engine.data.files import TABLE_SUFFIXES, TEXT_SUFFIXES, read_records, read_text
from studio.engine.errors import BadConfig, BadDataset

CORPUS_SUFFIXES = TEXT_SUFFIXES + TABLE_SUFFIXES
# How plain text files become documents; the words are what a summary says about it.
DOCUMENT_SPLITS = {"blank_line": "text split at blank lines", "file": "one per text file",
                   "line": "one per line of text"}


@dataclass
class Corpus:
    documents: list[str]
    files: list[Path]
    duplicates_removed: int = 0
    document_split: str = "blank_line"
    text_files: int = 0  # plain text files among `files` (the ones document_split applies to)

    @property
    def characters(self) -> int:
        return sum(len(d) for d in self.documents)

    def describe_files(self, limit: int = 3) -> str:
        names = ", ".join(str(p) for p in self.files[:limit])
        return names + (f" and {len(self.files) - limit} more" if len(self.files) > limit else "")


@dataclass
class CorpusSummary:
    files: int
    documents: int
    duplicates_removed: int
    characters: int
    tokens: int
    blocks: int
    block_size: int
    train_blocks: int = 0
    validation_blocks: int = 0
    dropped_tokens: int = 0  # the tail that does not fill a last block
    estimated: bool = False  # tokens guessed from characters (no tokenizer yet)
    sources: list[str] = field(default_factory=list)
    document_split: str = ""  # set when plain text files were split (see DOCUMENT_SPLITS)

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        approx = "≈" if self.estimated else ""
        how = f" ({DOCUMENT_SPLITS[self.document_split]})" if self.document_split in DOCUMENT_SPLITS else ""
        text = (f"{self.documents} documents{how} from {self.files} file(s), {approx}{self.tokens:,} tokens, "
                f"{approx}{self.blocks:,} blocks of {self.block_size}")
        if self.duplicates_removed:
            text += f"; {self.duplicates_removed} duplicate documents removed"
        if self.train_blocks or self.validation_blocks:
            text += f"; {self.train_blocks} for training, {self.validation_blocks} held out"
        return text + "."


def find_files(paths: list[str] | list[Path]) -> list[Path]:
    """The corpus files: named files as given, folders searched recursively for known file types."""
    if not paths:
        raise BadDataset("No corpus was chosen; choose one or more text files or a folder.", field="corpus")
    found: list[Path] = []
    for item in paths:
        p = Path(item).expanduser()
        if p.is_dir():
            inside = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in CORPUS_SUFFIXES
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not inside:
                raise BadDataset(f"The folder {p} holds no text files ({', '.join(CORPUS_SUFFIXES)}).",
                                 field="corpus")
            found.extend(inside)
        elif p.exists():
            found.append(p)
        else:
            raise BadDataset(f"The corpus file {p} does not exist.", field="corpus")
    return found


def _table_documents(path: Path, column: str) -> list[str]:
    records = read_records(path)
    if column not in records.columns:
        raise BadDataset(f"{path} has no column '{column}' (columns: {', '.join(records.columns[:12])}).",
                         "Set the text column to the column that holds the text.", field="text_column")
    docs = []
    for row, where in zip(records.rows, records.where):
        value = row.get(column)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadDataset(f"{path}, {where}: field '{column}' is a {type(value).__name__}; expected text.",
                             field="text_column")
        if value.strip():
            docs.append(value)
    return docs


def split_text(text: str, how: str = "blank_line") -> list[str]:
    """The documents of one plain text. Whitespace-only lines count as blank; a document keeps its own
    line breaks (CRLF included) and indentation, only the break that ends its last line is dropped."""
    if how == "file":
        return [text] if text.strip() else []
    lines = text.split("\n")
    if how == "line":
        return [line.removesuffix("\r") for line in lines if line.strip()]
    if how != "blank_line":
        raise BadConfig(f"Field 'document_split' has the value {how!r}; expected one of "
                        f"{', '.join(DOCUMENT_SPLITS)}.", field="document_split")
    docs, current = [], []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            docs.append("\n".join(current).removesuffix("\r"))
            current = []
    if current:
        docs.append("\n".join(current).removesuffix("\r"))
    return docs


def is_table(path: Path) -> bool:
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def read_documents(path: Path, text_column: str = "text", document_split: str = "blank_line") -> list[str]:
    path = Path(path)
    if is_table(path):
        return _table_documents(path, text_column)
    text = read_text(path)  # names the file for empty, binary, UTF-16 and non-UTF-8 files
    return split_text(text, document_split)


def load_corpus(paths, text_column: str = "text", dedupe: bool = True,
                document_split: str = "blank_line") -> Corpus:
    """Every document of the corpus, in file order, exact duplicates removed if asked."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = find_files(list(paths))
    docs: list[str] = []
    for f in files:
        docs.extend(read_documents(f, text_column, document_split))
    removed = 0
    if dedupe:
        seen: set[bytes] = set()
        unique = []
        for d in docs:
            key = hashlib.blake2b(d.encode("utf-8"), digest_size=16).digest()
            if key not in seen:
                seen.add(key)
                unique.append(d)
        removed = len(docs) - len(unique)
        docs = unique
    corpus = Corpus(documents=docs, files=files, duplicates_removed=removed, document_split=document_split,
                    text_files=sum(1 for f in files if not is_table(f)))
    if not docs:
        raise BadDataset(f"The corpus ({corpus.describe_files()}) holds no text: every file or row is empty.",
                         field="corpus")
    return corpus


def estimate_summary(corpus: Corpus, block_size: int, chars_per_token: float = 4.0) -> CorpusSummary:
    """A quick summary before any tokenizer exists: tokens guessed from the characters."""
    tokens = int(corpus.characters / chars_per_token) + len(corpus.documents)
    return CorpusSummary(files=len(corpus.files), documents=len(corpus.documents),
                         duplicates_removed=corpus.duplicates_removed, characters=corpus.characters,
                         tokens=tokens, blocks=tokens // block_size, block_size=block_size, estimated=True,
                         sources=[str(p) for p in corpus.files[:20]], document_split=_split_said(corpus))


def _split_said(corpus: Corpus) -> str:
    return corpus.document_split if corpus.text_files else ""


@dataclass
class Packed:
    """Blocks of token ids (all exactly block_size long) and, for whole-word masking, each token's word
    number within its block (-1 for special tokens)."""

    input_ids: list[list[int]]
    word_ids: list[list[int]] | None
    summary: CorpusSummary


def _word_starts(encoding) -> list[bool]:
    starts, prev = [], None
    for w in encoding.word_ids:
        starts.append(w is None or w != prev)
        prev = w
    return starts


def pack(corpus: Corpus, tokenizer, block_size: int, *, whole_words: bool = False, wrap_specials: bool = False,
         progress=None, batch: int = 256) -> Packed:
    """Tokenize every document, join them with the end-of-text token and cut into full blocks.

    wrap_specials puts the tokenizer's [CLS] first and [SEP] last in each block (BERT-style encoders);
    documents are then separated by [SEP] when the tokenizer has no end-of-text token.
    """
    sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if sep is None:
        raise BadDataset("The tokenizer has neither an end-of-text nor a separator token to join documents.")
    cls_id, end_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    wrap = wrap_specials and cls_id is not None and end_id is not None
    content = block_size - 2 if wrap else block_size
    if content < 1:
        raise BadDataset(f"Field 'block_size' ({block_size}) leaves no room for text.", field="block_size")
    stream: list[int] = []
    starts: list[bool] = []
    docs = corpus.documents
    for i in range(0, len(docs), batch):
        enc = tokenizer(docs[i:i + batch], add_special_tokens=False, verbose=False)
        for j, ids in enumerate(enc["input_ids"]):
            stream.extend(ids)
            stream.append(sep)
            if whole_words:
                starts.extend(_word_starts(enc[j]))
                starts.append(True)
        if progress:
            progress(min(1.0, (i + batch) / len(docs)))
    n_blocks = len(stream) // content
    if n_blocks < 1:
        raise BadDataset(f"The corpus ({corpus.describe_files()}) has {len(stream)} tokens, fewer than one block "
                         f"of {block_size} tokens.", "Add more text or lower the block size.", field="corpus")
    blocks, words = [], [] if whole_words else None
    special = set(tokenizer.all_special_ids)
    for b in range(n_blocks):
        ids = stream[b * content:(b + 1) * content]
        if wrap:
            ids = [cls_id] + ids + [end_id]
        blocks.append(ids)
        if whole_words:
            flags = starts[b * content:(b + 1) * content]
            if wrap:
                flags = [True] + flags + [True]
            n, row = -1, []
            for tok, start in zip(ids, flags):
                if tok in special:
                    row.append(-1)
                    continue
                if start or n < 0:
                    n += 1
                row.append(n)
            words.append(row)
    summary = CorpusSummary(files=len(corpus.files), documents=len(docs), duplicates_removed=corpus.duplicates_removed,
                            characters=corpus.characters, tokens=len(stream), blocks=n_blocks, block_size=block_size,
                            dropped_tokens=len(stream) - n_blocks * content,
                            sources=[str(p) for p in corpus.files[:20]], document_split=_split_said(corpus))
    return Packed(input_ids=blocks, word_ids=words, summary=summary)


def split(packed: Packed, fraction: float, seed: int = 42) -> tuple[list[int], list[int]]:
    """Indices of training and held-out blocks: a seeded random `fraction` of the blocks (at least one
    when there are two or more blocks and the fraction is above zero)."""
    n = len(packed.input_ids)
    if fraction <= 0 or n < 2:
        train, val = list(range(n)), []
    else:
        order = list(range(n))
        random.Random(seed).shuffle(order)
        n_val = min(n - 1, max(1, round(n * fraction)))
        val, train = sorted(order[:n_val]), sorted(order[n_val:])
    packed.summary.train_blocks, packed.summary.validation_blocks = len(train), len(val)
    return train, val
