package fuzz_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzReplayDeadLetter fuzzes the id of a replay (the route reads no body).
// The shop holds three dead letters, as a handler would have left them:
// one whose replay applies ($DEAD_APPLIES), one whose handler fails again
// ($DEAD_FAILS: a 409 that records the new error on the letter), and one
// staff discarded ($DEAD_DISCARDED).
func FuzzReplayDeadLetter(f *testing.F) {
	s := startShop(f)
	letter := func(payload, resolution string) string {
		f.Helper()
		var id int64
		err := s.db.QueryRow(`INSERT INTO bus.dead_letters (message_id, topic, handler, payload, error, attempts, resolved_at, resolution)
			VALUES ($1, 'order.cancelled.v1', 'product.release_on_cancel', $2, 'failed in a test', 5,
			        CASE WHEN $3 = '' THEN NULL ELSE now() END, nullif($3, '')) RETURNING id`,
			uuid.NewString(), payload, resolution).Scan(&id)
		if err != nil {
			f.Fatal(err)
		}
		return strconv.FormatInt(id, 10)
	}
	ids := map[string]string{
		"$DEAD_APPLIES":   letter(`{"order_id":"`+uuid.NewString()+`","reason":"customer"}`, ""),
		"$DEAD_FAILS":     letter(`{"order_id":"not an id","reason":"customer"}`, ""),
		"$DEAD_DISCARDED": letter(`{"order_id":"`+uuid.NewString()+`","reason":"customer"}`, "discarded"),
	}
	fill := func(id string) string {
		for k, v := range ids {
			id = strings.ReplaceAll(id, k, v)
		}
		return url.PathEscape(id)
	}
	replay := func(id string) string { return "/api/v1/admin/dead-letters/" + fill(id) + "/replay" }
	s.reaches(f, "POST", replay("$DEAD_APPLIES"), nil, s.asAdmin())
	for _, id := range []string{"$DEAD_APPLIES", "$DEAD_FAILS", "$DEAD_DISCARDED", "0", "-1", "999999",
		"9223372036854775807", "9223372036854775808", "1e3", "0x1", "+1", " 1", "01", "", "abc", "%00", strings.Repeat("9", 1000)} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		s.send(t, "POST", replay(id), nil, s.asAdmin())
	})
}
