package provider_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/modules/payment/internal/provider"
)

// forEachBooks runs a test against the test provider keeping its books in
// memory and in PostgreSQL: both must behave alike.
func forEachBooks(t *testing.T, test func(t *testing.T, records provider.Records)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		test(t, provider.NewMemoryRecords())
	})
	t.Run("sql", func(t *testing.T) {
		t.Parallel()
		test(t, provider.NewSQLRecords(ledgerDB(t)))
	})
}

func count(t *testing.T, r provider.Records, kind string) int {
	t.Helper()
	n, err := r.Count(context.Background(), kind)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTestMode_VisaIsCapturedOnceHoweverOftenAsked(t *testing.T) {
	t.Parallel()
	forEachBooks(t, func(t *testing.T, records provider.Records) {
		ctx := context.Background()
		p := provider.NewTestMode(records, time.Millisecond)
		auth, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "pay-1", Method: provider.MethodVisa, Amount: "12.50"})
		if err != nil || auth == "" {
			t.Fatalf("authorize visa: %q, %v", auth, err)
		}
		again, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "pay-1", Method: provider.MethodVisa, Amount: "12.50"})
		if err != nil || again != auth {
			t.Fatalf("authorize again with the same key: %q, %v; want %q", again, err, auth)
		}
		var captures []string
		for range 3 {
			c, err := p.Capture(ctx, provider.CaptureRequest{IdempotencyKey: "pay-1", Authorization: auth, Amount: "12.50"})
			if err != nil {
				t.Fatalf("capture: %v", err)
			}
			captures = append(captures, c)
		}
		if captures[0] != captures[1] || captures[1] != captures[2] {
			t.Fatalf("three captures with one key gave %v, want one id", captures)
		}
		if n := count(t, records, provider.KindCapture); n != 1 {
			t.Fatalf("the provider captured %d times, want 1", n)
		}
		// Another key cannot capture the same authorization again.
		if _, err := p.Capture(ctx, provider.CaptureRequest{IdempotencyKey: "pay-1-bis", Authorization: auth, Amount: "12.50"}); !errors.Is(err, provider.ErrRejected) {
			t.Fatalf("second capture of one authorization under another key: %v, want ErrRejected", err)
		}
		if n := count(t, records, provider.KindCapture); n != 1 {
			t.Fatalf("the provider captured %d times, want 1", n)
		}
	})
}

func TestTestMode_DeclinesAndInvalidMethodsAreDefiniteAndRemembered(t *testing.T) {
	t.Parallel()
	forEachBooks(t, func(t *testing.T, records provider.Records) {
		ctx := context.Background()
		p := provider.NewTestMode(records, time.Millisecond)
		for _, c := range []struct {
			method string
			want   error
		}{
			{provider.MethodDeclined, provider.ErrDeclined},
			{"pm_card_unknown", provider.ErrInvalidMethod},
			{"", provider.ErrInvalidMethod},
		} {
			for range 2 {
				auth, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "k-" + c.method, Method: c.method, Amount: "3.00"})
				if !errors.Is(err, c.want) || auth != "" {
					t.Errorf("authorize %q: %q, %v; want %v", c.method, auth, err, c.want)
				}
			}
		}
		if n := count(t, records, provider.KindCapture); n != 0 {
			t.Fatalf("%d captures after declines", n)
		}
	})
}

func TestTestMode_RefusesAKeyReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	forEachBooks(t, func(t *testing.T, records provider.Records) {
		ctx := context.Background()
		p := provider.NewTestMode(records, time.Millisecond)
		auth, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "k1", Method: provider.MethodVisa, Amount: "10.00"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []provider.AuthorizeRequest{
			{IdempotencyKey: "k1", Method: provider.MethodVisa, Amount: "11.00"},
			{IdempotencyKey: "k1", Method: provider.MethodDeclined, Amount: "10.00"},
		} {
			if _, err := p.Authorize(ctx, r); !errors.Is(err, provider.ErrRejected) {
				t.Errorf("authorize %+v with a used key: %v, want ErrRejected", r, err)
			}
		}
		if _, err := p.Capture(ctx, provider.CaptureRequest{IdempotencyKey: "k1", Authorization: auth, Amount: "9.99"}); !errors.Is(err, provider.ErrRejected) {
			t.Errorf("capture of another amount: %v, want ErrRejected", err)
		}
		if _, err := p.Capture(ctx, provider.CaptureRequest{IdempotencyKey: "k2", Authorization: "auth_nope", Amount: "10.00"}); !errors.Is(err, provider.ErrRejected) {
			t.Errorf("capture of an unknown authorization: %v, want ErrRejected", err)
		}
		for _, amount := range []string{"0.00", "-1.00", "1.5", "1e3", ""} {
			if _, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "k-" + amount, Method: provider.MethodVisa, Amount: amount}); !errors.Is(err, provider.ErrRejected) {
				t.Errorf("authorize amount %q: %v, want ErrRejected", amount, err)
			}
		}
		// Above its limit, an amount is refused as too large.
		if _, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "k-large", Method: provider.MethodVisa, Amount: "100000000.00"}); !errors.Is(err, provider.ErrAmountTooLarge) {
			t.Errorf("authorize 100000000.00: %v, want ErrAmountTooLarge", err)
		}
		if _, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "k-largest", Method: provider.MethodVisa, Amount: "99999999.99"}); err != nil {
			t.Errorf("authorize 99999999.99: %v, want approved", err)
		}
	})
}

func TestTestMode_RefundsACaptureInPartsNeverMoreThanIt(t *testing.T) {
	t.Parallel()
	forEachBooks(t, func(t *testing.T, records provider.Records) {
		ctx := context.Background()
		p := provider.NewTestMode(records, time.Millisecond)
		auth, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "pay", Method: provider.MethodVisa, Amount: "7.25"})
		if err != nil {
			t.Fatal(err)
		}
		capture, err := p.Capture(ctx, provider.CaptureRequest{IdempotencyKey: "pay", Authorization: auth, Amount: "7.25"})
		if err != nil {
			t.Fatal(err)
		}
		first, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "ref", Capture: capture, Amount: "5.00"})
		if err != nil {
			t.Fatal(err)
		}
		again, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "ref", Capture: capture, Amount: "5.00"})
		if err != nil || again != first {
			t.Fatalf("refund again with the same key: %q, %v; want %q", again, err, first)
		}
		if _, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "ref", Capture: capture, Amount: "1.00"}); !errors.Is(err, provider.ErrRejected) {
			t.Fatalf("a key reused for another amount: %v, want ErrRejected", err)
		}
		if _, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "ref-2", Capture: capture, Amount: "2.26"}); !errors.Is(err, provider.ErrRejected) {
			t.Fatalf("a refund past what the capture has left: %v, want ErrRejected", err)
		}
		if _, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "ref-3", Capture: capture, Amount: "2.25"}); err != nil {
			t.Fatalf("a refund of what the capture has left: %v", err)
		}
		if _, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "ref-4", Capture: capture, Amount: "0.01"}); !errors.Is(err, provider.ErrRejected) {
			t.Fatalf("a refund of a capture refunded in full: %v, want ErrRejected", err)
		}
		if _, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "ref-5", Capture: auth, Amount: "7.25"}); !errors.Is(err, provider.ErrRejected) {
			t.Fatalf("a refund of an authorization: %v, want ErrRejected", err)
		}
		if n := count(t, records, provider.KindRefund); n != 2 {
			t.Fatalf("the provider refunded %d times, want 2", n)
		}
	})
}

func TestTestMode_DelayedCardApprovesAfterTheDelayOrNotAtAllWhenCutShort(t *testing.T) {
	t.Parallel()
	forEachBooks(t, func(t *testing.T, records provider.Records) {
		const delay = 300 * time.Millisecond
		p := provider.NewTestMode(records, delay)
		req := provider.AuthorizeRequest{IdempotencyKey: "slow", Method: provider.MethodDelayed, Amount: "1.00"}

		short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if _, err := p.Authorize(short, req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("authorize cut short: %v, want the context's deadline", err)
		}
		if n := count(t, records, provider.KindAuthorize); n != 0 {
			t.Fatalf("an authorization cut short was recorded (%d)", n)
		}
		start := time.Now()
		auth, err := p.Authorize(context.Background(), req)
		if err != nil || auth == "" {
			t.Fatalf("authorize delayed card: %q, %v", auth, err)
		}
		if took := time.Since(start); took < delay {
			t.Fatalf("the delayed card was approved after %s, before its delay of %s", took, delay)
		}
	})
}

func TestTestMode_ConcurrentCapturesWithOneKeyCaptureOnce(t *testing.T) {
	t.Parallel()
	forEachBooks(t, func(t *testing.T, records provider.Records) {
		ctx := context.Background()
		p := provider.NewTestMode(records, time.Millisecond)
		auth, err := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "race", Method: provider.MethodVisa, Amount: "5.00"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		refs := make(chan string, 12)
		for range 12 {
			wg.Go(func() {
				ref, err := p.Capture(ctx, provider.CaptureRequest{IdempotencyKey: "race", Authorization: auth, Amount: "5.00"})
				if err != nil {
					t.Errorf("capture: %v", err)
				}
				refs <- ref
			})
		}
		wg.Wait()
		close(refs)
		seen := map[string]bool{}
		for r := range refs {
			seen[r] = true
		}
		if len(seen) != 1 || count(t, records, provider.KindCapture) != 1 {
			t.Fatalf("12 racing captures with one key gave ids %v and %d captures, want one", seen, count(t, records, provider.KindCapture))
		}
	})
}
