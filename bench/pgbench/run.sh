#!/usr/bin/env bash
# Issue #15's PostgreSQL reference: the drawdown-shaped transaction (drawdown.sql) through
# pgbench on the tables of schema.sql, 32 clients, beside `lendcore loadtest drawdowns` on the
# same server; statements prepared once, as lendcore's are.
# Usage: bench/pgbench/run.sh [URL] [SECONDS]  (default the test database, 20 s).
set -euo pipefail
export PGOPTIONS='-c client_min_messages=warning'
cd "$(dirname "$0")"
url="${1:-postgres://postgres@127.0.0.1:5432/test}"
seconds="${2:-20}"
psql "$url" -q -v ON_ERROR_STOP=1 -f schema.sql
pgbench "$url" -n -M prepared -f drawdown.sql -c 32 -j 2 -T "$seconds" -P 5 2>&1 | grep -E "progress|tps|latency"
psql "$url" -q -c "DROP TABLE bench_lines, bench_drawdowns, bench_transitions, bench_entries,
    bench_postings, bench_jobs, bench_outbox, bench_audit_pending, bench_idempotency;
    DROP SEQUENCE bench_keys"
