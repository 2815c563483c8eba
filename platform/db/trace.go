package db

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/telemetry"
)

// Statement span attributes (OpenTelemetry's database conventions, and
// the module role that ran the statement).
const (
	AttrDBSystem    = "db.system.name"
	AttrDBQueryText = "db.query.text"
	AttrDBNamespace = "db.namespace"
	AttrDBStatus    = "db.response.status_code"
	AttrDBRole      = "modshop.db.role"
)

// MaxQueryText is the most of a statement's text a span carries, in bytes.
const MaxQueryText = 2000

// TraceStatements makes (on) or not (off) a span of each statement on the
// pool's connections; OpenModule makes them unless told otherwise. A
// statement gets a span only when its context already holds one (an HTTP
// request's, a bus handler's): statements outside any traced work, and
// the pool's own, make none.
func TraceStatements(on bool) Option {
	return func(cfg *pgxpool.Config) {
		if !on {
			cfg.ConnConfig.Tracer = nil
		}
	}
}

// statementTracer makes the spans of one pool's statements: "db SELECT"
// and the like, client spans, children of the span in the statement's
// context. It is a pgx QueryTracer, BatchTracer and CopyFromTracer.
type statementTracer struct {
	tracer trace.Tracer
	// attrs are the pool's own: the system, the database and the role.
	attrs []attribute.KeyValue
}

func newStatementTracer(database, role string) *statementTracer {
	return &statementTracer{
		tracer: telemetry.Tracer("db"),
		attrs: []attribute.KeyValue{
			attribute.String(AttrDBSystem, "postgresql"),
			attribute.String(AttrDBNamespace, database),
			attribute.String(AttrDBRole, role),
		},
	}
}

type actingRoleKey struct{}

// ActingAs tells the statement tracer that the statements run with ctx act
// as role (SET LOCAL ROLE inside a transaction of another role's pool: the
// bus applies a module's handler in its batch transaction as the module),
// so that their spans name the role that ran them.
func ActingAs(ctx context.Context, role string) context.Context {
	return context.WithValue(ctx, actingRoleKey{}, role)
}

// statementSpanKey marks a context in which the tracer started a span, so
// that the end of the statement ends that span and no other.
type statementSpanKey struct{}

// start begins the span of a statement whose text is sql, when ctx holds
// a span: the one check a statement outside any span costs.
func (t *statementTracer) start(ctx context.Context, verb, sql string) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	ctx, span := t.tracer.Start(ctx, "db "+verb,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(t.attrs...),
		trace.WithAttributes(attribute.String(AttrDBQueryText, truncate(sql, MaxQueryText))),
	)
	if role, ok := ctx.Value(actingRoleKey{}).(string); ok && role != "" {
		span.SetAttributes(attribute.String(AttrDBRole, role)) // the later value wins
	}
	return context.WithValue(ctx, statementSpanKey{}, span)
}

// end ends the span start began in ctx, if it did, recording err.
func (t *statementTracer) end(ctx context.Context, err error) {
	span, ok := ctx.Value(statementSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			span.SetAttributes(attribute.String(AttrDBStatus, pgErr.Code))
		}
	}
	span.End()
}

func (t *statementTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, Verb(data.SQL), data.SQL)
}

func (t *statementTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	t.end(ctx, data.Err)
}

// A batch is one span, "db BATCH", its statements' texts one per line.
func (t *statementTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	var text strings.Builder
	if data.Batch != nil {
		for _, q := range data.Batch.QueuedQueries {
			if text.Len() >= MaxQueryText {
				break
			}
			text.WriteString(q.SQL)
			text.WriteString(";\n")
		}
	}
	return t.start(ctx, "BATCH", text.String())
}

func (t *statementTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *statementTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	t.end(ctx, data.Err)
}

// A COPY is "db COPY".
func (t *statementTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	cols := make([]string, len(data.ColumnNames))
	for i, c := range data.ColumnNames {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	return t.start(ctx, "COPY", "COPY "+data.TableName.Sanitize()+" ("+strings.Join(cols, ", ")+") FROM STDIN")
}

func (t *statementTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromEndData) {
	t.end(ctx, data.Err)
}

// Verb is the first keyword of a statement, upper case (SELECT, INSERT,
// WITH, SAVEPOINT, ...), past leading blanks, comments and parentheses;
// "QUERY" when it starts with none.
func Verb(sql string) string {
	s := sql
	for {
		s = strings.TrimLeft(s, " \t\r\n(")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return "QUERY"
			}
			s = s[i+1:]
			continue
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s, "*/")
			if i < 0 {
				return "QUERY"
			}
			s = s[i+2:]
			continue
		}
		break
	}
	n := 0
	for n < len(s) && (s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z') {
		n++
	}
	if n == 0 {
		return "QUERY"
	}
	return strings.ToUpper(s[:n])
}

// truncate cuts s to at most max bytes, at a character boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
