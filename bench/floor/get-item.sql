-- pgbench script: the read floor of GET /item (bench/suite.sh, part reads): the one statement
-- the backend runs for it on backend-db, a prepared statement on a pooled connection outside
-- any transaction (backend/store.c store_list_items, through store_exec). Unpaged, the route
-- asks for the first BACKEND_LIST_CAP rows: :limit is that cap (10000, its default).
\set after 0
SELECT id, name, cost, (extract(epoch FROM updated_at) * 1000000)::bigint FROM items WHERE id > :after::bigint ORDER BY id LIMIT :limit::int;
