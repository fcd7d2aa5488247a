-- The floor's fixture on backend-db (a database the backend has already migrated): users and
-- items of its own, in a high id range, so that no row of the service's data is touched.
-- Idempotent (ON CONFLICT DO NOTHING); run by floor.sh with psql variables:
--   base (2000000000): floor ids are base + 1 ... base + n (uint32, as the API's ids must be)
--   users, items: how many; cost (1): each floor item's cost; stock: each floor item's
--   marketplace stock when first created (2000000000, as bench/suite.sh's items).
-- Names are 'floor-user-N' / 'floor-item-N'. The ids are explicit: the tables' sequences do not
-- move, and the service keeps allocating its own small ids.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO users (id, name)
SELECT :base + g, 'floor-user-' || g FROM generate_series(1, :users) g
ON CONFLICT DO NOTHING;
INSERT INTO items (id, name, cost)
SELECT :base + g, 'floor-item-' || g, :cost FROM generate_series(1, :items) g
ON CONFLICT DO NOTHING;
INSERT INTO marketplace_items (id, item_id, count)
SELECT :base + g, :base + g, :stock FROM generate_series(1, :items) g
ON CONFLICT DO NOTHING;
COMMIT;
-- What the scripts need, checked: every floor user, every floor item at the expected cost,
-- with stock left for a long run. floor.sh fails unless this prints 'ok'.
SELECT CASE
         WHEN (SELECT count(*) FROM users
                WHERE id BETWEEN :base + 1 AND :base + :users) <> :users
           THEN 'missing floor users (an id or a name floor-user-N taken by another row?)'
         WHEN (SELECT count(*) FROM items i JOIN marketplace_items m ON m.item_id = i.id
                WHERE i.id BETWEEN :base + 1 AND :base + :items
                  AND i.cost = :cost AND m.count >= 10000000) <> :items
           THEN 'missing floor items, or another cost, or their stock is low'
         ELSE 'ok'
       END AS floor_setup \gset
\echo :floor_setup
