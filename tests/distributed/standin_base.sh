#!/bin/sh
# A stand-in for the python:3.11-slim-bookworm base image where no container registry can be reached (only the
# Debian mirror): Debian bookworm's minimal system with its Python 3.11 and pip, laid out as the official image
# is used by our Dockerfile (python and pip on PATH, pip allowed to install into the system, the C headers that
# inductor compiles against, as the official image has). Needs root,
# debootstrap and podman (or docker). Usage: sh tests/distributed/standin_base.sh [engine] [tag]
set -eu
ENGINE=${1:-podman}
TAG=${2:-docker.io/library/python:3.11-slim-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTFS=$(mktemp -d /var/tmp/standin-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3,python3-dev,python3-pip,python3-venv,ca-certificates bookworm "$ROOTFS" "$MIRROR"
ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python"
ln -sf /usr/bin/pip3 "$ROOTFS/usr/local/bin/pip"
rm -f "$ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
tar -C "$ROOTFS" -c . | $ENGINE import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' - "$TAG"
