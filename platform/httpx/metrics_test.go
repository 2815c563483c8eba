package httpx

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// heldCollector's Collect waits until release is closed, as a registry
// that takes long to gather would; entered receives one value per Collect.
type heldCollector struct {
	desc    *prometheus.Desc
	entered chan struct{}
	release chan struct{}
}

func (h *heldCollector) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *heldCollector) Collect(ch chan<- prometheus.Metric) {
	h.entered <- struct{}{}
	<-h.release
	ch <- prometheus.MustNewConstMetric(h.desc, prometheus.GaugeValue, 1)
}

// /metrics is never refused by the in-flight bound, and anyone may call
// it: each scrape gathers and encodes the whole registry, so scrapes have
// a small bound of their own. Beyond it a scrape is answered 503 with
// Retry-After at once, without gathering anything.
func TestMetrics_ScrapesBeyondTheirBoundAre503AtOnce(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	held := &heldCollector{
		desc:    prometheus.NewDesc("test_held", "A gauge that takes its time.", nil, nil),
		entered: make(chan struct{}, 64),
		release: make(chan struct{}),
	}
	m.Registry.MustRegister(held)
	r := gin.New()
	r.Use(RequestIDs())
	r.GET("/metrics", m.Handler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	var wg sync.WaitGroup
	defer wg.Wait()
	for range MaxScrapesInFlight {
		wg.Go(func() {
			if resp, body := get(t, srv.URL+"/metrics"); resp.StatusCode != http.StatusOK {
				t.Errorf("a scrape within the bound: %d %.200s", resp.StatusCode, body)
			}
		})
	}
	for range MaxScrapesInFlight {
		<-held.entered
	}

	answered := make(chan *http.Response, 1)
	go func() {
		resp, _ := get(t, srv.URL+"/metrics")
		answered <- resp
	}()
	select {
	case resp := <-answered:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusServiceUnavailable ||
			err != nil || s < 1 || resp.Header.Get("Content-Type") != ProblemContentType {
			t.Errorf("a scrape beyond the bound: %d Retry-After %q %s, want a 503 problem with Retry-After",
				resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
		}
	case <-held.entered:
		t.Errorf("a scrape beyond the bound of %d gathered the registry", MaxScrapesInFlight)
		close(held.release)
		<-answered
		return
	}
	close(held.release)
	wg.Wait()
	if resp, body := get(t, srv.URL+"/metrics"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a scrape once the others ended: %d %.200s", resp.StatusCode, body)
	}
}
