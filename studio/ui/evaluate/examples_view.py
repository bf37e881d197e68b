"""The per-example answers of an evaluation (examples.jsonl): input, reference and each candidate's answer,
marked right or wrong; sortable, searchable, and with the examples where the candidates disagree first.

A model and a sort/filter proxy (not a QTableWidget), so a held-out file of thousands of rows stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRegularExpression, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView,
                               QVBoxLayout, QWidget)

SORT_ROLE = Qt.ItemDataRole.UserRole
RIGHT, WRONG = QColor(216, 240, 210), QColor(250, 220, 216)
RIGHT_MARK, WRONG_MARK = "✔", "✘"
AGREEMENT_WORDS = {0: "disagree", 1: "all wrong", 2: "all right", 3: ""}
FIXED_COLUMNS = ["#", "Candidates", "Input", "Reference"]
CELL_CHARS = 400  # a cell shows the start of a long text; the tooltip has all of it


def _one_line(text: str) -> str:
    text = " ⏎ ".join(str(text).splitlines())
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"


@dataclass
class ExampleRow:
    index: int
    where: str
    input: str
    reference: str
    answers: dict  # candidate id -> {"answer", "correct", "score", "generated"}
    agreement: int  # 0 disagree, 1 all wrong, 2 all right, 3 nothing to compare
    rejected: str | None = None  # preference pairs: the rejected reply (the reference is the chosen one)

    @property
    def reference_details(self) -> str:
        if self.rejected is None:
            return self.reference
        return f"Chosen: {self.reference}\n\nRejected: {self.rejected}"

    @property
    def disagree(self) -> bool:
        return self.agreement == 0


def agreement(answers: dict, ids: list[str]) -> int:
    """0 when the candidates' correctness differs (someone is right where another is wrong), 1 when all are
    wrong, 2 when all are right, 3 when there is no correctness to compare (perplexity, unscored)."""
    marks = {answers[i].get("correct") for i in ids if isinstance(answers.get(i), dict)} - {None}
    if len(marks) > 1:
        return 0
    if marks == {False}:
        return 1
    if marks == {True}:
        return 2
    return 3


class ExamplesModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[ExampleRow] = []
        self.candidates: list[tuple[str, str]] = []  # (id, label), in the results' order

    def set_data(self, rows: list[dict], candidates: list[dict]) -> None:
        self.beginResetModel()
        self.candidates = [(str(c.get("id")), str(c.get("label") or c.get("id"))) for c in candidates if c.get("id")]
        ids = [cid for cid, _ in self.candidates]
        self.rows = []
        for n, row in enumerate(rows):
            answers = row.get("answers") if isinstance(row.get("answers"), dict) else {}
            index = row.get("index") if isinstance(row.get("index"), int) else n
            rejected = str(row["rejected"]) if row.get("rejected") is not None else None
            self.rows.append(ExampleRow(index, str(row.get("where") or ""), str(row.get("input") or ""),
                                        str(row.get("reference") or ""), answers, agreement(answers, ids), rejected))
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(FIXED_COLUMNS) + len(self.candidates)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or section >= self.columnCount():
            return None
        label = FIXED_COLUMNS[section] if section < len(FIXED_COLUMNS) else \
            self.candidates[section - len(FIXED_COLUMNS)][1]
        if role == Qt.ItemDataRole.DisplayRole:
            return label
        if role == Qt.ItemDataRole.ToolTipRole:
            if section == 1:
                return "Whether the candidates agree: 'disagree' where one is right and another wrong."
            return label
        return None

    def answer(self, row: ExampleRow, column: int) -> dict:
        cid = self.candidates[column - len(FIXED_COLUMNS)][0]
        value = row.answers.get(cid)
        return value if isinstance(value, dict) else {}

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], index.column()
        if column >= len(FIXED_COLUMNS):
            return self._answer_data(row, self.answer(row, column), role)
        if role == Qt.ItemDataRole.DisplayRole:
            return [str(row.index + 1), AGREEMENT_WORDS[row.agreement], _one_line(row.input),
                    _one_line(row.reference)][column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return [row.where, None, row.input, row.reference_details][column]
        if role == SORT_ROLE:
            return [float(row.index), float(row.agreement * 1e9 + row.index), row.input.casefold(),
                    row.reference.casefold()][column]
        if role == Qt.ItemDataRole.ForegroundRole and column == 1 and row.disagree:
            return QColor(160, 80, 0)
        return None

    @staticmethod
    def _answer_data(row: ExampleRow, answer: dict, role):
        correct, score = answer.get("correct"), answer.get("score")
        text = str(answer.get("answer") if answer.get("answer") is not None else "")
        if role == Qt.ItemDataRole.DisplayRole:
            if not answer:
                return "–"
            mark = {True: RIGHT_MARK + " ", False: WRONG_MARK + " "}.get(correct, "")
            if not text and isinstance(score, (int, float)):
                return f"{score:.2f}"
            return mark + _one_line(text)
        if role == Qt.ItemDataRole.BackgroundRole:
            return {True: RIGHT, False: WRONG}.get(correct)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [text] if text else []
            if answer.get("generated") not in (None, "", text):
                lines.append(f"Generated: {answer['generated']}")
            if isinstance(answer.get("chosen_logprob"), (int, float)) and \
                    isinstance(answer.get("rejected_logprob"), (int, float)):
                lines.append(f"Log-probability per token: chosen {answer['chosen_logprob']:.3f}, rejected "
                             f"{answer['rejected_logprob']:.3f}")
            elif isinstance(score, (int, float)):
                lines.append(f"Score: {score:.4g}")
            if correct is not None:
                lines.append("Right" if correct else "Wrong")
            return "\n".join(lines) or None
        if role == SORT_ROLE:
            if not text and isinstance(score, (int, float)):
                return f"{score:020.6f}|{row.index:09d}"
            rank = {True: 0, False: 1}.get(correct, 2)
            # Then the better token F1 first (generation), then the text.
            closeness = f"{1 - score:.6f}" if isinstance(score, (int, float)) and 0 <= score <= 1 else "9"
            return f"{rank}|{closeness}|{text.casefold()}|{row.index:09d}"
        return None


class ExamplesProxy(QSortFilterProxyModel):
    """Sorts by each column's sort key; keeps only disagreements when asked; finds text in any column."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.disagreements_only = False
        self.setSortRole(SORT_ROLE)
        self.setFilterKeyColumn(-1)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_disagreements_only(self, on: bool) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10 and later (invalidateFilter is deprecated there)
            self.beginFilterChange()
            self.disagreements_only = on
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.disagreements_only = on
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802
        if self.disagreements_only and not self.sourceModel().rows[source_row].disagree:
            return False
        return super().filterAcceptsRow(source_row, source_parent)


class ExamplesView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ExamplesModel(self)
        self.proxy = ExamplesProxy(self)
        self.proxy.setSourceModel(self.model)
        self.summary = QLabel("Each held-out example with every candidate's answer appears here after an "
                              "evaluation.")
        self.summary.setWordWrap(True)
        self.only_disagreements = QCheckBox("Only disagreements")
        self.only_disagreements.setToolTip("Show only the examples where one candidate is right and another wrong")
        self.only_disagreements.toggled.connect(self.proxy.set_disagreements_only)
        self.find = QLineEdit()
        self.find.setPlaceholderText("Find…")
        self.find.setClearButtonEnabled(True)
        self.find.setToolTip("Show only the examples with this text in the input, the reference or an answer")
        self.find.textChanged.connect(self._find)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self._user_sorted = False  # until a column title is clicked, the disagreements come first
        self.table.horizontalHeader().sectionClicked.connect(self._sorted_by_user)
        bar = QHBoxLayout()
        bar.addWidget(self.only_disagreements)
        bar.addWidget(self.find, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

    def set_examples(self, rows: list[dict], candidates: list[dict]) -> None:
        """Show examples.jsonl's rows for these candidates (results.json's), disagreements first."""
        header = self.table.horizontalHeader()
        column, order = header.sortIndicatorSection(), header.sortIndicatorOrder()
        self.model.set_data(rows, candidates)
        if not self._user_sorted or column >= self.model.columnCount():
            column, order = 1, Qt.SortOrder.AscendingOrder  # disagreements first, then in file order
        self.table.sortByColumn(column, order)
        widths = [48, 80, 240, 160] + [170] * len(self.model.candidates)
        for i, width in enumerate(widths):
            self.table.setColumnWidth(i, width)
        differ = sum(r.disagree for r in self.model.rows)
        if not rows:
            self.summary.setText("No per-example answers saved yet.")
        else:
            self.summary.setText(f"{len(rows):,} examples; the candidates disagree on {differ:,} of them (shown "
                                 f"first). Green: right, red: wrong. Click a column title to sort.")

    def _sorted_by_user(self, *_) -> None:
        self._user_sorted = True

    def clear(self) -> None:
        self.model.set_data([], [])
        self.summary.setText("Each held-out example with every candidate's answer appears here after an evaluation.")

    def _find(self, text: str) -> None:
        self.proxy.setFilterRegularExpression(QRegularExpression(QRegularExpression.escape(text),
                                                                 QRegularExpression.PatternOption.CaseInsensitiveOption))

    # -- reading (tests, and anything that wants what is shown) ----------------------------------
    def shown_rows(self) -> list[ExampleRow]:
        """The examples in the order they are shown (after sorting and filtering)."""
        return [self.model.rows[self.proxy.mapToSource(self.proxy.index(r, 0)).row()]
                for r in range(self.proxy.rowCount())]

    def cell_text(self, row: int, column: int) -> str:
        return self.proxy.index(row, column).data() or ""
