package store

import (
	"net/http"
	"testing"
)

func TestRequestsAreNamedByWhatTheyDo(t *testing.T) {
	for _, c := range []struct{ method, url, copy, want string }{
		{"GET", "https://s3.example.net/b/dir/file", "", "get"},
		{"GET", "https://b.s3.example.net/dir/file", "", "get"},
		{"GET", "https://s3.example.net/b/?list-type=2&prefix=dir%2F&delimiter=%2F", "", "list"},
		{"GET", "https://b.s3.example.net/?list-type=2", "", "list"},
		{"GET", "https://s3.example.net/b/?uploads=", "", "list_uploads"},
		{"GET", "https://s3.example.net/b/?location=", "", "bucket"},
		{"HEAD", "https://s3.example.net/b/f", "", "head"},
		{"HEAD", "https://s3.example.net/b/", "", "bucket"},
		{"HEAD", "https://b.s3.example.net/", "", "bucket"},
		{"PUT", "https://s3.example.net/b/f", "", "put"},
		{"PUT", "https://s3.example.net/b/f", "/b/g", "copy"},
		{"PUT", "https://s3.example.net/b/f?partNumber=2&uploadId=x", "", "upload_part"},
		{"POST", "https://s3.example.net/b/f?uploads=", "", "create_multipart"},
		{"POST", "https://s3.example.net/b/f?uploadId=x", "", "complete_multipart"},
		{"POST", "https://s3.example.net/b/?delete=", "", "delete_many"},
		{"DELETE", "https://s3.example.net/b/f?uploadId=x", "", "abort_multipart"},
		{"DELETE", "https://s3.example.net/b/f", "", "delete"},
		{"PATCH", "https://s3.example.net/b/f", "", "other"},
	} {
		req, err := http.NewRequest(c.method, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.copy != "" {
			req.Header.Set("X-Amz-Copy-Source", c.copy)
		}
		r := describe(req, "b", &exchange{}, nil, 0)
		if r.Op != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.url, r.Op, c.want)
		}
		found := false
		for _, op := range Ops {
			found = found || op == r.Op
		}
		if !found {
			t.Errorf("%q is not in Ops", r.Op)
		}
	}
}

func TestTheSameRequestAgainIsARetry(t *testing.T) {
	x := &exchange{}
	get := func(url string) Request {
		req, _ := http.NewRequest("GET", url, nil)
		return describe(req, "b", x, nil, 0)
	}
	if get("https://s3/b/f").Retry {
		t.Fatal("a first request counted as a retry")
	}
	if !get("https://s3/b/f").Retry {
		t.Fatal("the same request again not counted as a retry")
	}
	if get("https://s3/b/g").Retry {
		t.Fatal("another request counted as a retry")
	}
}
