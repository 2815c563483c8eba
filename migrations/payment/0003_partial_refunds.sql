-- +goose Up
-- Staff refund a confirmed order in parts: a payment may have several
-- refunds. What was one non-failed refund per payment becomes: the refunds
-- of a payment that have not failed never add up to more than its
-- capture, and only a captured payment is refunded. A trigger holds it,
-- taking the payment's row lock first, so that two refunds of one payment
-- recorded at once are summed one after the other (each statement of a
-- plpgsql function reads what committed before it, after the lock).
DROP INDEX refunds_one_per_payment;
CREATE INDEX refunds_payment_idx ON refunds (payment_id);

-- +goose StatementBegin
CREATE FUNCTION refunds_within_capture() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    captured numeric;
    refunded numeric;
BEGIN
    SELECT amount INTO captured FROM payments WHERE id = NEW.payment_id AND status = 'captured' FOR UPDATE;
    IF captured IS NULL THEN
        RAISE EXCEPTION 'refund % of payment %: the payment is not captured', NEW.id, NEW.payment_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_within_capture';
    END IF;
    SELECT coalesce(sum(amount), 0) INTO refunded FROM refunds WHERE payment_id = NEW.payment_id AND status <> 'failed';
    IF refunded > captured THEN
        RAISE EXCEPTION 'refunds of payment % add up to %, more than its capture of %', NEW.payment_id, refunded, captured
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_within_capture';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- A row is checked when it starts to count: inserted, or changed in
-- amount, payment or out of 'failed'. The worker's moves of a refund
-- (pending, processing, succeeded) change none of these, so they take no
-- lock on the payment.
CREATE TRIGGER refunds_within_capture AFTER INSERT ON refunds
    FOR EACH ROW WHEN (NEW.status <> 'failed') EXECUTE FUNCTION refunds_within_capture();
CREATE TRIGGER refunds_within_capture_on_change AFTER UPDATE ON refunds
    FOR EACH ROW WHEN (NEW.status <> 'failed' AND (OLD.status = 'failed' OR NEW.amount <> OLD.amount OR NEW.payment_id <> OLD.payment_id))
    EXECUTE FUNCTION refunds_within_capture();

-- The test provider refunds a capture in parts too; TestMode checks that
-- its refunds stay within the capture.
DROP INDEX test_provider_one_refund;
CREATE INDEX test_provider_refunds_idx ON test_provider_operations (target) WHERE kind = 'refund';

-- +goose Down
DROP INDEX test_provider_refunds_idx;
CREATE UNIQUE INDEX test_provider_one_refund ON test_provider_operations (target) WHERE kind = 'refund';
DROP TRIGGER refunds_within_capture_on_change ON refunds;
DROP TRIGGER refunds_within_capture ON refunds;
DROP FUNCTION refunds_within_capture();
DROP INDEX refunds_payment_idx;
CREATE UNIQUE INDEX refunds_one_per_payment ON refunds (payment_id) WHERE status <> 'failed';
