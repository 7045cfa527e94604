// Package faultproxy puts a misbehaving network between ssecfs and a real
// S3 server, on loopback: a TCP proxy that adds latency without capping
// throughput (for the benchmark), and a TLS-terminating HTTP proxy that
// injects faults by request kind and rate (for the reliability tests).
package faultproxy

import (
	"net"
	"sync"
	"time"
)

// Latency is a TCP proxy that delays every chunk by a fixed one-way delay
// in each direction. It is pipelined: a chunk is released at its arrival
// time plus the delay whatever is still queued before it, so a stream keeps
// its throughput and only pays the delay once per round trip, as on a long
// fat network. TLS passes through untouched.
type Latency struct {
	Addr  string // host:port to dial instead of the server
	l     net.Listener
	delay time.Duration
	to    string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu; closed by Close
}

// NewLatency listens on a free loopback port and forwards to upstream
// (host:port) with oneWay added in each direction.
func NewLatency(upstream string, oneWay time.Duration) (*Latency, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Latency{Addr: l.Addr().String(), l: l, delay: oneWay, to: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *Latency) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.pair(c, up)
	}
}

// pair runs both directions of one connection and forgets it when both end.
func (p *Latency) pair(c, up net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); p.pipe(up, c) }()
	go func() { defer both.Done(); p.pipe(c, up) }()
	both.Wait()
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// bufs holds the chunks' buffers: a fresh 64 KiB per read made the
// proxy's allocation and zeroing show in profiles of the benchmark, on the
// cores the clients and servers it measures share.
var bufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func recycle(data []byte) {
	b := data[:cap(data)]
	bufs.Put(&b)
}

type chunk struct {
	due  time.Time
	data []byte // nil: the source closed
}

// pipe copies src to dst, each chunk held until its due time. The reader
// never waits for the writer, so delays overlap instead of adding up.
func (p *Latency) pipe(dst, src net.Conn) {
	q := make(chan chunk, 4096)
	go func() {
		for {
			buf := bufs.Get().(*[]byte)
			n, err := src.Read(*buf)
			if n > 0 {
				q <- chunk{time.Now().Add(p.delay), (*buf)[:n]}
			} else {
				bufs.Put(buf)
			}
			if err != nil {
				q <- chunk{time.Now().Add(p.delay), nil}
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.due)) // the injected delay itself
		if c.data == nil {
			// Half-close so that the other direction still drains.
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
		_, err := dst.Write(c.data)
		recycle(c.data)
		if err != nil {
			src.Close()
			for c := range q { // let the reader see its error and end
				if c.data == nil {
					return
				}
			}
			return
		}
	}
}

// Close stops listening and cuts every connection.
func (p *Latency) Close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
