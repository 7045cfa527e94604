// Package faultproxy puts a misbehaving network between ssecfs and a real
// S3 server, on loopback: a TCP proxy that adds latency and can cap the
// bandwidth of each direction, as a distant server behind a home line
// would (for the benchmark), and a TLS-terminating HTTP proxy that injects
// faults by request kind and rate (for the reliability tests).
package faultproxy

import (
	"net"
	"sync"
	"time"
)

// LinkOptions shape the network a Link plays.
type LinkOptions struct {
	// OneWay is added in each direction. Without a cap it does not limit
	// throughput: a stream pays it once per round trip.
	OneWay time.Duration
	// Up caps client→upstream and Down upstream→client, in bytes per
	// second; 0 leaves the direction uncapped. A cap is one pipe shared by
	// every connection through the proxy, as a home uplink is: 8 parallel
	// uploads share Up, they do not get 8 times it.
	Up, Down int64
}

// Link is a TCP proxy that plays a network path: every chunk waits for
// its direction's bandwidth cap, if any, then travels for the one-way
// delay. It is pipelined: a chunk is released at the time it got through
// the cap plus the delay whatever is still queued before it, so a stream
// keeps its throughput (up to the cap) and only pays the delay once per
// round trip, as on a long fat network. TLS passes through untouched.
type Link struct {
	Addr     string // host:port to dial instead of the server
	l        net.Listener
	delay    time.Duration
	up, down *bucket // nil: uncapped
	to       string
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{} // guarded by mu; closed by Close
	done     chan struct{}         // closed by Close: ends waits for the cap
	stop     sync.Once
}

// NewLatency listens on a free loopback port and forwards to upstream
// (host:port) with oneWay added in each direction and no cap.
func NewLatency(upstream string, oneWay time.Duration) (*Link, error) {
	return NewLink(upstream, LinkOptions{OneWay: oneWay})
}

// NewLink listens on a free loopback port and forwards to upstream
// (host:port) through the network o describes.
func NewLink(upstream string, o LinkOptions) (*Link, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Link{Addr: l.Addr().String(), l: l, delay: o.OneWay, to: upstream,
		conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	if o.Up > 0 {
		p.up = newBucket(o.Up, capBurst)
	}
	if o.Down > 0 {
		p.down = newBucket(o.Down, capBurst)
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *Link) serve() {
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

// cappedReadBuffer is the receive buffer of the proxy's socket on the
// sending side of a capped direction. Loopback autotuning grows it, and
// the sender fills it at loopback speed and counts it as sent: behind a
// 1 MiB/s cap a client got 1.3 MiB further ahead of the link without this
// (7.0 MiB written in 2 s against 5.7, its own send buffer being the rest),
// a buffer a home router does not add. A small one keeps the sender
// blocked as TCP blocks it behind a slow link.
const cappedReadBuffer = 256 << 10

// pair runs both directions of one connection and forgets it when both end.
func (p *Link) pair(c, up net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	for _, s := range []struct {
		src net.Conn
		b   *bucket
	}{{c, p.up}, {up, p.down}} {
		if tc, ok := s.src.(*net.TCPConn); ok && s.b != nil {
			tc.SetReadBuffer(cappedReadBuffer)
		}
	}
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); p.pipe(up, c, p.up) }()
	go func() { defer both.Done(); p.pipe(c, up, p.down) }()
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
// never waits for the writer, so delays overlap instead of adding up. With
// a cap (b not nil) the reader waits for the cap before it reads on: the
// link's serialization comes before its propagation delay, the queue holds
// only what is in flight (cap x delay), and the sender feels the cap as
// TCP backpressure instead of filling the queue at loopback speed.
func (p *Link) pipe(dst, src net.Conn, b *bucket) {
	q := make(chan chunk, 4096)
	go func() {
		for {
			buf := bufs.Get().(*[]byte)
			n, err := src.Read(*buf)
			if n > 0 {
				sent := time.Now()
				if b != nil {
					// The reservation's time, not the wake-up's:
					// a late wake-up must not add to the delay.
					sent = b.reserve(sent, n)
					p.sleepUntil(sent)
				}
				q <- chunk{sent.Add(p.delay), (*buf)[:n]}
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

// sleepUntil waits until t or until the proxy closes: with a low cap and
// many connections the bucket can be booked seconds ahead, and Close
// should not wait for that.
func (p *Link) sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-p.done:
	}
}

// Close stops listening and cuts every connection.
func (p *Link) Close() {
	p.stop.Do(func() { close(p.done) })
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// capBurst is what a cap lets through at once after an idle spell: one
// chunk (the largest read), so that the rate holds over windows of a few
// milliseconds and a burst cannot outrun it.
const capBurst = 64 << 10

// bucket is a token bucket of burst bytes refilled at a rate, shared by
// every connection in one direction. It is kept as a reservation book
// (GCRA): free is when everything reserved so far has gone through at the
// rate. A chunk books its bytes at the end of the book and may pass once
// the book, less the burst, is due; the callers then pass in the order
// they booked, so connections share the rate fairly chunk by chunk, and
// a sleep that overshoots does not cost the next chunk its turn.
type bucket struct {
	perByte float64       // nanoseconds per byte: 1e9 / rate
	burst   time.Duration // the time burst bytes take at the rate
	mu      sync.Mutex
	free    time.Time // guarded by mu
}

func newBucket(rate, burst int64) *bucket {
	b := &bucket{perByte: 1e9 / float64(rate)}
	b.burst = time.Duration(float64(burst) * b.perByte)
	return b
}

// reserve books n bytes at now and returns when they may pass. Over any
// window of length T the bytes that pass are at most rate x T + burst.
func (b *bucket) reserve(now time.Time, n int) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free.Before(now) {
		// Idle: time unused is not saved up beyond the burst.
		b.free = now
	}
	b.free = b.free.Add(time.Duration(float64(n) * b.perByte))
	return b.free.Add(-b.burst)
}
