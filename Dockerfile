# dislomob on a CPU machine (README "Container"):
#   with hub access:  docker build -t dislomob . && docker run --rm -v "$PWD":/work dislomob repro
#   without (local Debian base, local CPU torch wheel, host CA bundle):  docker/build_image.sh
# BASE: any Debian/Ubuntu image with python3 >= 3.11, python3 -m venv and apt (build_image.sh passes
# its debootstrap base dislomob-base:bookworm).
ARG BASE=python:3.11-slim

FROM ${BASE} AS runtime
# apt-get clean: update's package caches (/var/cache/apt/*.bin) are 80 MB otherwise.
RUN command -v make >/dev/null && command -v git >/dev/null \
 || { apt-get update && apt-get install -y --no-install-recommends make git \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; }
# The environment lives outside /work so that bind-mounting a checkout on /work keeps it.
ENV PATH=/opt/venv/bin:$PATH LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

FROM runtime AS build
# docker/wheels (local wheels, e.g. the CPU torch) and docker/certs (a CA bundle for pip) are empty in
# git; build_image.sh fills them. They stay in this stage: the final image copies only /opt/venv, /work.
COPY docker/ /tmp/build/
COPY constraints.txt /tmp/build/
# torch first, in its own cached layer: the pin is torch==2.13.0 (constraints.txt), which a local
# 2.13.0+cpu wheel satisfies; with no wheel here pip takes PyPI's (the CUDA build, several GB).
RUN python3 -m venv /opt/venv \
 && /tmp/build/with-host-ca.sh /opt/venv/bin/pip install -q --find-links /tmp/build/wheels \
        -c /tmp/build/constraints.txt torch
WORKDIR /work
COPY . /work
RUN PIP_FIND_LINKS=/tmp/build/wheels /tmp/build/with-host-ca.sh make venv VENV=/opt/venv \
 && rm -rf /work/docker/wheels/*.whl /work/docker/certs/*.crt

FROM runtime
COPY --from=build /opt/venv /opt/venv
COPY --from=build /work /work
# A bind-mounted checkout is owned by the host user, not the container's root: let git read it anyway
# (provenance tags, dvc).
RUN git config --system --add safe.directory '*'
WORKDIR /work
# `docker run IMAGE test-fast` = make test-fast with the image's environment. -o: never reinstall it
# (a bind-mounted checkout may have newer pyproject.toml/constraints.txt; rebuild the image instead).
ENTRYPOINT ["make", "VENV=/opt/venv", "-o", "/opt/venv/.installed"]
CMD ["repro"]
