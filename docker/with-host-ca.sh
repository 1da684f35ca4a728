#!/bin/sh
# Run "$@" trusting docker/certs/ca-bundle.crt when the build context has one (build_image.sh puts the
# host's bundle there: TLS to PyPI may pass a proxy whose CA only the host trusts). Without it, the
# base image's own CA store is used, as for any build with direct hub/PyPI access.
CA=/tmp/build/certs/ca-bundle.crt
if [ -f "$CA" ]; then
    export PIP_CERT="$CA" REQUESTS_CA_BUNDLE="$CA" SSL_CERT_FILE="$CA"
fi
exec "$@"
