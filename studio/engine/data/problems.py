"""The exception for one unusable row, shared by the format converters (formats, content_parts, tools)."""


class RowProblem(ValueError):
    """A problem with one row: the row is dropped and counted, not fatal. The message is the reason shown
    (rows with the same reason are counted together), so it names the field but not the row."""
