package ns

import (
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// A listing's answer is older than anything this mount did to a key after
// the listing was sent: filed after it, it would bring back a deleted file
// or an uploaded file's previous size and ETag.
func TestAListingDoesNotOverwriteThisMountsLaterChanges(t *testing.T) {
	m := newMetaCache(memstore.New(ourMD5), time.Hour, 4, 100, func(error) bool { return false })
	listed := store.Attrs{Size: 1, ETag: "old", Listed: true}

	sent := time.Now()
	m.put("uploaded", store.Attrs{Size: 2, ETag: "new", Encryption: store.EncOurs})
	m.putListed("uploaded", listed, metadisk.Version{}, sent)
	if a, ok := m.peek("uploaded"); !ok || a.ETag != "new" {
		t.Errorf("uploaded: %+v %v, want the upload's attributes", a, ok)
	}

	sent = time.Now()
	m.forget("deleted")
	m.putListed("deleted", listed, metadisk.Version{}, sent)
	if a, ok := m.peek("deleted"); ok {
		t.Errorf("deleted: %+v, want nothing known", a)
	}

	// A listing sent after the change is newer: it is filed.
	m.forget("changed")
	m.putListed("changed", listed, metadisk.Version{}, time.Now())
	if a, ok := m.peek("changed"); !ok || a.ETag != "old" {
		t.Errorf("changed: %+v %v, want the listing's attributes", a, ok)
	}
}
