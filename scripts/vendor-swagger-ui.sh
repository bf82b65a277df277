#!/usr/bin/env bash
# Vendors Swagger UI (swagger-ui-dist) from the npm registry into the package, for /api/docs:
# the interactive documentation then loads nothing from a CDN and works with no network.
# Usage:
#   scripts/vendor-swagger-ui.sh 5.35.0
set -euo pipefail
version=${1:?swagger-ui-dist version, e.g. 5.35.0}
static="$(cd "$(dirname "$0")/.." && pwd)/src/convohook/web/api/static/swagger-ui"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "swagger-ui-dist@$version" --silent >/dev/null
tar xzf swagger-ui-dist-*.tgz
mkdir -p "$static"
rm -f "$static"/*
# The bundle (everything /api/docs needs in one script), its stylesheet and icon, and the
# licences that come with them (Apache-2.0, and those of what the bundle includes).
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
    favicon-32x32.png LICENSE NOTICE; do
    cp "package/$file" "$static/$file"
done
echo "$version" >"$static/VERSION"
echo "swagger-ui-dist $version vendored into $static"
