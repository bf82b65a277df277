#!/usr/bin/env bash
# Vendors htmx and its server-sent-events extension from the npm registry into the package (no
# CDN at run time). Usage:
#   scripts/vendor-htmx.sh 2.0.8 2.2.4
set -euo pipefail
version=${1:?htmx version, e.g. 2.0.8}
sse_version=${2:?htmx-ext-sse version, e.g. 2.2.4}
static="$(cd "$(dirname "$0")/.." && pwd)/src/convohook/web/ui/static"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "htmx.org@$version" "htmx-ext-sse@$sse_version" --silent >/dev/null
mkdir htmx sse
tar xzf htmx.org-*.tgz -C htmx
tar xzf htmx-ext-sse-*.tgz -C sse
cp htmx/package/dist/htmx.min.js "$static/htmx.min.js"
cp sse/package/dist/sse.min.js "$static/htmx-ext-sse.min.js"
echo "htmx $version and htmx-ext-sse $sse_version vendored into $static"
