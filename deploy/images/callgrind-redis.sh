#!/usr/bin/env bash
# Counts the instructions Redis executes to save the end-to-end bench's workload
# (state/redisstore's BenchmarkCommitWorkload, one run): the store's Redis side,
# measured so that two versions of apply.lua can be told apart on a busy machine.
# A time moves by 5 to 10% from one run to the next here; an instruction count
# by under 1% (Redis's timer work, 10 times a second, grows with how long the run takes
# on a busy machine: 0.1% between two runs of the same code on a quiet one, 0.8% on a
# busy one).
#
# It runs the redis-server of the test image (refunds-test/redis, the same binary and
# libraries) on the host under valgrind --tool=callgrind, with the bench's settings
# but no append-only file, and points the bench at it (BENCH_REDIS_URL).
#
# Usage:
#   deploy/images/callgrind-redis.sh [dir]   dir: a checkout to run the bench from
#                                            (default: this one), e.g. a git worktree
#                                            of the commit to compare with
#
# Prints the bench's line, Redis's instructions in all (its startup included: about
# 30 million, some 1,300 per step) and per step, and leaves the profile in
# $TMPDIR/callgrind-redis.<pid>.out for callgrind_annotate.
#
# Needs: valgrind, docker (to export the image's files), go. About 20 s.
set -euo pipefail

readonly script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly repo_root="$(cd "$script_dir/../.." && pwd)"
die() { echo "callgrind-redis.sh: $*" >&2; exit 1; }

[[ -d "${1:-$repo_root}" ]] || die "${1}: no such directory"
checkout="$(cd "${1:-$repo_root}" && pwd)"
readonly checkout
readonly port=16500

command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
# A checkout from before the bench took BENCH_REDIS_URL (f45f9a1) would start a Redis
# of its own and count nothing here: compare such a commit by copying this one's
# state/redisstore/commit_bench_test.go into its worktree first.
grep -q BENCH_REDIS_URL "$checkout/state/redisstore/commit_bench_test.go" 2>/dev/null ||
	die "$checkout: its BenchmarkCommitWorkload does not read BENCH_REDIS_URL"

image="$("$script_dir/build.sh" | sed -n 's/^REDIS_IMAGE=//p')"
work="$(mktemp -d)"
redis_pid=""
trap '[[ -n "$redis_pid" ]] && kill -INT "$redis_pid" 2>/dev/null; rm -rf "$work"' EXIT
container="$(docker create "$image" /redis-server)"
docker export "$container" | tar -x -C "$work"
docker rm "$container" >/dev/null
mkdir -p "$work/data"

out="${TMPDIR:-/tmp}/callgrind-redis.$$.out"
LD_LIBRARY_PATH="$work/usr/lib/x86_64-linux-gnu:$work/lib/x86_64-linux-gnu" \
	valgrind --tool=callgrind --callgrind-out-file="$out" \
	"$work/usr/bin/redis-server" --port "$port" --bind 127.0.0.1 --dir "$work/data" \
	--appendonly no --save '' --hash-max-listpack-value 512 >"$work/redis.log" 2>&1 &
redis_pid=$!
ready=false
for _ in $(seq 1 150); do
	if grep -qs 'Ready to accept' "$work/redis.log"; then
		ready=true
		break
	fi
	kill -0 "$redis_pid" 2>/dev/null || { cat "$work/redis.log" >&2; die "redis-server under valgrind stopped"; }
	sleep 0.2
done
$ready || die "redis-server under valgrind was not ready after 30 s"

bench="$(cd "$checkout" && BENCH_REDIS_URL="redis://127.0.0.1:$port/0" \
	go test -run '^$' -bench CommitWorkload -benchtime 1x -v ./state/redisstore/ 2>&1)" || { echo "$bench" >&2; die "the bench failed"; }
kill -INT "$redis_pid"
wait "$redis_pid" || true
redis_pid=""

steps="$(echo "$bench" | sed -n 's/.* \([0-9]\+\) steps of .*/\1/p' | head -1)"
total="$(callgrind_annotate "$out" 2>/dev/null | sed -n 's/^ *\([0-9,]\+\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)"
echo "$bench" | grep -E '^BenchmarkCommitWorkload(-[0-9]+)?[[:space:]]' || true
[[ -n "$steps" && -n "$total" ]] || die "no count of steps or instructions: $bench"
echo "Redis executed $total instructions for $steps steps: $((total / steps)) per step (startup included)"
echo "profile: $out (callgrind_annotate $out)"
