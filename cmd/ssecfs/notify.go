package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// notifier speaks systemd's notify protocol (sd_notify(3)) to the socket in
// NOTIFY_SOCKET, for units of Type=notify running "ssecfs mount -f": the
// service is started once the mount answers (READY=1), shows what it waits
// for (STATUS=), says when it stops (STOPPING=1), and while the uploads
// before exit make progress asks for more time than TimeoutStopSec=
// (EXTEND_TIMEOUT_USEC=), so that a slow uplink is not cut off but a stuck
// one is. A nil notifier sends nothing.
type notifier struct {
	mu   sync.Mutex
	conn *net.UnixConn
}

// newNotifier returns the notifier of NOTIFY_SOCKET, or nil. The variable
// is removed so that no child (a --key-command) inherits it. An abstract
// socket is written "@name"; Go's net package maps the "@".
func newNotifier() (*notifier, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	if name == "" {
		return nil, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return nil, fmt.Errorf("NOTIFY_SOCKET %q: not a socket path or abstract name", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SOCKET: %w", err)
	}
	return &notifier{conn: conn}, nil
}

// send sends one datagram of lines, newline-separated. Failures are
// returned for the log; systemd going away must not stop the mount.
func (n *notifier) send(lines ...string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := n.conn.Write([]byte(strings.Join(lines, "\n")))
	return err
}

func (n *notifier) ready(status string) error    { return n.send("READY=1", "STATUS="+status) }
func (n *notifier) status(status string) error   { return n.send("STATUS=" + status) }
func (n *notifier) stopping(status string) error { return n.send("STOPPING=1", "STATUS="+status) }

// extend asks systemd for d more before it kills the service.
func (n *notifier) extend(d time.Duration, status string) error {
	return n.send(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", d.Microseconds()), "STATUS="+status)
}

func (n *notifier) close() {
	if n != nil {
		n.conn.Close()
	}
}
