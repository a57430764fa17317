#!/usr/bin/env bash
# Vendors the web page's third-party code (`make web`): tus-js-client's own browser build,
# exactly the version package-lock.json pins (npm ci checks the tarball's integrity), copied
# into gateway_service/web/vendor/ with its licence. The result is committed; vendor.sha256
# records it, and gateway/tests/test_webpage.py checks that what is committed is that.
# Needs node and npm (the npm registry) only when run; the page needs neither.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
target=../gateway_service/web/vendor
mkdir -p "$target"
cp node_modules/tus-js-client/dist/tus.min.js "$target/tus.min.js"
cp node_modules/tus-js-client/LICENSE "$target/tus-js-client.LICENSE"
(cd "$target" && sha256sum tus.min.js tus-js-client.LICENSE) >vendor.sha256
echo "vendored tus-js-client $(node -p 'require("./node_modules/tus-js-client/package.json").version') into gateway/gateway_service/web/vendor/"
