package provider

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
)

// Kinds of operation.
const (
	KindAuthorize = "authorize"
	KindCapture   = "capture"
	KindRefund    = "refund"
)

// Record is one operation the test provider performed.
type Record struct {
	Kind    string
	Key     string // idempotency key, unique per kind
	Ref     string // the id the provider gave out
	Outcome string
	Method  string
	Amount  string // "12.50"
	Target  string // the authorization captured, the capture refunded
}

// ErrTargetTaken means another capture already took the authorization.
var ErrTargetTaken = errors.New("target already taken")

// Records are the test provider's books.
type Records interface {
	// Find returns the operation of kind made with key.
	Find(ctx context.Context, kind, key string) (Record, bool, error)
	// ByRef returns the operation that gave out ref.
	ByRef(ctx context.Context, ref string) (Record, bool, error)
	// Add stores r unless an operation of its kind and key exists, and
	// returns the stored one. A capture whose target another capture took
	// fails with ErrTargetTaken.
	Add(ctx context.Context, r Record) (Record, error)
	// AddToTarget stores r, a capture, only if its target is an
	// operation of kind targetKind with outcome targetOutcome and r's
	// amount, and no operation of r's kind has r's key or r's target yet;
	// it reports whether it stored r. When it did not, nothing changed:
	// the caller looks into why with ByRef and Add.
	AddToTarget(ctx context.Context, r Record, targetKind, targetOutcome string) (bool, error)
	// AddRefund stores r, a refund, only if its target is a capture done,
	// no refund has r's key, and the refunds of the capture with r add up
	// to no more than it; it reports whether it stored r.
	AddRefund(ctx context.Context, r Record) (bool, error)
	// Count counts the operations of kind.
	Count(ctx context.Context, kind string) (int, error)
}

// MemoryRecords keeps the books in memory: for tests, and for a provider
// that may forget everything at restart.
type MemoryRecords struct {
	mu     sync.Mutex
	byKey  map[[2]string]Record // kind, key
	byRef  map[string]Record
	target map[[2]string]bool // kind, target
}

// NewMemoryRecords returns empty books.
func NewMemoryRecords() *MemoryRecords {
	return &MemoryRecords{byKey: map[[2]string]Record{}, byRef: map[string]Record{}, target: map[[2]string]bool{}}
}

// Find implements Records.
func (m *MemoryRecords) Find(_ context.Context, kind, key string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byKey[[2]string{kind, key}]
	return r, ok, nil
}

// ByRef implements Records.
func (m *MemoryRecords) ByRef(_ context.Context, ref string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byRef[ref]
	return r, ok, nil
}

// Add implements Records.
func (m *MemoryRecords) Add(_ context.Context, r Record) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byKey[[2]string{r.Kind, r.Key}]; ok {
		return old, nil
	}
	if r.Kind == KindCapture && m.target[[2]string{r.Kind, r.Target}] {
		return Record{}, ErrTargetTaken
	}
	m.store(r)
	return r, nil
}

// AddToTarget implements Records.
func (m *MemoryRecords) AddToTarget(_ context.Context, r Record, targetKind, targetOutcome string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.byRef[r.Target]
	if !ok || t.Kind != targetKind || t.Outcome != targetOutcome || t.Amount != r.Amount {
		return false, nil
	}
	if _, ok := m.byKey[[2]string{r.Kind, r.Key}]; ok || m.target[[2]string{r.Kind, r.Target}] {
		return false, nil
	}
	m.store(r)
	return true, nil
}

// AddRefund implements Records.
func (m *MemoryRecords) AddRefund(_ context.Context, r Record) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.byRef[r.Target]
	if !ok || t.Kind != KindCapture || t.Outcome != outcomeDone {
		return false, nil
	}
	if _, ok := m.byKey[[2]string{r.Kind, r.Key}]; ok {
		return false, nil
	}
	left := cents(t.Amount) - cents(r.Amount)
	for k, op := range m.byKey {
		if k[0] == KindRefund && op.Target == r.Target {
			left -= cents(op.Amount)
		}
	}
	if left < 0 {
		return false, nil
	}
	m.store(r)
	return true, nil
}

// cents reads an amount as TestMode writes it ("12.50").
func cents(amount string) int64 {
	n, _ := strconv.ParseInt(strings.Replace(amount, ".", "", 1), 10, 64)
	return n
}

// store keeps r; m.mu is held.
func (m *MemoryRecords) store(r Record) {
	if r.Kind == KindCapture {
		m.target[[2]string{r.Kind, r.Target}] = true
	}
	m.byKey[[2]string{r.Kind, r.Key}] = r
	m.byRef[r.Ref] = r
}

// Count implements Records.
func (m *MemoryRecords) Count(_ context.Context, kind string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.byKey {
		if k[0] == kind {
			n++
		}
	}
	return n, nil
}
