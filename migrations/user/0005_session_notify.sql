-- +goose Up
-- Every change that can make a cached session answer wrong announces the
-- account it touched on channel modshop_users_sessions, in its own
-- transaction (PostgreSQL delivers the notification at commit, to every
-- process listening on this database): a session ended or deleted, an
-- account changed (suspension, username) or deleted, a role granted or
-- taken. A TRUNCATE announces '*' (every account). The processes that run
-- the user module keep a session cache that drops what these name
-- (docs/adr/0041-session-cache.md). New sessions announce nothing: no
-- cached answer is about them.
-- +goose StatementBegin
CREATE FUNCTION announce_session_change() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('modshop_users_sessions', '*');
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('modshop_users_sessions', OLD.id::text);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('modshop_users_sessions', OLD.user_id::text);
    ELSE
        PERFORM pg_notify('modshop_users_sessions', NEW.user_id::text);
        IF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN
            PERFORM pg_notify('modshop_users_sessions', OLD.user_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER sessions_announce AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION announce_session_change();
CREATE TRIGGER users_announce AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION announce_session_change();
CREATE TRIGGER user_roles_announce AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION announce_session_change();
CREATE TRIGGER sessions_announce_truncate AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION announce_session_change();
CREATE TRIGGER users_announce_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION announce_session_change();
CREATE TRIGGER user_roles_announce_truncate AFTER TRUNCATE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION announce_session_change();

-- +goose Down
DROP TRIGGER user_roles_announce_truncate ON user_roles;
DROP TRIGGER users_announce_truncate ON users;
DROP TRIGGER sessions_announce_truncate ON sessions;
DROP TRIGGER user_roles_announce ON user_roles;
DROP TRIGGER users_announce ON users;
DROP TRIGGER sessions_announce ON sessions;
DROP FUNCTION announce_session_change();
