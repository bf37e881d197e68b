#!/usr/bin/env bash
# Install a built Adapt Studio folder for the current user (no root needed).
#
#   packaging/linux/install.sh [BUILT_FOLDER]        # default: dist/adapt-studio
#   packaging/linux/install.sh --uninstall
#
# Copies the folder to ~/.local/opt/adapt-studio, links the binary as ~/.local/bin/adapt-studio,
# installs the .desktop entry into ~/.local/share/applications and the icons into
# ~/.local/share/icons/hicolor/NxN/apps (plus scalable/apps for the SVG).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
OPT="$HOME/.local/opt/adapt-studio"
BIN="$HOME/.local/bin"
SIZES="16 32 48 64 128 256 512"

if [[ "${1:-}" == "--uninstall" ]]; then
    rm -rf "$OPT" "$BIN/adapt-studio" "$DATA/applications/adapt-studio.desktop"
    for n in $SIZES; do rm -f "$DATA/icons/hicolor/${n}x${n}/apps/adapt-studio.png"; done
    rm -f "$DATA/icons/hicolor/scalable/apps/adapt-studio.svg"
    command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
    echo "Adapt Studio removed (your workspace with runs and adapters is kept)."
    exit 0
fi

SRC="$(cd "${1:-$ROOT/dist/adapt-studio}" && pwd)"
[[ -x "$SRC/adapt-studio" ]] || { echo "error: $SRC/adapt-studio not found; build first (packaging/build.sh)" >&2; exit 1; }
# Icons: from a checkout, or from the bundle's resources when installing a downloaded folder.
ICONS="$ROOT/resources/icons"
[[ -d "$ICONS/16x16" ]] || ICONS="$SRC/_internal/resources/icons"

mkdir -p "$(dirname "$OPT")" "$BIN" "$DATA/applications"
rm -rf "$OPT.new"
cp -a "$SRC" "$OPT.new"
rm -rf "$OPT"
mv "$OPT.new" "$OPT"
ln -sfn "$OPT/adapt-studio" "$BIN/adapt-studio"

for n in $SIZES; do
    install -Dm644 "$ICONS/${n}x${n}/adapt-studio.png" "$DATA/icons/hicolor/${n}x${n}/apps/adapt-studio.png"
done
install -Dm644 "$ICONS/adapt-studio.svg" "$DATA/icons/hicolor/scalable/apps/adapt-studio.svg"

# The desktop entry with an absolute Exec, so it works even when ~/.local/bin is not on PATH.
DESKTOP_SRC="$HERE/adapt-studio.desktop"
[[ -f "$DESKTOP_SRC" ]] || DESKTOP_SRC="$SRC/adapt-studio.desktop"
sed -e "s|^Exec=adapt-studio|Exec=$OPT/adapt-studio|" -e "s|^TryExec=adapt-studio|TryExec=$OPT/adapt-studio|" \
    "$DESKTOP_SRC" > "$DATA/applications/adapt-studio.desktop"
chmod 644 "$DATA/applications/adapt-studio.desktop"

command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true

echo "Installed to $OPT"
echo "  menu entry: $DATA/applications/adapt-studio.desktop"
echo "  command:    $BIN/adapt-studio   (add ~/.local/bin to PATH if it is not)"
