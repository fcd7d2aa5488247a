-- The login roles of one service's cluster (issue 18): each service connects as its own role,
-- which owns that service's objects in schema public and nothing else; the cluster's superuser
-- stays for administration. Run by the superuser before the services start, at every start
-- (scripts/stack.sh through tests/harness/pg-cluster.sh roles; the gf-postgres image's entrypoint
-- in single-user mode), so it is idempotent, and it converts a database made before roles
-- existed: objects the superuser owns in public are handed to the service's role.
--
-- The caller SETs, before this text:
--   gf.cluster                       backend-db | gxp-db | eventlog-db
--   gf.<role>_password               the password of each role made here (never in this text;
--                                    the server stores its scram-sha-256 verifier)
--   gf.postgres_password             optional: the superuser postgres's password (TCP login)
--
--   backend-db   backend                  owns backend's tables and the publication; may create in
--                                         public and in the database (CREATE PUBLICATION needs it)
--                gxp_replication          LOGIN REPLICATION: gxp-db's subscription; SELECT on
--                                         transaction_outbox only (granted by backend's migration
--                                         004 when the table is made after this ran)
--   gxp-db       gxp                      owns the ledger
--                gxp_subscription_admin   superuser, for gxp's subscription manager only: on
--                                         PostgreSQL 15, CREATE/ALTER SUBSCRIPTION and reading
--                                         pg_subscription.subconninfo need one
--   eventlog-db  eventlog                 owns the event log
--
-- Every statement ends with ";" and a blank line, and no statement holds a blank line: that is
-- how `postgres --single -j` reads its input.

SET client_min_messages = warning;

SET password_encryption = 'scram-sha-256';

-- A failing statement's text, and the ALTER ROLE ... PASSWORD inside the functions below, stay
-- out of the server's log.
SET log_min_error_statement = panic;

SET log_statement = none;

-- Creates p_role if missing, and sets its attributes and its password (from the setting
-- p_setting). The bootstrap superuser (a volume initialized with POSTGRES_USER=<service>
-- before issue 18) cannot lose SUPERUSER: it keeps it, with a warning.
CREATE FUNCTION pg_temp.gf_login_role(p_role text, p_setting text, p_attrs text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_password text := current_setting(p_setting, true);
BEGIN
    IF v_password IS NULL OR v_password = '' THEN
        RAISE EXCEPTION 'roles: setting % (the password of role %) is not set', p_setting, p_role;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
        EXECUTE format('CREATE ROLE %I', p_role);
    END IF;
    IF (SELECT oid FROM pg_roles WHERE rolname = p_role) = 10 THEN
        RAISE WARNING 'roles: % is this cluster''s bootstrap superuser (made before issue 18) and stays superuser: initialize a new volume to drop that', p_role;
        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', p_role, v_password);
    ELSE
        EXECUTE format('ALTER ROLE %I LOGIN %s PASSWORD %L', p_role, p_attrs, v_password);
    END IF;
END $$;

-- Makes p_role the owner of every object in schema public (tables with their indexes and owned
-- sequences, views, free sequences, functions, types) and lets it create there.
CREATE FUNCTION pg_temp.gf_own_public(p_role text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA public TO %I', p_role);
    FOR r IN
        SELECT c.oid::regclass AS obj,
               CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                              WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                              ELSE 'TABLE' END AS kind
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND c.relowner <> p_role::regrole
           AND NOT (c.relkind = 'S' AND EXISTS (
                   SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', r.kind, r.obj, p_role);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS obj,
               CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                              ELSE 'FUNCTION' END AS kind
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> p_role::regrole
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', r.kind, r.obj, p_role);
    END LOOP;
    FOR r IN
        SELECT t.oid::regtype AS obj, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END AS kind
          FROM pg_type t
         WHERE t.typnamespace = 'public'::regnamespace AND t.typowner <> p_role::regrole
           AND t.typtype IN ('d', 'e', 'r', 'm') AND t.typelem = 0
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', r.kind, r.obj, p_role);
    END LOOP;
END $$;

DO $$
DECLARE
    v_cluster text := current_setting('gf.cluster', true);
    v_admin text := current_setting('gf.postgres_password', true);
BEGIN
    -- Nobody but the roles named here uses schema public (PostgreSQL 15 already keeps CREATE
    -- from PUBLIC; USAGE goes too).
    REVOKE ALL ON SCHEMA public FROM PUBLIC;
    IF v_cluster = 'backend-db' THEN
        PERFORM pg_temp.gf_login_role('backend', 'gf.backend_password',
            'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT');
        EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO backend', current_database());
        PERFORM pg_temp.gf_own_public('backend');
        IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'transaction_outbox_pub'
                      AND pubowner <> 'backend'::regrole) THEN
            ALTER PUBLICATION transaction_outbox_pub OWNER TO backend;
        END IF;
        PERFORM pg_temp.gf_login_role('gxp_replication', 'gf.gxp_replication_password',
            'NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION NOBYPASSRLS NOINHERIT');
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO gxp_replication', current_database());
        GRANT USAGE ON SCHEMA public TO gxp_replication;
        IF to_regclass('public.transaction_outbox') IS NOT NULL THEN
            GRANT SELECT ON public.transaction_outbox TO gxp_replication;
        END IF;
    ELSIF v_cluster = 'gxp-db' THEN
        PERFORM pg_temp.gf_login_role('gxp', 'gf.gxp_password',
            'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT');
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO gxp', current_database());
        PERFORM pg_temp.gf_own_public('gxp');
        PERFORM pg_temp.gf_login_role('gxp_subscription_admin',
            'gf.gxp_subscription_admin_password', 'SUPERUSER NOCREATEDB NOCREATEROLE');
    ELSIF v_cluster = 'eventlog-db' THEN
        PERFORM pg_temp.gf_login_role('eventlog', 'gf.eventlog_password',
            'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT');
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO eventlog', current_database());
        PERFORM pg_temp.gf_own_public('eventlog');
    ELSE
        RAISE EXCEPTION 'roles: gf.cluster is %, not backend-db, gxp-db or eventlog-db',
            coalesce(v_cluster, 'not set');
    END IF;
    IF v_admin IS NOT NULL AND v_admin <> ''
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres') THEN
        EXECUTE format('ALTER ROLE postgres PASSWORD %L', v_admin);
    END IF;
END $$;
