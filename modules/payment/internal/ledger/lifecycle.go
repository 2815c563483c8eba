package ledger

// status is where a payment or a refund stands. A row is recorded pending;
// the worker's claim makes it processing, and a retry or a stop hands it
// back as pending: bookkeeping of who works on it, not progress. The
// provider's answer settles it in a final status (captured or succeeded,
// or failed), which nothing changes any more.
type status string

const (
	pending    status = "pending"
	processing status = "processing"
	captured   status = "captured"  // a payment: the money was taken
	succeeded  status = "succeeded" // a refund: the money was given back
	failed     status = "failed"
)

// final reports whether the row is settled for good.
func (s status) final() bool { return s == captured || s == succeeded || s == failed }

// step is something that happens to a payment or refund row.
type step string

const (
	request step = "request" // the order asks (again): a row is recorded if there is none
	claim   step = "claim"   // the worker takes a row that is due, or whose claim outlived its lease
	settle  step = "settle"  // the provider did it
	refuse  step = "refuse"  // the provider said no for good
	retry   step = "retry"   // the provider did not answer: again later
	release step = "release" // the worker stops: the claim goes back
)

var steps = []step{request, claim, settle, refuse, retry, release}

// lifecycle is the life of one kind of row: payments settle as captured,
// refunds as succeeded.
type lifecycle struct{ done status }

var (
	paymentLife = lifecycle{done: captured}
	refundLife  = lifecycle{done: succeeded}
)

// statuses are the statuses a row of this kind can have.
func (l lifecycle) statuses() []status { return []status{pending, processing, l.done, failed} }

// next is the status a step moves a row in status from to; ok is false
// when the step does not apply there and the row stays as it is. A final
// row never moves; a request finds a row already there and records
// nothing (a refund that failed makes room for a new refund row, but
// stays failed itself). The statements that make each step say the same
// in their WHERE (status = 'pending' to claim, 'processing' to settle,
// refuse, retry or release; ON CONFLICT to record), and
// TestLifecycle_TheStatementsDoWhatTheTableSays holds them to it.
func (l lifecycle) next(from status, st step) (to status, ok bool) {
	switch {
	case st == claim && (from == pending || from == processing):
		return processing, true
	case st == settle && from == processing:
		return l.done, true
	case st == refuse && from == processing:
		return failed, true
	case (st == retry || st == release) && from == processing:
		return pending, true
	}
	return from, false
}
