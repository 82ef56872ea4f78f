#!/usr/bin/env sh
# Rewrites the ABI baseline abi/libresock.abi from the current source, deliberately: after
# functions were added, or after an incompatible change with RESOCK_ABI_VERSION and the
# soname bumped. Commit the result. (CI compares against it: scripts/abi.sh check.)
exec "$(dirname "$0")/abi.sh" baseline
