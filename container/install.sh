#!/bin/sh
# The install steps of the container image, shared by the Dockerfile and CI's container-equivalent
# check (tests/acceptance/test_container_equivalent.py), so the two cannot drift apart.
#   install.sh deps PREFIX SRC   a venv at PREFIX with the pinned dependencies of SRC/requirements.lock
#   install.sh app PREFIX SRC    loyalsync itself from the sources in SRC (no dependency resolution)
set -eu
step=$1 prefix=$2 src=$3
case "$step" in
  deps)
    "${PYTHON:-python}" -m venv "$prefix"
    "$prefix/bin/pip" install --disable-pip-version-check --require-hashes -r "$src/requirements.lock"
    ;;
  app)
    "$prefix/bin/pip" install --disable-pip-version-check --no-deps "$src"
    ;;
  *)
    echo "usage: install.sh deps|app PREFIX SRC" >&2
    exit 2
    ;;
esac
