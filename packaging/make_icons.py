"""Render resources/icons/adapt-studio.svg to the PNG sizes desktops ask for, plus .ico and .icns.

    QT_QPA_PLATFORM=offscreen python packaging/make_icons.py

Writes resources/icons/NxN/adapt-studio.png for N in SIZES (the freedesktop hicolor layout, so the
folder can be copied to ~/.local/share/icons/hicolor/ as is), resources/icons/adapt-studio.ico
(Windows: 16-256, PNG-compressed entries, which Windows Vista and later read) and
resources/icons/adapt-studio.icns (macOS: PNG-based icp4/icp5/icp6/ic07/ic08/ic09 entries).
Both container formats are written by hand here, so no Pillow or iconutil is needed.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

SIZES = (16, 32, 48, 64, 128, 256, 512)
ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SVG = ICONS / "adapt-studio.svg"
NAME = "adapt-studio"


def render_png(size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def write_ico(pngs: dict[int, bytes], path: Path) -> None:
    sizes = [s for s in sorted(pngs) if s <= 256]
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        blob = pngs[s]
        dim = 0 if s == 256 else s  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(blob), offset + len(blobs))
        blobs += blob
    path.write_bytes(header + entries + blobs)


ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def write_icns(pngs: dict[int, bytes], path: Path) -> None:
    body = b""
    for size, kind in ICNS_TYPES.items():
        if size in pngs:
            body += kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
    path.write_bytes(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - QImage/SVG need it
    pngs = {}
    for size in SIZES:
        pngs[size] = render_png(size)
        out = ICONS / f"{size}x{size}" / f"{NAME}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(pngs[size])
        print(out.relative_to(ICONS.parent.parent), len(pngs[size]), "bytes")
    write_ico(pngs, ICONS / f"{NAME}.ico")
    write_icns(pngs, ICONS / f"{NAME}.icns")
    print("resources/icons/adapt-studio.ico, resources/icons/adapt-studio.icns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
