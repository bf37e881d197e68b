#!/usr/bin/env bash
# Build the Adapt Studio desktop app (PyInstaller, one folder) into dist/adapt-studio/.
#
#   packaging/build.sh                   # clean venv in build/venv: pip install . + pyinstaller, then build
#                                        # (torch from PyPI: on Linux x86_64 that is a CUDA 12 build)
#   packaging/build.sh --current-env     # use the Python that is active now (it must have the project installed)
#   packaging/build.sh --cuda cu128      # clean venv with torch from the CUDA 12.8 wheel index
#   packaging/build.sh --cpu             # clean venv with the CPU-only torch wheel (smaller: ~1 GB less)
#
# The bundle carries the torch that is installed in the build environment. Users with an NVIDIA GPU
# need a CUDA build; a CPU build on a GPU machine trains on the CPU and the app warns about it.
# Prints the size and the build time; writes dist/adapt-studio/BUILD_INFO.txt (torch version and
# whether it is CPU or CUDA), also inside the bundle at _internal/BUILD_INFO.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
MODE=venv
TORCH_INDEX=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --current-env) MODE=current ;;
        --cuda) TORCH_INDEX="https://download.pytorch.org/whl/$2"; shift ;;
        --cpu) TORCH_INDEX="https://download.pytorch.org/whl/cpu" ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

start=$(date +%s)
if [[ $MODE == venv ]]; then
    VENV="$ROOT/build/venv"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    PY="$VENV/bin/python"
    "$PY" -m pip install --upgrade pip wheel
    if [[ -n "$TORCH_INDEX" ]]; then
        "$PY" -m pip install torch --index-url "$TORCH_INDEX"
    fi
    "$PY" -m pip install "$ROOT" pyinstaller
else
    PY="$(command -v python)"
    "$PY" -c "import studio, PyInstaller" 2>/dev/null || "$PY" -m pip install pyinstaller
fi

if [[ ! -d "$ROOT/resources/starter-model" ]]; then
    echo "warning: resources/starter-model/ is missing; build it with: $PY tools/build_starter.py" >&2
fi
if [[ ! -f "$ROOT/resources/icons/256x256/adapt-studio.png" ]]; then
    QT_QPA_PLATFORM=offscreen "$PY" "$ROOT/packaging/make_icons.py"
fi

"$PY" -m PyInstaller --noconfirm --clean --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" \
    "$ROOT/packaging/adapt-studio.spec"

OUT="$ROOT/dist/adapt-studio"
cp "$OUT/_internal/BUILD_INFO.txt" "$OUT/BUILD_INFO.txt"
cp "$ROOT/packaging/linux/adapt-studio.desktop" "$OUT/adapt-studio.desktop"
cp "$ROOT/packaging/linux/install.sh" "$OUT/install.sh"
end=$(date +%s)
size=$(du -sh "$OUT" | cut -f1)
{
    echo "build time: $((end - start)) s"
    echo "bundle size: $size ($(du -sb "$OUT" | cut -f1) bytes)"
} | tee -a "$OUT/BUILD_INFO.txt"
echo
cat "$OUT/BUILD_INFO.txt"
if grep -q "^variant CPU" "$OUT/BUILD_INFO.txt"; then
    echo
    echo "NOTE: this bundle carries a CPU-only torch. For users with an NVIDIA GPU build with"
    echo "      packaging/build.sh --cuda cu128   (on a machine that can download the CUDA wheel)."
fi
echo
echo "built: $OUT/adapt-studio   (install: $OUT/install.sh $OUT)"
