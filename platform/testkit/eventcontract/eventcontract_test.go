package eventcontract

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// placed is the event as its golden file was written; the types below are
// deliberately changed copies of it.
type placed struct {
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Lines    []line    `json:"lines"`
	PlacedAt time.Time `json:"placed_at"`
}

type line struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

func (placed) EventName() string { return "test.placed.v1" }

var at = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

var original = placed{OrderID: "o1", UserID: "u1", Lines: []line{{ProductID: "p1", Quantity: 2}}, PlacedAt: at}

type withoutUser struct {
	OrderID  string    `json:"order_id"`
	Lines    []line    `json:"lines"`
	PlacedAt time.Time `json:"placed_at"`
}

func (withoutUser) EventName() string { return "test.placed.v1" }

type renamedUser struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Lines      []line    `json:"lines"`
	PlacedAt   time.Time `json:"placed_at"`
}

func (renamedUser) EventName() string { return "test.placed.v1" }

type numericOrderID struct {
	OrderID  int       `json:"order_id"`
	UserID   string    `json:"user_id"`
	Lines    []line    `json:"lines"`
	PlacedAt time.Time `json:"placed_at"`
}

func (numericOrderID) EventName() string { return "test.placed.v1" }

type textQuantity struct {
	OrderID  string     `json:"order_id"`
	UserID   string     `json:"user_id"`
	Lines    []textLine `json:"lines"`
	PlacedAt time.Time  `json:"placed_at"`
}

type textLine struct {
	ProductID string `json:"product_id"`
	Quantity  string `json:"quantity"`
}

func (textQuantity) EventName() string { return "test.placed.v1" }

type unixPlacedAt struct {
	OrderID  string `json:"order_id"`
	UserID   string `json:"user_id"`
	Lines    []line `json:"lines"`
	PlacedAt int64  `json:"placed_at"`
}

func (unixPlacedAt) EventName() string { return "test.placed.v1" }

type oneLine struct {
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Lines    line      `json:"lines"`
	PlacedAt time.Time `json:"placed_at"`
}

func (oneLine) EventName() string { return "test.placed.v1" }

type withNote struct {
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Lines    []line    `json:"lines"`
	PlacedAt time.Time `json:"placed_at"`
	Note     string    `json:"note"`
}

func (withNote) EventName() string { return "test.placed.v1" }

func TestCompare_DetectsEveryChangeToTheWireShape(t *testing.T) {
	golden, err := encode(original)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		changed  Event
		want     []string // kind path
		breaking bool
	}{
		{"unchanged", original, nil, false},
		{"field removed", withoutUser{"o1", []line{{"p1", 2}}, at}, []string{"removed user_id"}, true},
		{"field renamed", renamedUser{"o1", "u1", []line{{"p1", 2}}, at}, []string{"removed user_id", "added customer_id"}, true},
		{"string retyped to number", numericOrderID{1, "u1", []line{{"p1", 2}}, at}, []string{"retyped order_id"}, true},
		{"nested number retyped to string", textQuantity{"o1", "u1", []textLine{{"p1", "2"}}, at}, []string{"retyped lines.quantity"}, true},
		{"time retyped to number", unixPlacedAt{"o1", "u1", []line{{"p1", 2}}, at.Unix()}, []string{"retyped placed_at"}, true},
		{"array retyped to object", oneLine{"o1", "u1", line{"p1", 2}, at}, []string{"retyped lines"}, true},
		{"optional field added", withNote{"o1", "u1", []line{{"p1", 2}}, at, "gift"}, []string{"added note"}, false},
		{"another example value", placed{"o1", "u2", []line{{"p1", 2}}, at}, []string{"example user_id"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			changes, err := Compare(golden, c.changed)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			breaking := false
			for _, ch := range changes {
				got = append(got, ch.Kind.String()+" "+ch.Path)
				breaking = breaking || ch.Breaking()
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("changes %q, want %q", got, c.want)
			}
			if breaking != c.breaking {
				t.Errorf("breaking %v, want %v: %v", breaking, c.breaking, changes)
			}
		})
	}
}

// The golden file must decode into the type strictly, whatever the type
// marshals to: an unknown key, a key of the wrong JSON type, a field the
// golden file lacks and a key matching a field only when case is ignored
// are each reported.
func TestDecodeStrictly_ReportsWhatDoesNotFit(t *testing.T) {
	cases := []struct {
		name, golden string
		want         string // kind path
	}{
		{"unknown key", `{"order_id":"o1","user_id":"u1","lines":[{"product_id":"p1","quantity":2}],"placed_at":"2026-03-14T09:26:53Z","coupon":"x"}`, "removed coupon"},
		{"nested unknown key", `{"order_id":"o1","user_id":"u1","lines":[{"product_id":"p1","quantity":2,"sku":"s"}],"placed_at":"2026-03-14T09:26:53Z"}`, "removed sku"},
		{"wrong JSON type", `{"order_id":"o1","user_id":"u1","lines":[{"product_id":"p1","quantity":"2"}],"placed_at":"2026-03-14T09:26:53Z"}`, "retyped lines.quantity"},
		{"not a time", `{"order_id":"o1","user_id":"u1","lines":[{"product_id":"p1","quantity":2}],"placed_at":"yesterday"}`, "retyped (event)"},
		{"field missing", `{"order_id":"o1","lines":[{"product_id":"p1","quantity":2}],"placed_at":"2026-03-14T09:26:53Z"}`, "added user_id"},
		{"key matching only without case", `{"order_id":"o1","User_ID":"u1","lines":[{"product_id":"p1","quantity":2}],"placed_at":"2026-03-14T09:26:53Z"}`, "removed User_ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := decodeAny([]byte(c.golden))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ch := range decodeStrictly([]byte(c.golden), want, reflect.TypeFor[placed]()) {
				got = append(got, ch.Kind.String()+" "+ch.Path)
			}
			if !slices.Contains(got, c.want) {
				t.Errorf("changes %q, want %q among them", got, c.want)
			}
		})
	}
}

func TestUnsetFields_ListsEveryZeroValue(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
		want []string
	}{
		{"fully populated", original, nil},
		{"zero string and time", placed{OrderID: "o1", Lines: []line{{"p1", 2}}}, []string{"user_id", "placed_at"}},
		{"empty slice", placed{OrderID: "o1", UserID: "u1", PlacedAt: at}, []string{"lines"}},
		{"zero field of an element", placed{OrderID: "o1", UserID: "u1", Lines: []line{{ProductID: "p1"}}, PlacedAt: at}, []string{"lines.quantity"}},
		{"zero boolean", flagged{}, []string{"(event)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := unsetFields("", reflect.ValueOf(c.ev)); !slices.Equal(got, c.want) {
				t.Errorf("unset %q, want %q", got, c.want)
			}
		})
	}
}

type flagged struct {
	Active bool `json:"active"`
}

func (flagged) EventName() string { return "test.flagged.v1" }

func TestVersionRule_TypeNamesFollowTheVersion(t *testing.T) {
	cases := []struct {
		typ, event string
		ok         bool
	}{
		{"OrderPlaced", "order.placed.v1", true},
		{"OrderPlacedV2", "order.placed.v2", true},
		{"OrderPlacedV12", "order.placed.v12", true},
		{"OrderPlaced", "order.placed.v2", false},   // v2 reusing v1's type
		{"OrderPlacedV2", "order.placed.v1", false}, // v1 with a versioned type name
		{"OrderPlacedV3", "order.placed.v2", false},
		{"OrderPlaced", "order.placed", false}, // no version
	}
	for _, c := range cases {
		if err := versionRule(c.typ, c.event); (err == nil) != c.ok {
			t.Errorf("%s for %s: err %v, want ok %v", c.typ, c.event, err, c.ok)
		}
	}
}

func TestDeclaredEvents_FindsTypesWithAnEventNameMethod(t *testing.T) {
	dir := t.TempDir()
	src := `package events

type A struct{}

func (A) EventName() string { return "x.a.v1" }

type B struct{}

func (*B) EventName() string { return "x.b.v1" }

type NotAnEvent struct{}

func (NotAnEvent) Name() string { return "" }
`
	if err := os.WriteFile(filepath.Join(dir, "events.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	test := strings.ReplaceAll(src, "package events", "package events_test")
	test = strings.ReplaceAll(test, "A", "C")
	if err := os.WriteFile(filepath.Join(dir, "events_test.go"), []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := declaredEvents(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A", "B"}; !slices.Equal(got, want) {
		t.Errorf("declared %q, want %q", got, want)
	}
}

func TestExplain_SaysWhatToDo(t *testing.T) {
	msg := explain("testdata/test.placed.v1.json", reflect.TypeFor[placed](), []Change{{Path: "user_id", Kind: Removed, Detail: "in the golden file, not in the type"}})
	for _, want := range []string{
		"removed  user_id",
		"This breaks the event's consumers.",
		"Adding an optional field is compatible: update the golden file",
		"-update",
		"Removing, renaming or retyping a field is a new version",
		`placedV2, named "test.placed.v2"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}
