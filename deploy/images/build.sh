#!/usr/bin/env bash
# Builds the images the integration tests run, without pulling anything: the test
# machines have Docker but no registry, so each image is a rootfs tarball assembled
# here and turned into an image with `docker import`.
#
#   refunds-test/nats:<v>   nats-server built from the module version pinned in go.mod
#   refunds-test/redis:<v>  Debian's redis-server (apt-get download + its shared libraries)
#
# Usage:
#   deploy/images/build.sh               build whichever image is missing, then print tags
#   deploy/images/build.sh --print-tags  print the tags only; builds nothing
#
# Output contract (deploy/testenv relies on it): stdout carries only the lines
#   NATS_IMAGE=refunds-test/nats:<version>
#   REDIS_IMAGE=refunds-test/redis:<version>
# and all progress goes to stderr.
#
# Idempotent: an image whose tag already exists is never rebuilt; delete it
# (`docker image rm`) to force a rebuild. Concurrent callers (several `go test`
# packages) serialise on a flock in deploy/images/.build/, which is git-ignored.
#
# Needs: bash, flock, go, docker, and apt-get/dpkg-deb/ldd from a Debian host whose
# architecture matches the Docker daemon's.
set -euo pipefail

readonly script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly repo_root="$(cd "$script_dir/../.." && pwd)"
readonly build_dir="$script_dir/.build"

log() { printf '%s\n' "$*" >&2; }
die() { log "build.sh: $*"; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

print_tags_only=false
case "${1:-}" in
"") ;;
--print-tags) print_tags_only=true ;;
-h | --help) usage; exit 0 ;;
*) usage; exit 2 ;;
esac

mkdir -p "$build_dir"
# Everything below (tag lookup included, since it may run apt-get update) happens
# under the lock, so a second caller sees the first one's finished images.
exec 9>"$build_dir/lock"
if ! flock -n 9; then
	log "waiting for another build.sh to finish ..."
	flock 9
fi

as_root() { [[ $(id -u) -eq 0 ]]; }

# apt_get runs apt-get without its _apt sandbox when we are root: the sandbox user
# cannot write into our build directory and apt would only warn about it anyway.
apt_get() {
	if as_root; then
		apt-get -o APT::Sandbox::User=root "$@"
	else
		apt-get "$@"
	fi
}

apt_updated=false
apt_update_once() {
	$apt_updated && return 1
	as_root || return 1
	log "refreshing apt package lists ..."
	apt-get update -qq >&2 || return 1
	apt_updated=true
}

nats_module_version() {
	(cd "$repo_root" && GOFLAGS=-mod=readonly GOWORK=off \
		go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
}

# redis_deb_version prints the full Debian version apt would install, e.g.
# 5:7.0.15-1~deb12u10.
redis_deb_version() {
	local candidate
	candidate="$(apt-cache policy redis-server 2>/dev/null | awk '/Candidate:/ {print $2}')"
	if [[ -z $candidate || $candidate == "(none)" ]] && apt_update_once; then
		candidate="$(apt-cache policy redis-server 2>/dev/null | awk '/Candidate:/ {print $2}')"
	fi
	[[ -n $candidate && $candidate != "(none)" ]] ||
		die "apt knows no redis-server package (run apt-get update as root)"
	printf '%s\n' "$candidate"
}

# upstream_version strips the Debian epoch and revision: 5:7.0.15-1~deb12u10 -> 7.0.15.
upstream_version() {
	local v="${1#*:}"
	printf '%s\n' "${v%%-*}"
}

nats_version="$(nats_module_version)"
redis_deb="$(redis_deb_version)"
nats_image="refunds-test/nats:${nats_version#v}"
redis_image="refunds-test/redis:$(upstream_version "$redis_deb")"

print_tags() {
	printf 'NATS_IMAGE=%s\nREDIS_IMAGE=%s\n' "$nats_image" "$redis_image"
}

if $print_tags_only; then
	print_tags
	exit 0
fi

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

work="$(mktemp -d "$build_dir/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

docker_arch="$(docker version --format '{{.Server.Arch}}')" ||
	die "cannot reach the Docker daemon"

# import_rootfs turns a directory into an image; the remaining arguments are
# `docker import --change` instructions. Ownership is normalised to root so the
# image does not depend on who ran the build.
import_rootfs() {
	local rootfs="$1" tag="$2"
	shift 2
	local changes=()
	local change
	for change in "$@"; do
		changes+=(--change "$change")
	done
	tar -C "$rootfs" --owner=0 --group=0 --numeric-owner -c . |
		docker import "${changes[@]}" - "$tag" >/dev/null
}

verify_image() {
	local tag="$1" out
	out="$(docker run --rm "$tag" --version 2>&1)" ||
		die "$tag does not run: $out"
	log "  $tag --version: $out"
}

build_nats() {
	local rootfs="$work/nats-rootfs"
	mkdir -p "$rootfs/data" "$rootfs/tmp"
	chmod 1777 "$rootfs/tmp"
	# Static (no cgo) so the rootfs needs nothing but the binary. -mod=readonly
	# guarantees the build uses go.mod/go.sum as they are and never edits them.
	(cd "$repo_root" && CGO_ENABLED=0 GOOS=linux GOARCH="$docker_arch" \
		GOFLAGS=-mod=readonly GOWORK=off \
		go build -trimpath -ldflags='-s -w' -o "$rootfs/nats-server" \
		github.com/nats-io/nats-server/v2)
	import_rootfs "$rootfs" "$nats_image" \
		'ENTRYPOINT ["/nats-server"]' \
		'CMD ["--jetstream","--store_dir","/data"]' \
		'EXPOSE 4222' \
		"LABEL io.payinfra.refunds.source=github.com/nats-io/nats-server/v2@$nats_version"
}

# The real redis binary is /usr/bin/redis-check-rdb in redis-tools; redis-server's
# /usr/bin/redis-server is a symlink to it (redis picks its mode from argv[0]).
# libjemalloc2 and liblzf1 are the dependencies a host without redis usually lacks;
# the remaining libraries are taken from the host, and ldd below fails loudly if
# anything is still missing.
readonly redis_packages=(redis-server redis-tools libjemalloc2 liblzf1)

download_redis_debs() {
	local dir="$1"
	local packages=("redis-server=$redis_deb" "redis-tools=$redis_deb" "${redis_packages[@]:2}")
	(cd "$dir" && apt_get download -q "${packages[@]}" >&2)
}

build_redis() {
	local debs="$work/debs" extracted="$work/redis-extracted" rootfs="$work/redis-rootfs"
	mkdir -p "$debs" "$extracted" "$rootfs/data" "$rootfs/tmp" "$rootfs/usr/bin"
	chmod 1777 "$rootfs/tmp"

	if ! download_redis_debs "$debs"; then
		# Stale package lists point at versions the mirror no longer has.
		apt_update_once || die "apt-get download failed (run apt-get update as root)"
		redis_deb="$(redis_deb_version)"
		local refreshed="refunds-test/redis:$(upstream_version "$redis_deb")"
		if [[ $refreshed != "$redis_image" ]]; then
			log "  apt now offers $redis_deb, building $refreshed instead"
			redis_image="$refreshed"
			if image_exists "$redis_image"; then
				return 0
			fi
		fi
		download_redis_debs "$debs" || die "apt-get download failed"
	fi

	local deb
	for deb in "$debs"/*.deb; do
		dpkg-deb -x "$deb" "$extracted"
	done
	local binary="$extracted/usr/bin/redis-check-rdb"
	[[ -f $binary && ! -L $binary ]] || die "no redis binary in ${redis_packages[*]}"
	cp "$binary" "$rootfs/usr/bin/redis-server"

	local lib_path="" dir
	for dir in "$extracted"/usr/lib/*-linux-gnu "$extracted"/lib/*-linux-gnu; do
		[[ -d $dir ]] && lib_path="$lib_path${lib_path:+:}$dir"
	done

	local ldd_out
	ldd_out="$(LD_LIBRARY_PATH="$lib_path" ldd "$binary")" || die "ldd $binary failed"
	if grep -q 'not found' <<<"$ldd_out"; then
		die "libraries missing for redis-server:"$'\n'"$(grep 'not found' <<<"$ldd_out")"
	fi
	# Lines look like "libfoo.so.1 => /path/libfoo.so.1 (0x...)" or, for the dynamic
	# loader, "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
	local lib target
	while read -r lib; do
		target="${lib#"$extracted"}"
		mkdir -p "$rootfs$(dirname "$target")"
		cp -L "$lib" "$rootfs$target"
	done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$ldd_out")

	import_rootfs "$rootfs" "$redis_image" \
		'ENTRYPOINT ["/usr/bin/redis-server"]' \
		'CMD ["--bind","0.0.0.0","--protected-mode","no","--dir","/data","--appendonly","yes"]' \
		'EXPOSE 6379' \
		"LABEL io.payinfra.refunds.source=debian:redis-server=$redis_deb"
}

ensure_image() {
	local name="$1" builder="$2" started
	local tag="${!name}"
	if image_exists "$tag"; then
		log "$tag exists, skipping"
		return 0
	fi
	log "building $tag ..."
	started=$SECONDS
	"$builder"
	tag="${!name}" # build_redis may have moved to a newer tag
	verify_image "$tag"
	log "built $tag in $((SECONDS - started))s"
}

ensure_image nats_image build_nats
ensure_image redis_image build_redis
print_tags
