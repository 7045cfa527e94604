package memstore_test

import (
	"testing"

	"github.com/ssecfs/ssecfs/store/memstore"
	"github.com/ssecfs/ssecfs/store/storetest"
)

// TestStoreConformance runs the suite that integration/conformance_test.go
// runs against Ceph RGW and MinIO, in each of the fake's modes: as RGW
// (no listed metadata), listing metadata as MinIO does, and refusing
// CopyObject as RGW before v20 does.
func TestStoreConformance(t *testing.T) {
	modes := []struct {
		name string
		set  func(m *memstore.Store)
	}{
		{"default", func(*memstore.Store) {}},
		{"listmeta", func(m *memstore.Store) { m.SetListMeta(true) }},
		{"nocopy", func(m *memstore.Store) { m.SetNoCopyObject(true) }},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Fixture {
				m := memstore.New("ours")
				mode.set(m)
				return storetest.Fixture{
					Store: m,
					PutPlain: func(t *testing.T, key string, data []byte) {
						m.Seed(key, data, nil, "")
					},
					PutOtherKey: func(t *testing.T, key string, data []byte) {
						m.Seed(key, data, nil, "theirs")
					},
				}
			})
		})
	}
}
