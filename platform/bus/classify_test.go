package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	amqp "github.com/rabbitmq/amqp091-go"
	"gorm.io/gorm"
)

// raised returns the error PostgreSQL sends for a statement that fails with
// SQLSTATE code, as a handler would get it through gorm.
func raised(t *testing.T, e *env, code string) error {
	t.Helper()
	err := e.mod.Exec(`DO $$ BEGIN RAISE EXCEPTION 'raised %', '` + code + `' USING ERRCODE = '` + code + `'; END $$`).Error
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Fatalf("raise %s: got %v", code, err)
	}
	return fmt.Errorf("apply: %w", err)
}

func TestIsTransient_ClassifiesWhatHandlersReturn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A connection refused, for real: nothing listens on port 1.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, refused := pgx.Connect(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if refused == nil {
		t.Fatal("connected to port 1")
	}
	// A statement that ran out of time on its context, for real.
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelDeadline()
	timedOut := e.mod.WithContext(deadline).Exec(`SELECT pg_sleep(5)`).Error
	uniqueErr := e.mod.Exec(`INSERT INTO things (key) VALUES ('x'), ('x')`).Error
	panicked := func() (err error) {
		h := &handler{name: "h", run: func(context.Context, *gorm.DB, Event) error {
			panic(&pgconn.PgError{Code: "40001"}) // however transient the cause looks
		}}
		return (&Bus{}).runHandler(context.Background(), h, Metadata{}, thingHappened{}, nil)
	}()

	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"serialization failure 40001", raised(t, e, "40001"), true},
		{"deadlock 40P01", raised(t, e, "40P01"), true},
		{"lock not available 55P03", raised(t, e, "55P03"), true},
		{"admin shutdown 57P01", raised(t, e, "57P01"), true},
		{"crash shutdown 57P02", raised(t, e, "57P02"), true},
		{"cannot connect now 57P03", raised(t, e, "57P03"), true},
		{"too many connections 53300", raised(t, e, "53300"), true},
		{"out of memory 53200", raised(t, e, "53200"), true},
		{"connection failure 08006", raised(t, e, "08006"), true},
		{"connection refused", refused, true},
		{"context deadline during a database call", timedOut, true},
		{"unique violation", uniqueErr, false},
		{"division by zero 22012", raised(t, e, "22012"), false},
		{"a plain error", errors.New("cannot handle this"), false},
		{"context cancelled", fmt.Errorf("apply: %w", context.Canceled), false},
		{"a panic", panicked, false},
		{"broker connection lost", fmt.Errorf("publish: %w", amqp.ErrClosed), true},
		{"broker forced the connection closed", &amqp.Error{Code: amqp.ConnectionForced, Reason: "shutdown"}, true},
		{"broker connection failed under the client", &amqp.Error{Code: amqp.FrameError, Reason: "EOF"}, true},
		{"broker: queue not found", &amqp.Error{Code: amqp.NotFound, Reason: "no queue", Recover: true}, false},
		{"marked transient", Transient(errors.New("the provider is down")), true},
		{"marked permanent over 40001", Permanent(raised(t, e, "40001")), false},
		{"marked permanent, wrapped", fmt.Errorf("apply: %w", Permanent(raised(t, e, "08006"))), false},
		{"outermost mark wins", Transient(Permanent(errors.New("x"))), true},
	}
	for _, c := range cases {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	if Transient(nil) != nil || Permanent(nil) != nil {
		t.Error("marking nil made an error")
	}
}
