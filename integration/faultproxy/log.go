package faultproxy

import (
	"io"
	"log"
)

// quietLog drops net/http's complaints about the connections the proxy cuts
// on purpose.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
