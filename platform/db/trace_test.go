package db_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
)

// tracedPool is a module pool of schema on a database of its own.
func tracedPool(t *testing.T, schema string, opts ...db.Option) (*sql.DB, string) {
	t.Helper()
	ctx := context.Background()
	dbURL := testkit.NewDatabase(t)
	admin, err := db.Open(ctx, dbURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := db.Provision(ctx, admin, schema); err != nil {
		t.Fatal(err)
	}
	pool, err := db.OpenModule(ctx, dbURL, schema, 2, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	var name string
	if err := pool.QueryRowContext(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return pool, name
}

// Inside a span, each statement of a module pool is a client span "db
// <VERB>", child of that span, with the statement, the database and the
// module's role; a failing one records its error and SQLSTATE.
func TestStatementSpans_ChildrenOfTheCallersSpanWithTheModulesRole(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	pool, database := tracedPool(t, "traced")

	ctx, parent := telemetry.Tracer("test").Start(context.Background(), "request")
	var one int
	if err := pool.QueryRowContext(ctx, "SELECT 1 /* traced */").Scan(&one); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.ExecContext(ctx, "  \n-- a comment\n(SELECT * FROM no_such_table)"); err == nil {
		t.Fatal("a statement on a missing table succeeded")
	}
	parent.End()

	spans := rec.Trace(parent.SpanContext().TraceID())
	sel := telemetrytest.Named(spans, "db SELECT")
	if len(sel) != 2 {
		t.Fatalf("want 2 db SELECT spans, got:\n%s", telemetrytest.Tree(spans))
	}
	ok, bad := sel[0], sel[1]
	for _, s := range sel {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("%s: parent %s kind %s, want a client child of the request span\n%s",
				s.Name(), s.Parent().SpanID(), s.SpanKind(), telemetrytest.Tree(spans))
		}
		for k, want := range map[string]string{
			db.AttrDBSystem: "postgresql", db.AttrDBNamespace: database, db.AttrDBRole: "modshop_traced",
		} {
			if got, _ := telemetrytest.Attr(s, k); got != want {
				t.Errorf("%s: %s = %q, want %q", s.Name(), k, got, want)
			}
		}
	}
	if text, _ := telemetrytest.Attr(ok, db.AttrDBQueryText); text != "SELECT 1 /* traced */" {
		t.Errorf("db.query.text = %q", text)
	}
	if ok.Status().Code == codes.Error {
		t.Errorf("the statement that succeeded is marked failed: %v", ok.Status())
	}
	if bad.Status().Code != codes.Error || len(bad.Events()) == 0 {
		t.Errorf("the failed statement: status %v, %d events; want an error recorded", bad.Status(), len(bad.Events()))
	}
	if code, _ := telemetrytest.Attr(bad, db.AttrDBStatus); code != "42P01" {
		t.Errorf("db.response.status_code = %q, want 42P01", code)
	}
}

// A statement outside any span makes none (never a root span); with
// TraceStatements(false) not even inside one.
func TestStatementSpans_NoneOutsideASpanNorWhenTurnedOff(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	pool, _ := tracedPool(t, "untraced_root")
	before := statementSpans(rec.Ended(), "-- outside any span")
	if _, err := pool.ExecContext(context.Background(), "SELECT 2 -- outside any span"); err != nil {
		t.Fatal(err)
	}
	if got := statementSpans(rec.Ended(), "-- outside any span"); got != before {
		t.Errorf("a statement outside any span made %d spans", got-before)
	}

	off, _ := tracedPool(t, "untraced_off", db.TraceStatements(false))
	ctx, parent := telemetry.Tracer("test").Start(context.Background(), "request")
	if _, err := off.ExecContext(ctx, "SELECT 3"); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if spans := rec.Trace(parent.SpanContext().TraceID()); len(spans) != 1 {
		t.Errorf("statement spans with TraceStatements(false):\n%s", telemetrytest.Tree(spans))
	}
}

func statementSpans(spans []sdktrace.ReadOnlySpan, marker string) int {
	n := 0
	for _, s := range spans {
		if text, _ := telemetrytest.Attr(s, db.AttrDBQueryText); strings.Contains(text, marker) {
			n++
		}
	}
	return n
}

func TestVerb_FirstKeywordUpperCase(t *testing.T) {
	for sql, want := range map[string]string{
		"select 1":                      "SELECT",
		"  INSERT INTO x VALUES (1)":    "INSERT",
		"with a as (select 1) select *": "WITH",
		"SAVEPOINT sp1":                 "SAVEPOINT",
		"-- note\n/* more */ update t":  "UPDATE",
		"(select 1) union (select 2)":   "SELECT",
		"delete from t":                 "DELETE",
		"":                              "QUERY",
		"-- ping":                       "QUERY",
	} {
		if got := db.Verb(sql); got != want {
			t.Errorf("Verb(%q) = %q, want %q", sql, got, want)
		}
	}
}

// A statement run with ActingAs names the role it acts as (the bus applies
// a module's handler in its own batch transaction, SET LOCAL ROLE to the
// module), not the role of the pool it runs on.
func TestStatementSpans_ActingAsNamesTheRoleThatRanIt(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	pool, _ := tracedPool(t, "actingbus")

	ctx, parent := telemetry.Tracer("test").Start(context.Background(), "handle")
	var one int
	if err := pool.QueryRowContext(ctx, "SELECT 1 /* as the pool */").Scan(&one); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRowContext(db.ActingAs(ctx, "modshop_products"), "SELECT 1 /* acting */").Scan(&one); err != nil {
		t.Fatal(err)
	}
	parent.End()
	want := map[string]string{"SELECT 1 /* as the pool */": "modshop_actingbus", "SELECT 1 /* acting */": "modshop_products"}
	spans := rec.Trace(parent.SpanContext().TraceID())
	seen := 0
	for _, s := range telemetrytest.Named(spans, "db SELECT") {
		text, _ := telemetrytest.Attr(s, db.AttrDBQueryText)
		role, _ := telemetrytest.Attr(s, db.AttrDBRole)
		if w, ok := want[text]; ok {
			seen++
			if role != w {
				t.Errorf("%q: role %q, want %q", text, role, w)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("want the 2 statements' spans, got:\n%s", telemetrytest.Tree(spans))
	}
}
