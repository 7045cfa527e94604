package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

const ours, theirs = "ours-md5", "theirs-md5"

func TestVerifyKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		objects map[string]string // key -> key MD5 ("" plaintext)
		proven  bool
		wrong   bool
	}{
		{"empty bucket mounts", nil, false, false},
		{"our objects prove the key", map[string]string{"a": ours, "b/c": ours}, true, false},
		{"plaintext only mounts unproven", map[string]string{"a": "", "b/": ""}, false, false},
		{"folder markers prove nothing", map[string]string{"d/": "", "d/e": theirs}, false, true},
		{"another key is refused", map[string]string{"a": theirs, "b": theirs}, false, true},
		{"one of ours among others proves it", map[string]string{"a": theirs, "b": "", "c": ours}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := memstore.New(ours)
			for k, md5 := range tc.objects {
				m.Seed(k, []byte("x"), nil, md5)
			}
			v, err := store.VerifyKey(context.Background(), m, "", 16)
			if tc.wrong != errors.Is(err, store.ErrWrongKey) {
				t.Fatalf("err = %v, want wrong key %v", err, tc.wrong)
			}
			if v.Proven != tc.proven {
				t.Fatalf("proven = %v, want %v (%+v)", v.Proven, tc.proven, v)
			}
		})
	}
}

func TestVerifyKeySamplesAcrossTheListing(t *testing.T) {
	// The first objects are under another key; ours come later. A sample of
	// the first few alone would refuse a right key.
	m := memstore.New(ours)
	for i := 0; i < 200; i++ {
		md5 := theirs
		if i >= 150 {
			md5 = ours
		}
		m.Seed(fmt.Sprintf("obj%03d", i), []byte("x"), nil, md5)
	}
	v, err := store.VerifyKey(context.Background(), m, "", 16)
	if err != nil || !v.Proven {
		t.Fatalf("verdict %+v, err %v", v, err)
	}
	if n := len(m.UnkeyedDataCalls()); n != 0 {
		t.Fatalf("%d calls without the key", n)
	}
}
