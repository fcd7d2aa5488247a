-- The read cache (backend/read_cache.c; ARCHITECTURE.md, "The read cache"): a version per
-- cached table, raised by every transaction that changes the table, in that transaction. A
-- backend serves a cached list only while the version it read the list with is still the one
-- stored here, read after the request arrived: a change committed before a read is always seen.
CREATE TABLE table_versions (
    name     text PRIMARY KEY,
    version  bigint NOT NULL
);
INSERT INTO table_versions (name, version) VALUES ('users', 0), ('items', 0);

-- Once per transaction and table: the transaction-local setting gf.bumped_<table> records that
-- this transaction raised the version already, so a bulk insert pays one UPDATE, not one a row.
CREATE FUNCTION table_versions_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gf.bumped_' || TG_TABLE_NAME, true) IS DISTINCT FROM 'on' THEN
        UPDATE table_versions SET version = version + 1 WHERE name = TG_TABLE_NAME;
        PERFORM set_config('gf.bumped_' || TG_TABLE_NAME, 'on', true);
    END IF;
    RETURN NULL;
END
$$;

-- Deferred to the commit: the version row is locked only while the transaction commits, not
-- while it goes on (creating a user waits for gxp's answer between its INSERT and its COMMIT),
-- so writers of a table queue on it for a moment each, never behind a slow one. Constraint
-- triggers are per row; TRUNCATE has its own (statement) trigger.
CREATE CONSTRAINT TRIGGER users_version AFTER INSERT OR UPDATE OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION table_versions_bump();
CREATE CONSTRAINT TRIGGER items_version AFTER INSERT OR UPDATE OR DELETE ON items
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION table_versions_bump();
CREATE TRIGGER users_truncated AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION table_versions_bump();
CREATE TRIGGER items_truncated AFTER TRUNCATE ON items
    FOR EACH STATEMENT EXECUTE FUNCTION table_versions_bump();
