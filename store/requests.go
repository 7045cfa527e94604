package store

import (
	"net/http"
	"strings"
	"time"
)

// Request describes one HTTP request to the server, for the metrics: its
// operation, never the object's name.
type Request struct {
	Op       string        // Ops lists them
	Status   int           // the answer's status; 0: no answer (network error, timeout)
	Retry    bool          // the same request again, after a failed try
	Duration time.Duration // until the answer's headers, or the failure
}

// Ops are the values of Request.Op, a fixed set.
var Ops = []string{"get", "head", "put", "copy", "list", "list_uploads", "create_multipart",
	"upload_part", "complete_multipart", "abort_multipart", "delete", "delete_many", "bucket", "other"}

// describe names what req does from its method and query, as the S3 API
// tells them apart.
func describe(req *http.Request, bucket string, x *exchange, resp *http.Response, took time.Duration) Request {
	r := Request{Op: opName(req, bucket), Duration: took}
	if resp != nil {
		r.Status = resp.StatusCode
	}
	if x != nil {
		this := req.Method + " " + req.URL.String()
		x.mu.Lock()
		r.Retry = x.last == this
		x.last = this
		x.mu.Unlock()
	}
	return r
}

func opName(req *http.Request, bucket string) string {
	q := req.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	// An object has a name after the bucket: /bucket/key path-style, /key
	// when the bucket is in the host.
	p := req.URL.Path
	if !strings.HasPrefix(req.URL.Host, bucket+".") {
		p = strings.TrimPrefix(strings.TrimPrefix(p, "/"), bucket)
	}
	object := strings.Trim(p, "/") != ""
	switch req.Method {
	case http.MethodGet:
		switch {
		case has("uploads"):
			return "list_uploads"
		case object:
			return "get"
		case has("list-type") || has("prefix") || has("delimiter") || len(q) == 0:
			return "list"
		}
		return "bucket"
	case http.MethodHead:
		if object {
			return "head"
		}
		return "bucket"
	case http.MethodPut:
		switch {
		case has("partNumber"):
			return "upload_part"
		case req.Header.Get("X-Amz-Copy-Source") != "":
			return "copy"
		case object:
			return "put"
		}
		return "bucket"
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "create_multipart"
		case has("uploadId"):
			return "complete_multipart"
		case has("delete"):
			return "delete_many"
		}
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return "abort_multipart"
		case object:
			return "delete"
		}
		return "bucket"
	}
	return "other"
}
