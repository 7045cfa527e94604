package metadisk

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// The plaintext of a folder's file: a count, then each record as
// length-prefixed strings and varints. Decoding checks every length
// against what is left, so no input makes it allocate past the input's
// size or read out of bounds (FuzzRecords).

var errFormat = errors.New("malformed records")

func encode(recs []Record) []byte {
	b := binary.AppendUvarint(nil, uint64(len(recs)))
	for _, r := range recs {
		b = appendString(b, r.Name)
		b = appendString(b, r.Ver.ETag)
		b = binary.AppendVarint(b, r.Ver.Size)
		b = appendTime(b, r.Ver.LastModified)
		a := r.Attrs
		b = binary.AppendVarint(b, a.Size)
		b = appendString(b, a.ETag)
		b = appendTime(b, a.LastModified)
		flags := byte(a.Encryption) & 3
		if a.Listed {
			flags |= 4
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(len(a.Meta)))
		for k, v := range a.Meta {
			b = appendString(b, k)
			b = appendString(b, v)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime keeps nanoseconds since the epoch; the zero time (never set)
// round-trips as itself.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.AppendVarint(b, t.UnixNano())
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, d.varint())
	}
	d.fail()
	return time.Time{}
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errFormat
	}
	d.b = nil
}

func decode(b []byte) ([]Record, error) {
	d := &decoder{b: b}
	n := d.uvarint()
	// A record takes at least 9 bytes: a count past that is a lie.
	if n > uint64(len(d.b))/9 {
		return nil, errFormat
	}
	recs := make([]Record, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var r Record
		r.Name = d.string()
		r.Ver.ETag = d.string()
		r.Ver.Size = d.varint()
		r.Ver.LastModified = d.time()
		r.Attrs.Size = d.varint()
		r.Attrs.ETag = d.string()
		r.Attrs.LastModified = d.time()
		flags := d.byte()
		r.Attrs.Encryption = store.Encryption(flags & 3)
		r.Attrs.Listed = flags&4 != 0
		if flags&^7 != 0 || r.Attrs.Encryption > store.EncPlain {
			d.fail()
		}
		m := d.uvarint()
		if m > uint64(len(d.b))/2 {
			d.fail()
		}
		if m > 0 && d.err == nil {
			r.Attrs.Meta = make(map[string]string, m)
			for j := uint64(0); j < m && d.err == nil; j++ {
				k := d.string()
				r.Attrs.Meta[k] = d.string()
			}
		}
		recs = append(recs, r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errFormat
	}
	if d.err != nil {
		return nil, d.err
	}
	return recs, nil
}
