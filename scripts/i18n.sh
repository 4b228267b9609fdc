#!/usr/bin/env bash
# Translation catalogs (translations/<lang>/LC_MESSAGES/messages.po).
#   scripts/i18n.sh update        extract the strings into messages.pot and merge them into every .po
#   scripts/i18n.sh compile       compile the .po files into the .mo files the app reads
#   scripts/i18n.sh init LANG     start the catalog of a new language
#   scripts/i18n.sh extract FILE  only extract the strings, into FILE (tests/test_i18n.py uses it)
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-$( [ -x .venv/bin/pybabel ] && echo .venv/bin/pybabel || echo pybabel )}"

extract() {
  "$PYBABEL" -q extract -F babel.cfg -k _l -k N_ --no-location --sort-output \
    --project SegDash --copyright-holder SegDash -o "$1" \
    --ignore-dirs '.* _* bench tests data node_modules test-artifacts' .
}

case "${1:-}" in
  extract)
    extract "${2:?output file}"
    ;;
  update)
    extract translations/messages.pot
    "$PYBABEL" update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete
    ;;
  compile)
    "$PYBABEL" compile -d translations --statistics
    ;;
  init)
    "$PYBABEL" init -i translations/messages.pot -d translations -l "${2:?language code}"
    ;;
  *)
    echo "usage: $0 update | compile | init LANG | extract FILE" >&2
    exit 2
    ;;
esac
