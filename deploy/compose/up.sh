#!/usr/bin/env bash
# Brings the compose stack up with locally built images, waits for both refundd
# replicas to be ready, and sends one sample account and top-up through it.
#
#   deploy/compose/up.sh          up, then the sample
#   deploy/compose/up.sh --down   stop and remove the stack and its volumes
set -euo pipefail

readonly here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly repo_root="$(cd "$here/../.." && pwd)"
readonly project=refunds
compose() { docker-compose -p "$project" -f "$here/docker-compose.yml" "$@"; }

if [[ ${1:-} == --down ]]; then
	compose down -v
	exit 0
fi

eval "$(bash "$repo_root/deploy/images/build.sh")"
eval "$(bash "$repo_root/deploy/refundd/build.sh")"
export NATS_IMAGE REDIS_IMAGE REFUNDD_IMAGE
compose up -d

nats_port="${REFUNDS_COMPOSE_NATS_PORT:-14222}"
ports=("${REFUNDS_COMPOSE_HTTP_PORT_1:-18081}" "${REFUNDS_COMPOSE_HTTP_PORT_2:-18082}")
for port in "${ports[@]}"; do
	for _ in $(seq 1 60); do
		curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
		sleep 1
	done
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { compose logs --tail 50; exit 1; }
	echo "refundd on :$port is ready"
done

cd "$repo_root"
export REFUNDS_NATS_URL="nats://127.0.0.1:$nats_port"
account="acct-compose-$(date +%s)"
go run ./cmd/refundctl publish -type billing.account.opened -account "$account" \
	-data '{"holder_type":"individual","holder_name":"Li Wei","verified":true}'
go run ./cmd/refundctl publish -type billing.topup.received -account "$account" \
	-data '{"topup_id":"t1","amount":"500.00","currency":"CNY","channel":"online_banking","banking":"personal","bank":"CMB","payer_type":"individual","payer_name":"Li Wei"}'
for _ in $(seq 1 30); do
	body="$(curl -fsS "http://127.0.0.1:${ports[1]}/v1/accounts/$account" 2>/dev/null || true)"
	[[ $body == *'"cash":"500.00"'* ]] && break
	sleep 0.5
done
echo "GET /v1/accounts/$account (through the second replica): $body"
[[ $body == *'"cash":"500.00"'* ]]
