-- PostgreSQL twins of 0013's triggers: grade results and the re-open log never change; no ledger row
-- may be dated in a year its branch has finalised. SQLSTATE 23000, like SQLite's RAISE(ABORT).
CREATE FUNCTION grade_results_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'grade results are never changed' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER grade_results_no_update BEFORE UPDATE ON grade_results FOR EACH ROW EXECUTE FUNCTION grade_results_unchanged();
CREATE TRIGGER grade_results_no_delete BEFORE DELETE ON grade_results FOR EACH ROW EXECUTE FUNCTION grade_results_unchanged();
CREATE TRIGGER grade_results_no_truncate BEFORE TRUNCATE ON grade_results FOR EACH STATEMENT EXECUTE FUNCTION grade_results_unchanged();

CREATE FUNCTION ledger_year_locked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM locked_years
               WHERE branch_id = NEW.branch_id AND year = CAST(substr(NEW.occurred_on, 1, 4) AS BIGINT)) THEN
        RAISE EXCEPTION 'ledger year locked' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_year_locked BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_year_locked();

CREATE FUNCTION grade_reopens_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the re-open log is append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER grade_reopens_no_update BEFORE UPDATE ON grade_reopens FOR EACH ROW EXECUTE FUNCTION grade_reopens_append_only();
CREATE TRIGGER grade_reopens_no_delete BEFORE DELETE ON grade_reopens FOR EACH ROW EXECUTE FUNCTION grade_reopens_append_only();
CREATE TRIGGER grade_reopens_no_truncate BEFORE TRUNCATE ON grade_reopens FOR EACH STATEMENT EXECUTE FUNCTION grade_reopens_append_only();
