package faultproxy

import (
	"io"
	"net"
	"sync"
)

// A blackhole is the network of a laptop that slept, or a route that went
// away: packets are dropped, nobody says so. While it is on, the proxy
// forwards nothing on any connection, old or new, and answers nothing;
// the connections it saw stay dead afterwards (the network forgot them),
// and only connections made after it ends work. No connection is reset or
// closed by the proxy: a client learns of it only from its own timeouts
// and keepalive.
type blackhole struct {
	mu    sync.Mutex
	on    bool
	epoch int // counts the blackholes begun
}

// Blackhole turns the blackhole on or off.
func (f *Faulty) Blackhole(on bool) {
	f.hole.mu.Lock()
	defer f.hole.mu.Unlock()
	if on && !f.hole.on {
		f.hole.epoch++
	}
	f.hole.on = on
}

// dead says whether a connection accepted during epoch is dead now.
func (b *blackhole) dead(epoch int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.on || epoch != b.epoch
}

type holeListener struct {
	net.Listener
	hole *blackhole
}

func (l holeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.hole.mu.Lock()
	epoch := l.hole.epoch
	l.hole.mu.Unlock()
	return &holeConn{Conn: c, hole: l.hole, epoch: epoch}, nil
}

// holeConn drops what goes through it once dead: writes vanish, and reads
// return nothing until the client closes the connection.
type holeConn struct {
	net.Conn
	hole  *blackhole
	epoch int
}

func (c *holeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.hole.dead(c.epoch) {
		_, err = io.Copy(io.Discard, c.Conn) // until the client hangs up
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	return n, err
}

func (c *holeConn) Write(b []byte) (int, error) {
	if c.hole.dead(c.epoch) {
		return len(b), nil
	}
	return c.Conn.Write(b)
}
