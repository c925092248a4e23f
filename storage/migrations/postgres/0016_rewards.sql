-- PostgreSQL twins of 0016's triggers: the reward audit is append-only (SQLSTATE 23000, like RAISE(ABORT)).
CREATE FUNCTION reward_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'reward audit is append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER reward_audit_no_update BEFORE UPDATE ON reward_audit FOR EACH ROW EXECUTE FUNCTION reward_audit_append_only();
CREATE TRIGGER reward_audit_no_delete BEFORE DELETE ON reward_audit FOR EACH ROW EXECUTE FUNCTION reward_audit_append_only();
CREATE TRIGGER reward_audit_no_truncate BEFORE TRUNCATE ON reward_audit FOR EACH STATEMENT EXECUTE FUNCTION reward_audit_append_only();
