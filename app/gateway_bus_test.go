package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// busProcess is a module process as the gateway's bus view sees it: it
// answers its local part of the bus to the staff's token, and records the
// requests about single dead letters it receives.
type busProcess struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	got  []string // method and path of dead-letter requests
}

func newBusProcess(t *testing.T, name, overview, letters string) *busProcess {
	t.Helper()
	p := &busProcess{name: name}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer staff" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"status":401,"title":"Unauthorized"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v1/admin/bus" && r.URL.Query().Get("scope") == "local":
			io.WriteString(w, overview)
		case r.URL.Path == "/api/v1/admin/dead-letters" && r.URL.Query().Get("scope") == "local":
			io.WriteString(w, letters)
		case strings.HasPrefix(r.URL.Path, "/api/v1/admin/dead-letters/"):
			p.mu.Lock()
			p.got = append(p.got, r.Method+" "+r.URL.Path)
			p.mu.Unlock()
			fmt.Fprintf(w, `{"id":1,"process":%q}`, name)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *busProcess) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// TestGatewayBus_MergesEveryProcessAndSendsEachLetterToItsOwner: the
// gateway's bus overview and dead-letter list are every process's local
// parts merged, each row with its process, a process that does not answer
// listed as unreachable; a dead letter's replay with ?process= goes to that
// process, one without to the /api/v1/admin route's; the staff's token is
// passed on and the processes' refusal is the answer.
func TestGatewayBus_MergesEveryProcessAndSendsEachLetterToItsOwner(t *testing.T) {
	t.Parallel()
	order := newBusProcess(t, "modshop-order",
		`{"process":"modshop-order","topics":[{"topic":"order.placed.v1","published":7,"last_published":"2026-01-01T00:00:07Z","pruned":0,"consumers":[]},
		  {"topic":"stock.reserved.v1","published":0,"last_published":null,"pruned":0,"consumers":[{"handler":"order.on_stock_reserved","process":"modshop-order","lag":0,"dead_letters":0}]}]}`,
		`{"items":[{"id":1,"handler":"order.on_stock_reserved","process":"modshop-order","failed_at":"2026-01-01T00:00:01Z"}]}`)
	product := newBusProcess(t, "modshop-product",
		`{"process":"modshop-product","topics":[{"topic":"order.placed.v1","published":0,"last_published":null,"pruned":0,"consumers":[{"handler":"product.reserve_stock","process":"modshop-product","lag":0,"dead_letters":1}]},
		  {"topic":"stock.reserved.v1","published":5,"last_published":"2026-01-01T00:00:05Z","pruned":0,"consumers":[]}]}`,
		`{"items":[{"id":1,"handler":"product.reserve_stock","process":"modshop-product","failed_at":"2026-01-01T00:00:02Z"}]}`)
	down := "http://" + freeAddr(t) // nothing listens there
	base := startGateway(t,
		"--route", "/api/v1/orders="+order.srv.URL, "--route", "/api/v1/admin="+order.srv.URL,
		"--route", "/api/v1/products="+product.srv.URL, "--route", "/api/v1/payments="+down)

	do := func(method, path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	status, body := do("GET", "/api/v1/admin/bus", "staff")
	var overview struct {
		Topics []struct {
			Topic     string `json:"topic"`
			Published int64  `json:"published"`
			Consumers []struct {
				Handler, Process string
			} `json:"consumers"`
		} `json:"topics"`
		Unreachable []string `json:"unreachable"`
	}
	if err := json.Unmarshal(body, &overview); status != http.StatusOK || err != nil {
		t.Fatalf("overview: %d %s %v", status, body, err)
	}
	got := map[string]string{}
	for _, tp := range overview.Topics {
		for _, c := range tp.Consumers {
			got[tp.Topic+" "+c.Handler] = c.Process
		}
		if want := map[string]int64{"order.placed.v1": 7, "stock.reserved.v1": 5}[tp.Topic]; tp.Published != want {
			t.Errorf("%s published %d through the gateway, want %d (its publisher's count)", tp.Topic, tp.Published, want)
		}
	}
	if len(got) != 2 || got["order.placed.v1 product.reserve_stock"] != "modshop-product" || got["stock.reserved.v1 order.on_stock_reserved"] != "modshop-order" {
		t.Errorf("merged consumers %v, want each process's handler with its process", got)
	}
	if len(overview.Unreachable) != 1 || overview.Unreachable[0] != down {
		t.Errorf("unreachable %v, want [%s]", overview.Unreachable, down)
	}

	status, body = do("GET", "/api/v1/admin/dead-letters", "staff")
	var letters struct {
		Items []struct {
			ID      int64
			Process string
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &letters); status != http.StatusOK || err != nil {
		t.Fatalf("dead letters: %d %s %v", status, body, err)
	}
	if len(letters.Items) != 2 || letters.Items[0].Process != "modshop-product" || letters.Items[1].Process != "modshop-order" {
		t.Errorf("merged dead letters %s, want the product process's (newer) then the order process's", body)
	}

	if status, _ := do("POST", "/api/v1/admin/dead-letters/1/replay?process=modshop-product", "staff"); status != http.StatusOK {
		t.Errorf("replay in the product process: %d", status)
	}
	if status, _ := do("DELETE", "/api/v1/admin/dead-letters/1?process=modshop-order", "staff"); status != http.StatusOK {
		t.Errorf("discard in the order process: %d", status)
	}
	if status, _ := do("GET", "/api/v1/admin/dead-letters/1", "staff"); status != http.StatusOK {
		t.Errorf("a letter without its process: %d", status)
	}
	if got := product.requests(); len(got) != 1 || got[0] != "POST /api/v1/admin/dead-letters/1/replay" {
		t.Errorf("the product process received %v, want the replay", got)
	}
	if got := order.requests(); len(got) != 2 || got[0] != "DELETE /api/v1/admin/dead-letters/1" || got[1] != "GET /api/v1/admin/dead-letters/1" {
		t.Errorf("the order process received %v, want the discard and the letter without a process (the /api/v1/admin route)", got)
	}
	if status, _ := do("POST", "/api/v1/admin/dead-letters/1/replay?process=modshop-nowhere", "staff"); status != http.StatusNotFound {
		t.Errorf("replay in an unknown process: %d, want 404", status)
	}

	if status, _ := do("GET", "/api/v1/admin/bus", ""); status != http.StatusUnauthorized {
		t.Errorf("overview without a token: %d, want the processes' 401", status)
	}
	if status, _ := do("GET", "/api/v1/admin/dead-letters", ""); status != http.StatusUnauthorized {
		t.Errorf("dead letters without a token: %d, want the processes' 401", status)
	}
}
