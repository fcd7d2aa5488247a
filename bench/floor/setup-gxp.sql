-- The floor's fixture on gxp-db (a database gxp has already migrated): a balance for each floor
-- user (ids base + 1 ... base + users, as on backend-db), funded through the ledger's own
-- functions -- a committed ADD (gxp_prepare, then gxp_apply_decision 'succeeded', source
-- 'floor-setup') -- so that the invariant balance = Σ committed ADD − Σ committed SUBTRACT
-- holds. A balance is topped up only when what is available (balance − reserved) is below
-- 100,000,000: idempotent, and enough for 10^8 buys of cost 1 per user.
-- Run by floor.sh with psql variables base, users.
\set ON_ERROR_STOP on
SELECT set_config('floor.base', :'base', false) AS b, set_config('floor.users', :'users', false) AS u \gset
INSERT INTO balance (user_id)
SELECT :base + g FROM generate_series(1, :users) g
ON CONFLICT DO NOTHING;
DO $$
DECLARE
    v_base  bigint := current_setting('floor.base')::bigint;
    v_users bigint := current_setting('floor.users')::bigint;
    r       record;
    v_cid   uuid;
    v_code  integer;
    v_n     integer := 0;
BEGIN
    FOR r IN SELECT user_id FROM balance
              WHERE user_id BETWEEN v_base + 1 AND v_base + v_users
                AND balance - reserved < 100000000
              ORDER BY user_id
    LOOP
        v_cid := gen_random_uuid();
        v_code := gxp_prepare(r.user_id, 0::smallint, 1000000000, v_cid, now());
        IF v_code <> 0 THEN
            RAISE EXCEPTION 'floor setup: gxp_prepare(ADD) of user % answered %', r.user_id, v_code;
        END IF;
        IF gxp_apply_decision(v_cid, 'succeeded', 'floor-setup') <> 'applied' THEN
            RAISE EXCEPTION 'floor setup: the funding of user % was not applied', r.user_id;
        END IF;
        v_n := v_n + 1;
        IF v_n % 500 = 0 THEN
            COMMIT; -- a few advisory locks per transaction, not one per user
        END IF;
    END LOOP;
END $$;
SELECT CASE
         WHEN (SELECT count(*) FROM balance
                WHERE user_id BETWEEN :base + 1 AND :base + :users
                  AND balance - reserved >= 100000000) <> :users
           THEN 'floor balances missing or not funded'
         ELSE 'ok'
       END AS floor_setup \gset
\echo :floor_setup
