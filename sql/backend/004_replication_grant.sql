-- gxp-db's subscription reads transaction_outbox as the role gxp_replication (issue 18: LOGIN
-- REPLICATION, SELECT on this table only; made by sql/roles/roles.sql). The roles are applied
-- before the first start, when this table does not exist yet: the grant is made here. A cluster
-- without that role (the tests' throwaway clusters, where everything runs as the superuser) has
-- nothing to grant.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gxp_replication') THEN
        GRANT SELECT ON transaction_outbox TO gxp_replication;
    END IF;
END $$;
