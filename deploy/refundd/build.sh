#!/usr/bin/env bash
# Builds the refundd image from this checkout without pulling anything: a static
# binary in an otherwise empty rootfs, imported with `docker import`.
#
#   refunds/refundd:<git short sha>  and  refunds/refundd:local
#
# Idempotent per commit: an image for this commit is not rebuilt (a dirty tree always
# is). Prints REFUNDD_IMAGE=<tag> on stdout; progress goes to stderr.
set -euo pipefail

readonly repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { printf '%s\n' "$*" >&2; }

cd "$repo_root"
rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git status --porcelain 2>/dev/null)" ]] || rev="$rev-dirty"
tag="refunds/refundd:$rev"

if [[ $rev != *-dirty ]] && docker image inspect "$tag" >/dev/null 2>&1; then
	log "$tag exists, skipping"
else
	arch="$(docker version --format '{{.Server.Arch}}')"
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	mkdir -p "$work/rootfs/tmp"
	chmod 1777 "$work/rootfs/tmp"
	log "building $tag ..."
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOFLAGS=-mod=readonly \
		go build -trimpath -ldflags='-s -w' -o "$work/rootfs/refundd" ./cmd/refundd
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOFLAGS=-mod=readonly \
		go build -trimpath -ldflags='-s -w' -o "$work/rootfs/refundctl" ./cmd/refundctl
	tar -C "$work/rootfs" --owner=0 --group=0 --numeric-owner -c . |
		docker import \
			--change 'ENTRYPOINT ["/refundd"]' \
			--change 'EXPOSE 8080' \
			--change 'USER 65534:65534' \
			--change "LABEL io.payinfra.refunds.revision=$rev" \
			- "$tag" >/dev/null
fi
docker tag "$tag" refunds/refundd:local
printf 'REFUNDD_IMAGE=%s\n' "$tag"
