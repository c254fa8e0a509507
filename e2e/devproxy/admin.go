package devproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/meshsession/meshsession/e2e/host"
)

// AdminHandler serves an Envoy-like admin interface: /ready, /stats (text,
// "name: value"), /stats/prometheus, /workers (JSON: each VM's health) and
// /logs (the filter's last log lines).
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := 0; i < p.host.Workers(); i++ {
			if p.host.Failed(i) == nil {
				fmt.Fprintln(w, "LIVE")
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "every wasm VM has failed")
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, s := range p.Stats() {
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.Text)
		}
	})
	mux.HandleFunc("GET /stats/prometheus", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		for _, s := range p.Stats() {
			name := promName(s.Name)
			fmt.Fprintf(w, "# TYPE %s %s\n", name, s.Type)
			if s.Type == "summary" {
				fmt.Fprintf(w, "%s_count %d\n%s_sum %d\n", name, s.Count, name, s.Sum)
				continue
			}
			fmt.Fprintf(w, "%s %d\n", name, s.Value)
		}
	})
	mux.HandleFunc("GET /workers", func(w http.ResponseWriter, _ *http.Request) {
		type vm struct {
			Worker  int    `json:"worker"`
			Healthy bool   `json:"healthy"`
			Error   string `json:"error,omitempty"`
		}
		var out []vm
		for i := 0; i < p.host.Workers(); i++ {
			v := vm{Worker: i, Healthy: true}
			if err := p.host.Failed(i); err != nil {
				v.Healthy, v.Error = false, firstLine(err)
			}
			out = append(out, v)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, l := range p.host.Logs() {
			fmt.Fprintf(w, "%s [worker %d] %s %s: %s\n", l.Time.Format("15:04:05.000"), l.Worker, l.Level, l.Source, l.Message)
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "meshsession dev proxy admin: /ready /stats /stats/prometheus /workers /logs")
	})
	return mux
}

// Stat is one statistic of the admin interface.
type Stat struct {
	Name  string
	Type  string // counter, gauge or summary (a histogram: count and sum)
	Value int64
	Count uint64
	Sum   int64
	Text  string // the /stats rendering
}

// Stats returns the proxy's own statistics and the plugin's metrics, the
// latter under Envoy's "wasmcustom." prefix, sorted by name.
func (p *Proxy) Stats() []Stat {
	prefix := "http." + p.env.Listener.StatPrefix + ".devproxy."
	c := func(name string, v int64) Stat {
		return Stat{Name: prefix + name, Type: "counter", Value: v, Text: fmt.Sprint(v)}
	}
	out := []Stat{
		c("requests", p.stats.requests.Load()),
		c("local_responses", p.stats.local.Load()),
		c("upstream_errors", p.stats.upstreamErrors.Load()),
		c("vm_failures", p.stats.vmFailures.Load()),
		c("fail_open_passthrough", p.stats.failOpen.Load()),
	}
	for i := 1; i <= 5; i++ {
		out = append(out, c(fmt.Sprintf("downstream_rq_%dxx", i), p.stats.status[i].Load()))
	}
	for _, m := range p.host.Metrics().All() {
		s := Stat{Name: "wasmcustom." + m.Name, Value: m.Value, Count: m.Count, Sum: m.Sum}
		switch m.Type {
		case host.MetricCounter:
			s.Type, s.Text = "counter", fmt.Sprint(m.Value)
		case host.MetricGauge:
			s.Type, s.Text = "gauge", fmt.Sprint(m.Value)
		default:
			s.Type, s.Text = "summary", fmt.Sprintf("count=%d sum=%d", m.Count, m.Sum)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// promName is an Envoy-style Prometheus name: envoy_ prefix, every
// character outside [a-zA-Z0-9_] replaced by '_'.
func promName(name string) string {
	var b strings.Builder
	b.WriteString("envoy_")
	for _, r := range name {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
