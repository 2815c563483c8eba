package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// The test payment methods.
const (
	MethodVisa     = "pm_card_visa"           // approved
	MethodDeclined = "pm_card_chargeDeclined" // declined at authorization
	MethodDelayed  = "pm_card_delayed"        // approved after TestMode's delay
)

// Outcomes of an authorization in the test provider's records.
const (
	outcomeApproved      = "approved"
	outcomeDeclined      = "declined"
	outcomeInvalidMethod = "invalid_method"
	outcomeDone          = "done" // a capture or refund
)

// TestMode is the built-in provider. It moves no real money but behaves
// as a provider does: pm_card_visa is approved, pm_card_chargeDeclined is
// declined, pm_card_delayed is approved after a delay (so that a payment
// can outlive an order's deadline), any other method is invalid. It keeps
// its own records keyed by operation and idempotency key, so a repeated
// call returns the first answer and captures or refunds nothing twice;
// an authorization is captured at most once, whatever the key, and the
// refunds of a capture add up to no more than it.
type TestMode struct {
	records Records
	delay   time.Duration
}

// NewTestMode returns the test provider keeping its books in records;
// pm_card_delayed waits delay before it approves.
func NewTestMode(records Records, delay time.Duration) *TestMode {
	return &TestMode{records: records, delay: delay}
}

var (
	amountPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,7})\.[0-9]{2}$`)
	// largePattern is an amount with more whole digits than the test
	// provider takes: its limit is 99999999.99, what the ledger holds.
	largePattern = regexp.MustCompile(`^[1-9][0-9]{8,}\.[0-9]{2}$`)
	keyPattern   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)
)

func checkRequest(key, amount string) error {
	if !keyPattern.MatchString(key) {
		return fmt.Errorf("%w: idempotency key must be 1 to 100 letters, digits or _.:-", ErrRejected)
	}
	if largePattern.MatchString(amount) {
		return fmt.Errorf("%w: %s is more than 99999999.99", ErrAmountTooLarge, amount)
	}
	if !amountPattern.MatchString(amount) || amount == "0.00" {
		return fmt.Errorf("%w: amount %q must be a positive decimal with two places", ErrRejected, amount)
	}
	return nil
}

// Authorize approves, declines or refuses the method; see TestMode.
func (p *TestMode) Authorize(ctx context.Context, r AuthorizeRequest) (string, error) {
	if err := checkRequest(r.IdempotencyKey, r.Amount); err != nil {
		return "", err
	}
	if len(r.Method) > 100 {
		return "", ErrInvalidMethod
	}
	outcome := outcomeApproved
	switch r.Method {
	case MethodVisa:
	case MethodDeclined:
		outcome = outcomeDeclined
	case MethodDelayed:
		// A repeat is answered at once, as the first answer was recorded.
		if rec, ok, err := p.records.Find(ctx, KindAuthorize, r.IdempotencyKey); err != nil || ok {
			if err != nil {
				return "", err
			}
			return answerAuthorize(rec, r)
		}
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return "", fmt.Errorf("authorize %s: %w", r.IdempotencyKey, ctx.Err())
		}
	default:
		outcome = outcomeInvalidMethod
	}
	// Add keeps the first operation made with this key and returns it.
	rec, err := p.records.Add(ctx, Record{Kind: KindAuthorize, Key: r.IdempotencyKey, Ref: newRef("auth"),
		Outcome: outcome, Method: r.Method, Amount: r.Amount})
	if err != nil {
		return "", err
	}
	return answerAuthorize(rec, r)
}

func answerAuthorize(rec Record, r AuthorizeRequest) (string, error) {
	if rec.Method != r.Method || rec.Amount != r.Amount {
		return "", fmt.Errorf("%w: idempotency key %s was used for %s %s", ErrRejected, r.IdempotencyKey, rec.Amount, rec.Method)
	}
	switch rec.Outcome {
	case outcomeApproved:
		return rec.Ref, nil
	case outcomeDeclined:
		return "", ErrDeclined
	default:
		return "", ErrInvalidMethod
	}
}

// Capture captures an approved authorization in full, once.
func (p *TestMode) Capture(ctx context.Context, r CaptureRequest) (string, error) {
	if err := checkRequest(r.IdempotencyKey, r.Amount); err != nil {
		return "", err
	}
	capture := Record{Kind: KindCapture, Key: r.IdempotencyKey, Ref: newRef("cap"),
		Outcome: outcomeDone, Amount: r.Amount, Target: r.Authorization}
	// The usual call, the first with its key on an approved authorization
	// of its amount, is one write to the books.
	added, err := p.records.AddToTarget(ctx, capture, KindAuthorize, outcomeApproved)
	if err != nil {
		return "", err
	}
	if added {
		return capture.Ref, nil
	}
	// A repeat, a request that cannot be met, or one that lost a race.
	auth, ok, err := p.records.ByRef(ctx, r.Authorization)
	if err != nil {
		return "", err
	}
	if !ok || auth.Kind != KindAuthorize || auth.Outcome != outcomeApproved {
		return "", fmt.Errorf("%w: no approved authorization %q", ErrRejected, r.Authorization)
	}
	if auth.Amount != r.Amount {
		return "", fmt.Errorf("%w: capture of %s from an authorization of %s", ErrRejected, r.Amount, auth.Amount)
	}
	rec, err := p.add(ctx, capture)
	if errors.Is(err, ErrTargetTaken) {
		return "", fmt.Errorf("%w: authorization %s is already captured", ErrRejected, r.Authorization)
	}
	if err != nil {
		return "", err
	}
	return answer(rec, r.IdempotencyKey, r.Authorization, r.Amount)
}

// Refund refunds all or part of a capture, once per key; the refunds of
// a capture never add up to more than it.
func (p *TestMode) Refund(ctx context.Context, r RefundRequest) (string, error) {
	if err := checkRequest(r.IdempotencyKey, r.Amount); err != nil {
		return "", err
	}
	refund := Record{Kind: KindRefund, Key: r.IdempotencyKey, Ref: newRef("re"),
		Outcome: outcomeDone, Amount: r.Amount, Target: r.Capture}
	// The usual call, the first with its key on a capture with enough
	// left, is one write to the books.
	added, err := p.records.AddRefund(ctx, refund)
	if err != nil {
		return "", err
	}
	if added {
		return refund.Ref, nil
	}
	// A repeat, or a request that cannot be met.
	if rec, ok, err := p.records.Find(ctx, KindRefund, r.IdempotencyKey); err != nil || ok {
		if err != nil {
			return "", err
		}
		return answer(rec, r.IdempotencyKey, r.Capture, r.Amount)
	}
	capture, ok, err := p.records.ByRef(ctx, r.Capture)
	if err != nil {
		return "", err
	}
	if !ok || capture.Kind != KindCapture {
		return "", fmt.Errorf("%w: no capture %q", ErrRejected, r.Capture)
	}
	return "", fmt.Errorf("%w: a refund of %s is more than capture %s of %s has left", ErrRejected, r.Amount, r.Capture, capture.Amount)
}

// add records a capture; a repeat with the same key gets the first one
// back, also when it lost a race with it on the target.
func (p *TestMode) add(ctx context.Context, r Record) (Record, error) {
	rec, err := p.records.Add(ctx, r)
	if errors.Is(err, ErrTargetTaken) {
		if first, ok, ferr := p.records.Find(ctx, r.Kind, r.Key); ferr == nil && ok {
			return first, nil
		}
	}
	return rec, err
}

// answer replays a recorded capture or refund, refusing a key reused for
// another target or amount.
func answer(rec Record, key, target, amount string) (string, error) {
	if rec.Target != target || rec.Amount != amount {
		return "", fmt.Errorf("%w: idempotency key %s was used for %s of %s", ErrRejected, key, rec.Amount, rec.Target)
	}
	return rec.Ref, nil
}

// Captures reports how many captures the provider has performed.
func (p *TestMode) Captures(ctx context.Context) (int, error) {
	return p.records.Count(ctx, KindCapture)
}

// Refunds reports how many refunds the provider has performed.
func (p *TestMode) Refunds(ctx context.Context) (int, error) {
	return p.records.Count(ctx, KindRefund)
}

func newRef(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}
