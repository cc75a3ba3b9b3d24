#!/usr/bin/env bash
# PostgreSQL backups of the platform: `pg_dump -Fc` into $BACKUP_DIR, each kept only once pg_restore can read
# it back (--list), then the dumps older than $BACKUP_KEEP_DAYS days removed.
#
#   backup.sh            one backup now
#   backup.sh --daily    one every day at $BACKUP_AT (HH:MM, local time of $TZ), for ever (compose `backup`)
#
# Connection from the libpq variables: PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD (or ~/.pgpass).
# Restore (into a new, empty database; see the README's "Backups and restore"):
#   createdb -T template0 hpay_restored && pg_restore --no-owner --exit-on-error -d hpay_restored FILE
set -euo pipefail

BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_AT="${BACKUP_AT:-02:30}"
BACKUP_KEEP_DAYS="${BACKUP_KEEP_DAYS:-14}"

backup_once() {
    local stamp target partial
    stamp="$(date +%Y%m%dT%H%M%S%z)"
    target="$BACKUP_DIR/${PGDATABASE:-hpay}-$stamp.dump"
    partial="$target.partial"
    mkdir -p "$BACKUP_DIR"
    # Checked step by step: `set -e` does not apply inside a function called as `backup_once || ...`.
    if ! pg_dump --format=custom --compress=6 --file="$partial" || ! pg_restore --list "$partial" >/dev/null; then
        rm -f "$partial"
        return 1
    fi
    mv "$partial" "$target" || return 1
    find "$BACKUP_DIR" -maxdepth 1 -name "${PGDATABASE:-hpay}-*.dump" -mtime "+$BACKUP_KEEP_DAYS" -delete
    echo "backup: $target ($(du -h "$target" | cut -f1))"
}

seconds_until() {
    local now next
    now="$(date +%s)"
    next="$(date -d "today $1" +%s)"
    if (( next <= now )); then next="$(date -d "tomorrow $1" +%s)"; fi
    echo $(( next - now ))
}

if [[ "${1:-}" == "--daily" ]]; then
    while true; do
        wait_s="$(seconds_until "$BACKUP_AT")"
        echo "backup: next at $BACKUP_AT, in ${wait_s} s"
        sleep "$wait_s"
        backup_once || echo "backup: FAILED at $(date); trying again tomorrow" >&2
    done
else
    backup_once
fi
