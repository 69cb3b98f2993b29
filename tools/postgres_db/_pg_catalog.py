"""Catalog SQL for the PostgreSQL backend; every user-supplied name is a bound parameter, never interpolated."""

SET_LOCALS = "SELECT set_config('statement_timeout', $1, true), set_config('search_path', $2, true)"

SCHEMA_EXISTS = "SELECT oid FROM pg_namespace WHERE nspname = $1"

_KIND = """CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
    WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END"""

_ESTIMATE = "CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END"

LIST_TABLES = f"""
SELECT c.relname AS name, {_KIND} AS type, {_ESTIMATE} AS row_estimate, obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname
"""

FIND_RELATION = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

RELATION_KIND = f"SELECT {_KIND} FROM pg_class c WHERE c.oid = $1"

COLUMNS = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
       pg_get_expr(d.adbin, d.adrelid) AS default, COALESCE(a.attnum = ANY (i.indkey), false) AS primary_key,
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END AS identity,
       col_description(a.attrelid, a.attnum) AS comment
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_ACTION = (
    "CASE {} WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' "
    "WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END"
)

_COLUMN_NAMES = """ARRAY(SELECT a.attname FROM unnest({keys}) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum ORDER BY k.ord)"""

CONSTRAINTS = f"""
SELECT con.contype::text AS kind, con.conname AS name,
       {_COLUMN_NAMES.format(keys="con.conkey", rel="con.conrelid")} AS columns,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       {_COLUMN_NAMES.format(keys="con.confkey", rel="con.confrelid")} AS ref_columns,
       {_ACTION.format("con.confupdtype")} AS on_update, {_ACTION.format("con.confdeltype")} AS on_delete,
       pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = $1 AND con.contype IN ('p', 'f', 'u', 'c', 'x')
ORDER BY con.contype, con.conname
"""

SIZES = f"""
SELECT {_KIND} AS type, {_ESTIMATE} AS row_estimate, pg_table_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes, pg_total_relation_size(c.oid) AS total_bytes,
       pg_size_pretty(pg_total_relation_size(c.oid)) AS total_size,
       GREATEST(s.last_analyze, s.last_autoanalyze) AS last_analyzed
FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.oid = $1
"""

COLUMN_STATS = """
SELECT DISTINCT ON (attname) attname AS column, null_frac, n_distinct, avg_width, correlation,
       left(most_common_vals::text, 500) AS most_common_vals, most_common_freqs
FROM pg_stats WHERE schemaname = $1 AND tablename = $2
ORDER BY attname, inherited DESC
"""
