-- Statements of `validate --check-db` on the app databases. Every value is bound; each only reads the catalog.

-- name: reader_role_one :one
-- What the current role (the one cohort and watcher SQL runs as) could write if a read were not READ ONLY
-- and rolled back: superuser; the predefined roles that write server files or run server programs; the
-- tables, views and foreign tables outside the system schemas on which it holds INSERT, UPDATE, DELETE or
-- TRUNCATE (has_table_privilege folds in ownership, grants to PUBLIC and to inherited roles, and superuser);
-- and dblink's functions, whose connections commit on their own. One catalog pass, no ACL parsing.
SELECT current_user::text AS role,
       r.rolsuper AS superuser,
       pg_has_role(current_user, 'pg_write_server_files', 'USAGE')
           OR pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') AS server_files,
       w.n AS writable,
       w.sample AS writable_sample,
       EXISTS (
           SELECT 1
           FROM pg_proc AS p
           JOIN pg_depend AS d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
           JOIN pg_extension AS e ON e.oid = d.refobjid AND e.extname = 'dblink'
           WHERE has_function_privilege(p.oid, 'EXECUTE')
       ) AS dblink
FROM pg_roles AS r,
     LATERAL (
         SELECT count(*)::int AS n,
                (array_agg(quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                           ORDER BY n.nspname, c.relname))[1:3] AS sample
         FROM pg_class AS c
         JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'f')
           AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
           AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
     ) AS w
WHERE r.rolname = current_user;
