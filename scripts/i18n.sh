#!/usr/bin/env bash
# Translation catalogs (translations/<lang>/LC_MESSAGES/messages.po).
#   scripts/i18n.sh update        extract the strings into messages.pot and merge them into every .po
#   scripts/i18n.sh compile       compile the .po files into the .mo files the app reads
#   scripts/i18n.sh init LANG     start the catalog of a new language
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-$( [ -x .venv/bin/pybabel ] && echo .venv/bin/pybabel || echo pybabel )}"

case "${1:-}" in
  update)
    "$PYBABEL" extract -F babel.cfg -k _l -k N_ --no-location --sort-output \
      --project SegDash --copyright-holder SegDash -o translations/messages.pot \
      --ignore-dirs '.* _* .venv bench tests data node_modules test-artifacts' .
    "$PYBABEL" update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete
    ;;
  compile)
    "$PYBABEL" compile -d translations --statistics
    ;;
  init)
    "$PYBABEL" init -i translations/messages.pot -d translations -l "${2:?language code}"
    ;;
  *)
    echo "usage: $0 update | compile | init LANG" >&2
    exit 2
    ;;
esac
