package ledger

import (
	"context"
	"sync"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// A charge recorded by a handler whose transaction can run code after it
// commits, while this process's worker runs, is recorded already claimed
// by that worker ('processing', attempt 1) and handed to it once the
// handler commits: the worker's own claim, a commit of its own per look,
// is saved (ADR 0039). The claim is the same as the worker's: its lease
// runs from the handler's commit, a settle holds it by its attempt count,
// and a claim whose process died before settling it is taken over once
// its lease runs out, as any other. Claims the worker has not started when
// it stops are given back, as it gives back its jobs in flight.

// handOvers are the claims handlers made for this process's worker and
// it has not started yet.
type handOvers struct {
	mu      sync.Mutex
	running bool // the worker runs: handlers may claim for it
	claims  []claimedPayment
}

// claimFor reports whether a handler recording a charge in tx claims it
// for this process's worker: tx must run code after its commit, and the
// worker must be running.
func (s *Service) claimFor(tx *gorm.DB) (db.AfterCommitter, bool) {
	ac, ok := tx.Statement.ConnPool.(db.AfterCommitter)
	if !ok {
		return nil, false
	}
	s.handed.mu.Lock()
	defer s.handed.mu.Unlock()
	return ac, s.handed.running
}

// handOver gives the worker a claim a handler committed. A worker that
// stopped meanwhile gets nothing: the claim is given back at once.
func (s *Service) handOver(p claimedPayment) {
	s.handed.mu.Lock()
	running := s.handed.running
	if running {
		s.handed.claims = append(s.handed.claims, p)
	}
	s.handed.mu.Unlock()
	if running {
		s.wakeUp()
		return
	}
	go s.giveBack(context.Background(), []claimedPayment{p})
}

// takeHanded takes up to n claims handed over and not started yet.
func (s *Service) takeHanded(n int) []claimedPayment {
	s.handed.mu.Lock()
	defer s.handed.mu.Unlock()
	n = min(n, len(s.handed.claims))
	out := append([]claimedPayment(nil), s.handed.claims[:n]...)
	s.handed.claims = s.handed.claims[n:]
	return out
}

// acceptHandOvers tells handlers whether they may claim for the worker.
// When it stops accepting, it returns the claims not started yet.
func (s *Service) acceptHandOvers(running bool) []claimedPayment {
	s.handed.mu.Lock()
	defer s.handed.mu.Unlock()
	s.handed.running = running
	if running {
		return nil
	}
	left := s.handed.claims
	s.handed.claims = nil
	return left
}

// giveBack gives claims back, their attempt not counted, for the next
// look (of this process or another) to claim again.
func (s *Service) giveBack(ctx context.Context, claims []claimedPayment) {
	for _, p := range claims {
		cctx, cancel := detached(ctx)
		err := handBackPayment(cctx, s.db, p, false)
		cancel()
		if err != nil {
			s.logSettleError(ctx, "payment", p.ID, err)
		}
	}
}
