package app_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/modules/order"
	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/modules/product"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
)

// sagaHop is one hop of the order saga on the bus: the handler, the
// event it handles, the module it runs in and that module's schema (its
// statements carry the schema's role).
type sagaHop struct{ handler, event, module, schema string }

// confirmedSaga is every hop of an order that ends confirmed, in order.
var confirmedSaga = []sagaHop{
	{product.HandlerReserveStock, orderevents.OrderPlacedV1, product.Name, product.Schema},
	{order.HandlerOnStockReserved, productevents.StockReservedV1, order.Name, order.Schema},
	{payment.HandlerCharge, orderevents.PaymentRequestedV1, payment.Name, payment.Schema},
	{order.HandlerOnPaymentSucceeded, paymentevents.PaymentSucceededV1, order.Name, order.Schema},
	{product.HandlerCommitStock, orderevents.OrderConfirmedV1, product.Name, product.Schema},
}

// TestTracing_OneOrderIsOneTrace: the single binary with an in-memory
// exporter. One POST /orders, sent with the traceparent of a client span
// of the test's own, makes one trace that holds the HTTP server span (a
// child of the test's span), the publish span of every event of the saga
// and a handle span of every handler in product, order and payment, each
// a child of the publish span of the message it handled, the payment
// worker's claim and its provider call, and statement spans under the
// HTTP span and under every handler, each with its module's role.
func TestTracing_OneOrderIsOneTrace(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	w := newWorld(t, map[string]int{"LAMP": 5})

	ctx, client := telemetry.Tracer("test").Start(context.Background(), "test places an order", trace.WithSpanKind(trace.SpanKindClient))
	r, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"LAMP": 1}, testkit.Header("traceparent", telemetry.Traceparent(ctx)))
	client.End()
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	w.WaitStatus(t, o.ID, "confirmed")

	id := client.SpanContext().TraceID()
	spans := waitForTrace(t, rec, id, func(tr traceView) bool {
		for _, h := range confirmedSaga {
			if len(tr.outcome("handle "+h.handler, "applied")) == 0 {
				return false
			}
		}
		return len(tr.prefixed("payment.provider ")) > 0 && len(tr.named("POST /api/v1/orders")) > 0
	})
	tr := newTraceView(spans)
	defer func() {
		if t.Failed() {
			t.Logf("trace %s:\n%s", id, telemetrytest.Tree(spans))
		}
	}()

	// The HTTP server span is the test's span's child.
	https := tr.named("POST /api/v1/orders")
	if len(https) != 1 {
		t.Fatalf("%d spans POST /api/v1/orders in the trace, want 1", len(https))
	}
	httpSpan := https[0]
	if httpSpan.SpanKind() != trace.SpanKindServer || httpSpan.Parent().SpanID() != client.SpanContext().SpanID() {
		t.Errorf("POST /api/v1/orders: kind %v, parent %s; want a server span, child of the test's span %s",
			httpSpan.SpanKind(), httpSpan.Parent().SpanID(), client.SpanContext().SpanID())
	}
	if pubs := tr.publishesOf(orderevents.OrderPlacedV1); len(pubs) != 1 || !tr.under(pubs[0], httpSpan) {
		t.Errorf("%d publish spans of %s; want one, under the HTTP span", len(pubs), orderevents.OrderPlacedV1)
	}
	tr.checkStatements(t, httpSpan, db.RoleFor(order.Schema))

	// Each hop: a handle span per attempt, child of the publish span of
	// the message it handled, with statements of its module's role.
	for _, h := range confirmedSaga {
		handles := tr.named("handle " + h.handler)
		if len(handles) == 0 {
			t.Errorf("no span handle %s", h.handler)
			continue
		}
		for _, s := range handles {
			tr.checkHandle(t, s, h)
		}
		for _, s := range tr.outcome("handle "+h.handler, "applied") {
			tr.checkStatements(t, s, db.RoleFor(h.schema))
		}
	}

	// The payment worker's claim carries the context stored with its row:
	// the charge handler's, and the provider's call is within it.
	works := tr.prefixed("payment.work ")
	if len(works) == 0 {
		t.Error("no span payment.work in the trace")
	}
	for _, s := range works {
		if len(tr.ancestors(s, "handle "+payment.HandlerCharge)) == 0 {
			t.Errorf("span %s is not under handle %s", s.Name(), payment.HandlerCharge)
		}
	}
	for _, s := range tr.prefixed("payment.provider ") {
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %s: kind %v, want client", s.Name(), s.SpanKind())
		}
		if len(tr.prefixedAncestors(s, "payment.work ")) == 0 {
			t.Errorf("span %s is not under a payment.work span", s.Name())
		}
	}
	// The payment's success is published inside the worker's claim.
	for _, p := range tr.publishesOf(paymentevents.PaymentSucceededV1) {
		if len(tr.prefixedAncestors(p, "payment.work ")) == 0 {
			t.Errorf("span %s is not under a payment.work span", p.Name())
		}
	}
}

// TestTracing_ARetriedHandlerShowsItsAttempts: the stock reservation of an
// order fails once, transiently, and is applied when the bus tries it
// again; the trace shows both attempts, each a handle span child of the
// same publish span: the first marked failed (status Error, outcome
// retry_transient, failure transient), the second applied.
//
// The failure is made from outside, as the database would make it: the
// test locks the stock table against writers, waits until the handler's
// statement waits on that lock, and cancels the statement
// (pg_cancel_backend: 57014, transient to the bus), then lets go.
func TestTracing_ARetriedHandlerShowsItsAttempts(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	w := newWorld(t, map[string]int{"LAMP": 5})

	conn := superuserConn(t, w.shop.DatabaseURL)
	tx, err := conn.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }() // rolled back below; again is harmless
	var holder int
	if err := tx.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	// A table lock, not a row lock: locking a row takes a transaction id,
	// and an open transaction with one holds back every PostgreSQL bus
	// subscriber of the server (each reads only what committed before the
	// oldest transaction still running), other tests' shops too.
	if _, err := tx.ExecContext(t.Context(), `LOCK TABLE `+product.Schema+`.inventory IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	ctx, client := telemetry.Tracer("test").Start(context.Background(), "test places an order", trace.WithSpanKind(trace.SpanKindClient))
	r, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"LAMP": 1}, testkit.Header("traceparent", telemetry.Traceparent(ctx)))
	client.End()
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}

	// The reservation's statement waits on the test's lock: cancel it.
	waiter := 0
	deadline := time.Now().Add(60 * time.Second)
	for waiter == 0 {
		err := conn.QueryRowContext(t.Context(),
			`SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1`, holder).Scan(&waiter)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if waiter == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no statement waited on the stock table's lock within 60s; the database's sessions:\n%s", sessions(t, conn))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var cancelled bool
	if err := conn.QueryRowContext(t.Context(), `SELECT pg_cancel_backend($1)`, waiter).Scan(&cancelled); err != nil || !cancelled {
		t.Fatalf("cancel the waiting statement of backend %d: %v %v", waiter, cancelled, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	w.WaitStatus(t, o.ID, "confirmed")
	// The bus counted the failure as transient (whatever the spans say).
	if n := retriedTransiently(t, w.shop.URL, product.HandlerReserveStock); n < 1 {
		t.Fatalf("%s was retried transiently %v times, want at least once: the cancelled statement made no failure", product.HandlerReserveStock, n)
	}

	id := client.SpanContext().TraceID()
	name := "handle " + product.HandlerReserveStock
	spans := waitForTrace(t, rec, id, func(tr traceView) bool {
		return len(tr.outcome(name, "retry_transient")) > 0 && len(tr.outcome(name, "applied")) > 0 &&
			len(tr.outcome("handle "+product.HandlerCommitStock, "applied")) > 0
	})
	tr := newTraceView(spans)
	defer func() {
		if t.Failed() {
			t.Logf("trace %s:\n%s", id, telemetrytest.Tree(spans))
		}
	}()
	attempts := tr.named(name)
	if len(attempts) < 2 {
		t.Fatalf("%d spans %s, want one per attempt: at least 2", len(attempts), name)
	}
	parent := attempts[0].Parent().SpanID()
	for _, s := range attempts {
		tr.checkHandle(t, s, confirmedSaga[0])
		if s.Parent().SpanID() != parent {
			t.Errorf("the attempts of %s have different parents: %s and %s; want the one publish span", name, parent, s.Parent().SpanID())
		}
	}
	failed := tr.outcome(name, "retry_transient")[0]
	if failed.Status().Code != codes.Error {
		t.Errorf("the failed attempt's status: %v, want Error", failed.Status())
	}
	if f, _ := telemetrytest.Attr(failed, "modshop.failure"); f != "transient" {
		t.Errorf("the failed attempt: modshop.failure=%q, want transient", f)
	}
	applied := tr.outcome(name, "applied")
	if len(applied) != 1 {
		t.Fatalf("%d attempts of %s applied, want 1", len(applied), name)
	}
	if !applied[0].StartTime().After(failed.StartTime()) {
		t.Error("the applied attempt started before the failed one")
	}
	if applied[0].Status().Code == codes.Error {
		t.Errorf("the applied attempt's status: %v", applied[0].Status())
	}
}

// retriedTransiently reads from the shop's /metrics how often handler
// failed transiently and was retried.
func retriedTransiently(t *testing.T, base, handler string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	prefix := `modshop_bus_messages_retried_total{handler="` + handler + `",kind="transient"} `
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// sessions describes the sessions of conn's database, for a failure
// message.
func sessions(t *testing.T, conn *sql.DB) string {
	rows, err := conn.QueryContext(context.Background(), `SELECT pid, usename, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),
		pg_blocking_pids(pid)::text, left(query, 160) FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var pid int
		var user, state, waitType, wait, blockers, query sql.NullString
		if err := rows.Scan(&pid, &user, &state, &waitType, &wait, &blockers, &query); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "  %d %s %s %s/%s blocked by %s: %s\n", pid, user.String, state.String, waitType.String, wait.String, blockers.String, query.String)
	}
	return b.String()
}

// superuserConn opens the shop's database as the tests' superuser.
func superuserConn(t *testing.T, url string) *sql.DB {
	t.Helper()
	conn, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitForTrace waits (generously: spans end after the order is confirmed,
// the stock's commit among them) until the trace has what done looks for,
// and returns its spans; it fails the test with the trace so far if it
// never does.
func waitForTrace(t *testing.T, rec *telemetrytest.Recorder, id trace.TraceID, done func(traceView) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		spans := rec.Trace(id)
		if done(newTraceView(spans)) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s is incomplete after 60s:\n%s", id, telemetrytest.Tree(spans))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// traceView looks up the spans of one trace.
type traceView struct {
	spans []sdktrace.ReadOnlySpan
	byID  map[trace.SpanID]sdktrace.ReadOnlySpan
}

func newTraceView(spans []sdktrace.ReadOnlySpan) traceView {
	tr := traceView{spans: spans, byID: map[trace.SpanID]sdktrace.ReadOnlySpan{}}
	for _, s := range spans {
		tr.byID[s.SpanContext().SpanID()] = s
	}
	return tr
}

func (tr traceView) named(name string) []sdktrace.ReadOnlySpan {
	return telemetrytest.Named(tr.spans, name)
}

func (tr traceView) prefixed(prefix string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr.spans {
		if strings.HasPrefix(s.Name(), prefix) {
			out = append(out, s)
		}
	}
	return out
}

// outcome is the spans called name whose modshop.outcome is outcome.
func (tr traceView) outcome(name, outcome string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr.named(name) {
		if v, _ := telemetrytest.Attr(s, "modshop.outcome"); v == outcome {
			out = append(out, s)
		}
	}
	return out
}

// isPublishOf reports whether s is the publish span of event: "publish
// <event>", with or without the event's version suffix.
func isPublishOf(s sdktrace.ReadOnlySpan, event string) bool {
	return s.Name() == "publish "+event || s.Name() == "publish "+strings.TrimSuffix(event, ".v1")
}

func (tr traceView) publishesOf(event string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr.spans {
		if isPublishOf(s, event) {
			out = append(out, s)
		}
	}
	return out
}

// ancestorsWhere returns the ancestors of s in the trace that match,
// nearest first.
func (tr traceView) ancestorsWhere(s sdktrace.ReadOnlySpan, match func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for p, ok := tr.byID[s.Parent().SpanID()]; ok; p, ok = tr.byID[p.Parent().SpanID()] {
		if match(p) {
			out = append(out, p)
		}
	}
	return out
}

func (tr traceView) ancestors(s sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	return tr.ancestorsWhere(s, func(p sdktrace.ReadOnlySpan) bool { return p.Name() == name })
}

func (tr traceView) prefixedAncestors(s sdktrace.ReadOnlySpan, prefix string) []sdktrace.ReadOnlySpan {
	return tr.ancestorsWhere(s, func(p sdktrace.ReadOnlySpan) bool { return strings.HasPrefix(p.Name(), prefix) })
}

// under reports whether s descends from a.
func (tr traceView) under(s, a sdktrace.ReadOnlySpan) bool {
	return len(tr.ancestorsWhere(s, func(p sdktrace.ReadOnlySpan) bool { return p.SpanContext().SpanID() == a.SpanContext().SpanID() })) > 0
}

// checkHandle checks one handle span of hop h: a consumer span with the
// bus's attributes, child of the publish span of h's event whose message
// it handled.
func (tr traceView) checkHandle(t *testing.T, s sdktrace.ReadOnlySpan, h sagaHop) {
	t.Helper()
	if s.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span %s: kind %v, want consumer", s.Name(), s.SpanKind())
	}
	for k, want := range map[string]string{"messaging.system": "modshop", "messaging.consumer.group.name": h.handler} {
		if got, _ := telemetrytest.Attr(s, k); got != want {
			t.Errorf("span %s: %s=%q, want %q", s.Name(), k, got, want)
		}
	}
	for _, k := range []string{"messaging.message.id", "modshop.attempt", "modshop.outcome"} {
		if v, ok := telemetrytest.Attr(s, k); !ok || v == "" {
			t.Errorf("span %s has no %s", s.Name(), k)
		}
	}
	parent, ok := tr.byID[s.Parent().SpanID()]
	if !ok || !isPublishOf(parent, h.event) {
		name := "(not in the trace)"
		if ok {
			name = parent.Name()
		}
		t.Errorf("span %s: parent %s %s, want the publish span of %s", s.Name(), s.Parent().SpanID(), name, h.event)
		return
	}
	if parent.SpanKind() != trace.SpanKindProducer {
		t.Errorf("span %s: kind %v, want producer", parent.Name(), parent.SpanKind())
	}
	for k, want := range map[string]string{"messaging.system": "modshop"} {
		if got, _ := telemetrytest.Attr(parent, k); got != want {
			t.Errorf("span %s: %s=%q, want %q", parent.Name(), k, got, want)
		}
	}
	if dest, _ := telemetrytest.Attr(parent, "messaging.destination.name"); "publish "+dest != parent.Name() {
		t.Errorf("span %s: messaging.destination.name=%q", parent.Name(), dest)
	}
	pid, _ := telemetrytest.Attr(parent, "messaging.message.id")
	if hid, _ := telemetrytest.Attr(s, "messaging.message.id"); pid == "" || hid != pid {
		t.Errorf("span %s handled message %q, its parent %s published %q", s.Name(), hid, parent.Name(), pid)
	}
}

// checkStatements checks that statement spans of role are under s: client
// spans "db <VERB>" with PostgreSQL's attributes and the statement's text.
func (tr traceView) checkStatements(t *testing.T, s sdktrace.ReadOnlySpan, role string) {
	t.Helper()
	n := 0
	for _, d := range tr.prefixed("db ") {
		if !tr.under(d, s) {
			continue
		}
		if r, _ := telemetrytest.Attr(d, "modshop.db.role"); r != role {
			continue
		}
		n++
		verb := strings.TrimPrefix(d.Name(), "db ")
		if verb == "" || verb != strings.ToUpper(verb) || strings.Contains(verb, " ") {
			t.Errorf("statement span %q: want db <VERB>", d.Name())
		}
		if d.SpanKind() != trace.SpanKindClient {
			t.Errorf("statement span %s: kind %v, want client", d.Name(), d.SpanKind())
		}
		if sys, _ := telemetrytest.Attr(d, "db.system.name"); sys != "postgresql" {
			t.Errorf("statement span %s: db.system.name=%q", d.Name(), sys)
		}
		q, _ := telemetrytest.Attr(d, "db.query.text")
		if q == "" || len(q) > 2000 {
			t.Errorf("statement span %s: db.query.text of %d bytes", d.Name(), len(q))
		}
		if ns, _ := telemetrytest.Attr(d, "db.namespace"); ns == "" {
			t.Errorf("statement span %s has no db.namespace", d.Name())
		}
	}
	if n == 0 {
		seen := map[string]int{}
		for _, d := range tr.prefixed("db ") {
			if tr.under(d, s) {
				r, _ := telemetrytest.Attr(d, "modshop.db.role")
				seen[r]++
			}
		}
		t.Errorf("no statement span of role %s under %s; the statements under it have the roles (role: count) %v", role, s.Name(), seen)
	}
}
