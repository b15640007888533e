-- The owner of every store object and of every SECURITY DEFINER function: a NOLOGIN role
-- that is not a superuser and that nobody is a member of. A definer function then runs with
-- exactly the rights the store's own tables give, never a superuser's (an attacker who got a
-- definer function to run code of theirs would gain nothing beyond the store).
-- Ownership itself is set at every upgrade to head (pganalytics.replaceable.set_ownership),
-- so objects of later revisions and day partitions follow without a line per table.
-- Roles are cluster-wide: an existing one is reused only if it is just as harmless.
DO $owner$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pganalytics_owner') THEN
        CREATE ROLE pganalytics_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        INSERT INTO pganalytics.meta (key, value) VALUES ('created_role.pganalytics_owner', 'yes');
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles
                  WHERE rolname = 'pganalytics_owner'
                    AND (rolsuper OR rolcanlogin OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls))
       OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                  WHERE m.roleid = 'pganalytics_owner'::regrole) THEN
        RAISE EXCEPTION 'role pganalytics_owner exists but can log in, has attributes, or has members'
            USING HINT = 'it must be a plain NOLOGIN role with no members: fix it (ALTER ROLE, REVOKE) and install again';
    END IF;
END
$owner$;
-- api_schema_revision() reads Alembic's version table as the owner.
GRANT SELECT ON public.alembic_version TO pganalytics_owner;
-- downgrade: REASSIGN OWNED BY pganalytics_owner TO CURRENT_USER;
-- downgrade: DROP OWNED BY pganalytics_owner;
-- downgrade: DO $d$ BEGIN IF EXISTS (SELECT FROM pganalytics.meta WHERE key = 'created_role.pganalytics_owner') THEN DELETE FROM pganalytics.meta WHERE key = 'created_role.pganalytics_owner'; BEGIN DROP ROLE pganalytics_owner; EXCEPTION WHEN dependent_objects_still_exist THEN RAISE NOTICE 'role pganalytics_owner kept: still used elsewhere in this cluster'; END; END IF; END $d$;
