package ledger

import (
	"context"
	"errors"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// followUps are the waits before the looks that follow a wake-up given
// before the handler's transaction commits (expect): a look made at once
// would not see the new row yet.
var followUps = []time.Duration{time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond}

// Kinds of work, as counted by expected and flagged by recorded.
const (
	charges = iota
	refunds
)

// announce tells the worker that a handler records new work of kind in
// tx. A transaction that can run code after it commits (db.AfterCommitter:
// the bus's batch transactions and those of db.Gorm's handles) wakes the
// worker once the row is there, for one look that finds it. Any other is
// announced at once, and chased with follow-up looks (expect).
func (s *Service) announce(tx *gorm.DB, kind int) {
	if ac, ok := tx.Statement.ConnPool.(db.AfterCommitter); ok {
		ac.AfterCommit(func() { s.committed(kind) })
		return
	}
	s.expect(kind)
}

// committed tells the worker that a handler committed new work of kind:
// its next look goes there. It never blocks.
func (s *Service) committed(kind int) {
	s.recorded[kind].Store(true)
	s.wakeUp()
}

// lookAt reports whether the next look goes to kind's table: when asked
// to look everywhere, or when work of kind was committed or announced. It
// takes the committed work as looked for.
func (s *Service) lookAt(kind int, everyKind bool) bool {
	recorded := s.recorded[kind].Swap(false)
	return everyKind || recorded || s.expecting(kind)
}

// wakeUp wakes the worker; it never blocks.
func (s *Service) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// expect tells the worker that a handler recorded new work of kind: it
// counts it and wakes the worker, which looks for it until it has claimed
// as many new rows as it was told of (or the follow-ups run out: the
// handler's transaction may have rolled back). It never blocks.
func (s *Service) expect(kind int) {
	s.expected[kind].Add(1)
	s.wakeUp()
}

// expecting reports whether new work of kind was announced and not found.
func (s *Service) expecting(kind int) bool { return s.expected[kind].Load() > 0 }

// found counts one announced row of kind as claimed.
func (s *Service) found(kind int) {
	for {
		n := s.expected[kind].Load()
		if n <= 0 || s.expected[kind].CompareAndSwap(n, n-1) {
			return
		}
	}
}

// Run carries out pending payments and refunds until ctx ends. It looks
// for due work shortly after a handler recorded some, when a retry falls
// due, when a job ends while every slot was busy, and every PollInterval
// when idle (rows left by another process, or a claim whose lease ran
// out). Up to Concurrency jobs run at once, each outside any transaction.
// When ctx ends, jobs in flight have their provider calls cancelled and
// give their rows back for the next start; Run returns once they have.
func (s *Service) Run(ctx context.Context) {
	var inflight sync.WaitGroup
	defer inflight.Wait()
	s.acceptHandOvers(true)
	defer func() { s.giveBack(ctx, s.acceptHandOvers(false)) }()
	slots := make(chan struct{}, s.cfg.Concurrency)
	freed := make(chan struct{}, 1)
	start := func(job func(context.Context)) {
		slots <- struct{}{}
		inflight.Add(1)
		go func() {
			defer func() {
				<-slots
				select {
				case freed <- struct{}{}:
				default:
				}
				inflight.Done()
			}()
			job(ctx)
		}()
	}

	var (
		timer     = time.NewTimer(0) // the first look finds rows left from before a restart
		next      = time.Now()       // when the timer fires
		chased    = len(followUps)   // follow-ups done since the last wake-up
		everyKind = true             // look at both tables, not only where work was announced
		saturated bool
	)
	defer timer.Stop()
	arm := func(d time.Duration) {
		timer.Reset(d)
		next = time.Now().Add(d)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			// Claims handed over start at once, as far as slots are free.
			for _, p := range s.takeHanded(cap(slots) - len(slots)) {
				start(func(ctx context.Context) { s.charge(ctx, p) })
			}
			// Wake-ups come faster than looks under load: never push a
			// look that is due sooner further away.
			chased = 0
			if time.Until(next) > followUps[0] {
				arm(followUps[0])
				chased = 1
				everyKind = false
			}
			continue
		case <-freed:
			for _, p := range s.takeHanded(cap(slots) - len(slots)) {
				start(func(ctx context.Context) { s.charge(ctx, p) })
			}
			if !saturated {
				continue
			}
			everyKind = true
		case <-timer.C:
		}

		for _, p := range s.takeHanded(cap(slots) - len(slots)) {
			start(func(ctx context.Context) { s.charge(ctx, p) })
		}
		free := cap(slots) - len(slots)
		saturated = free == 0
		if free > 0 {
			// A claim is not cut short by a stop: a claim committed but not
			// read back would leave its rows stuck until their lease ends.
			// Jobs started with a stopped ctx give their rows back at once.
			claimCtx, cancel := detached(ctx)
			jobs, err := s.claim(claimCtx, free, s.lookAt(charges, everyKind), s.lookAt(refunds, everyKind))
			cancel()
			for _, j := range jobs {
				start(j)
			}
			if err != nil {
				if !s.outage.Failed(err) {
					s.log.Error("payment worker: claiming work failed", "err", err)
				}
				arm(s.cfg.PollInterval) // not a tight loop while the database is away
				everyKind = true
				continue
			}
			s.outage.Recovered()
			saturated = len(jobs) == free
		}
		everyKind = false
		switch {
		case saturated:
			arm(s.cfg.PollInterval) // a job that ends frees a slot and wakes us
			everyKind = true
		case (s.expecting(charges) || s.expecting(refunds)) && chased < len(followUps):
			arm(followUps[chased])
			chased++
		default:
			s.expected[charges].Store(0) // announced rows that never came: rolled back
			s.expected[refunds].Store(0)
			arm(s.untilDue(ctx))
			everyKind = true
		}
	}
}

// claim claims up to n due jobs: refunds first (they are rare and owed),
// then charges, each only if asked to look there. A job found that was
// never tried before counts as announced work found.
func (s *Service) claim(ctx context.Context, n int, lookCharges, lookRefunds bool) ([]func(context.Context), error) {
	var jobs []func(context.Context)
	if lookRefunds {
		claimed, err := s.claimRefunds(ctx, n)
		if err != nil {
			return nil, err
		}
		for _, r := range claimed {
			if r.Attempts == 1 {
				s.found(refunds)
			}
			jobs = append(jobs, func(ctx context.Context) { s.refund(ctx, r) })
		}
		n -= len(claimed)
	}
	if lookCharges && n > 0 {
		claimed, err := s.claimPayments(ctx, n)
		if err != nil {
			return jobs, err
		}
		for _, p := range claimed {
			if p.Attempts == 1 {
				s.found(charges)
			}
			jobs = append(jobs, func(ctx context.Context) { s.charge(ctx, p) })
		}
	}
	return jobs, nil
}

// untilDue is how long to wait for the next retry that falls due, at most
// PollInterval.
func (s *Service) untilDue(ctx context.Context) time.Duration {
	next, err := nextAttemptAt(ctx, s.db)
	if err != nil {
		if ctx.Err() == nil && !s.outage.Failed(err) {
			s.log.Error("payment worker: looking for the next retry failed", "err", err)
		}
		return s.cfg.PollInterval
	}
	if next == nil {
		return s.cfg.PollInterval
	}
	return min(max(time.Until(*next), time.Millisecond), s.cfg.PollInterval)
}

// detached gives a short database statement its own deadline, outliving a
// Run that is stopping: a claim made or an answer the provider gave is
// worth recording.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// errClaimLost: a settle found its claim gone. The row's lease ran out
// and another worker took it over; that one settles it.
var errClaimLost = errors.New("claim taken over by another worker")

// logSettleError reports a job whose outcome could not be recorded: the
// row stays claimed and is tried again, with the same idempotency key,
// once its lease runs out.
func (s *Service) logSettleError(ctx context.Context, kind, id string, err error) {
	if errors.Is(err, errClaimLost) {
		s.log.WarnContext(ctx, "payment worker: claim taken over; the other worker settles it", "kind", kind, "id", id)
		return
	}
	if s.outage.Failed(err) {
		return // retried after the lease, like any other
	}
	s.log.ErrorContext(ctx, "payment worker: recording the outcome failed; retried after the lease", "kind", kind, "id", id, "err", err)
}
