-- pgbench script: the read floor of GET /user?limit=100 (bench/suite.sh, part reads): the one
-- statement the backend runs for it on backend-db, a prepared statement on a pooled connection
-- outside any transaction (backend/store.c store_list_users, through store_exec), the first
-- page (after = 0) of :limit (100) users. Run with -M prepared: bound parameters, as the
-- service sends them.
\set after 0
SELECT id, name, (extract(epoch FROM updated_at) * 1000000)::bigint FROM users WHERE id > :after::bigint ORDER BY id LIMIT :limit::int;
