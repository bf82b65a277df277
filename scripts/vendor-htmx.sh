#!/usr/bin/env bash
# Vendors htmx from the npm registry into the package (no CDN at run time). Usage:
#   scripts/vendor-htmx.sh 2.0.8
set -euo pipefail
version=${1:?htmx version, e.g. 2.0.8}
work=$(mktemp -d)
(cd "$work" && npm pack "htmx.org@$version" --silent >/dev/null && tar xzf htmx.org-*.tgz)
cp "$work/package/dist/htmx.min.js" "$(dirname "$0")/../src/convohook/web/static/htmx.min.js"
echo "htmx $version vendored"
