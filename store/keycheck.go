package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// ErrWrongKey: the encrypted objects checked at mount time are all
// encrypted with another key.
var ErrWrongKey = errors.New("the key does not open this bucket's objects")

// KeyVerdict is what VerifyKey found.
type KeyVerdict struct {
	Proven  bool   // an object answered with our key's MD5
	Checked int    // objects HEADed
	Plain   int    // of which stored without SSE-C
	Other   int    // of which encrypted with another key
	Example string // one object under another key, for the message
}

// VerifyKey checks, before mounting, that the key opens the objects under
// prefix. Only an answer echoing our key's MD5 proves the key: Ceph RGW
// serves plaintext objects and folder markers to any key. It needs nothing
// but list and read rights, and writes nothing (a marker object written at
// the first mount would lock the real key out after a mistyped one, and
// `aws s3 sync` would copy it around). It samples up to maxHeads objects
// spread over the first listing page. An empty bucket, or one holding only
// plaintext objects, passes unproven.
func VerifyKey(ctx context.Context, st Store, prefix string, maxHeads int) (KeyVerdict, error) {
	var keys []string
	err := st.List(ctx, prefix, ListOptions{Recursive: true, Limit: 1000}, func(e Entry) error {
		if len(e.Key) > 0 && e.Key[len(e.Key)-1] != '/' { // folder markers prove nothing
			keys = append(keys, e.Key)
		}
		return nil
	})
	if err != nil {
		return KeyVerdict{}, err
	}
	if len(keys) > maxHeads { // spread the sample over the page
		step := float64(len(keys)) / float64(maxHeads)
		sample := make([]string, 0, maxHeads)
		for i := 0; i < maxHeads; i++ {
			sample = append(sample, keys[int(float64(i)*step)])
		}
		keys = sample
	}
	var (
		mu sync.Mutex
		v  KeyVerdict
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, k := range keys {
		g.Go(func() error {
			mu.Lock()
			done := v.Proven
			mu.Unlock()
			if done {
				return nil
			}
			a, err := st.Head(gctx, k)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && a.Encryption == EncOurs:
				v.Checked++
				v.Proven = true
			case err == nil:
				v.Checked++
				v.Plain++
			case errors.Is(err, ErrOtherKey):
				v.Checked++
				v.Other++
				v.Example = k
			case errors.Is(err, ErrNotFound): // deleted since the listing
			default:
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return v, err
	}
	if !v.Proven && v.Other > 0 {
		return v, fmt.Errorf("%w: %d of %d objects checked are encrypted with another key (e.g. %q)",
			ErrWrongKey, v.Other, v.Checked, v.Example)
	}
	return v, nil
}
