#!/bin/sh
# Run once by the postgres image (docker-entrypoint-initdb.d) when its volume is first created: a separate demo
# database for the postgres_db tool, filled from tools/postgres_db/demo.sql, and a role that can only read it.
# The gateway's own database ($POSTGRES_DB: keys, spend) is closed to that role.
set -eu
demo_db=${POSTGRES_DB_DEMO_DB:-demo}
reader=${POSTGRES_DB_READER:-postgres_db_reader}
demo_sql=${POSTGRES_DB_DEMO_SQL:-/demo/demo.sql}

run() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" \
    -v reader="$reader" -v reader_password="$POSTGRES_DB_READER_PASSWORD" -v demo_db="$demo_db" -v hub_db="$POSTGRES_DB" \
    "$@"
}

run --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE :"reader" LOGIN PASSWORD :'reader_password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE :"demo_db";
REVOKE CONNECT ON DATABASE :"hub_db" FROM PUBLIC;
SQL

run --dbname "$demo_db" --file "$demo_sql"

run --dbname "$demo_db" <<'SQL'
REVOKE ALL ON DATABASE :"demo_db" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE :"demo_db" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
SQL
