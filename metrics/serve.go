package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Listen opens addr for the metrics: HOST:PORT, or a unix socket as
// unix:PATH or an absolute PATH (made 0600: only its owner scrapes). A
// HOST:PORT must be a loopback address unless remote is set: the metrics
// tell how much a user backs up and when, which is nobody else's business.
func Listen(addr string, remote bool) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok || strings.HasPrefix(addr, "/") {
		if !ok {
			path = addr
		}
		os.Remove(path) // a socket left by a mount that died
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("--metrics %s: %w", addr, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("--metrics %s: %w", addr, err)
		}
		return l, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: want HOST:PORT (127.0.0.1:9101), unix:PATH or /PATH", addr)
	}
	if !remote {
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("--metrics %s: not a loopback address; the metrics would be open to the network (give --metrics-remote if that is meant)", addr)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	return l, nil
}

// Serve answers GET /metrics on l with c and the Go runtime's and the
// process's own metrics, until l is closed.
func Serve(l net.Listener, c *Collector, log *slog.Logger) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("metrics server stopped", "err", err)
	}
}
