package store

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rgwPage is a page as RGW writes it (owners asked for), with a marker,
// two objects and a common prefix.
const rgwPage = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><EncodingType>url</EncodingType><Name>b</Name><Prefix>d%2F</Prefix><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><NextContinuationToken>1~xyz</NextContinuationToken><Contents><Key>d%2F</Key><LastModified>2026-12-05T05:40:31.957Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass><Owner><ID>o</ID><DisplayName>the owner</DisplayName></Owner><Type>Normal</Type></Contents><Contents><Key>d%2Ffile+a%26b.dat</Key><LastModified>2026-12-05T05:40:33.846Z</LastModified><ETag>&quot;0f343b0931126a20f133d67c2b018a3b&quot;</ETag><Size>1000</Size><StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents><CommonPrefixes><Prefix>d%2Fsub%2F</Prefix></CommonPrefixes></ListBucketResult>`

// minioPage is MinIO's shape: indented, no declaration variant.
const minioPage = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated><Contents><Key>a</Key><LastModified>2026-12-05T05:40:31.000Z</LastModified><ETag>&#34;abc&#34;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes><EncodingType>url</EncodingType></ListBucketResult>`

// The scanner reads what servers write, as encoding/xml does.
func TestTheListingScannerReadsServersPages(t *testing.T) {
	for name, page := range map[string]string{"rgw": rgwPage, "minio": minioPage} {
		want, err := decodeListPage([]byte(page))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseListPage([]byte(page))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v, encoding/xml %+v", name, got, err, want)
		}
		if _, ok := scanListPage([]byte(page)); !ok && name == "rgw" {
			t.Errorf("%s: the page was left to encoding/xml", name)
		}
	}
	got, _ := parseListPage([]byte(rgwPage))
	if len(got.Contents) != 2 || got.Contents[1].ETag != `"0f343b0931126a20f133d67c2b018a3b"` || got.Contents[1].Size != 1000 ||
		!got.Contents[1].LastModified.Equal(time.Date(2026, 12, 5, 5, 40, 33, 846e6, time.UTC)) || !got.Truncated || got.NextToken != "1~xyz" ||
		len(got.Prefixes) != 1 || got.Prefixes[0] != "d%2Fsub%2F" {
		t.Fatalf("%+v", got)
	}
}

// A page of 100 objects: what the nightly walk decodes 1,000 of.
func BenchmarkListingDecode(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>`)
	for i := range 100 {
		fmt.Fprintf(&sb, `<Contents><Key>nightly%%2Fdir-0001%%2Ffile-%03d.dat</Key><LastModified>2026-12-05T05:40:33.846Z</LastModified><ETag>&quot;0f343b0931126a20f133d67c2b018a3b&quot;</ETag><Size>1000</Size><StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>`, i)
	}
	sb.WriteString(`</ListBucketResult>`)
	page := []byte(sb.String())
	b.Run("scanner", func(b *testing.B) {
		for b.Loop() {
			if _, ok := scanListPage(page); !ok {
				b.Fatal("left to encoding/xml")
			}
		}
	})
	b.Run("encoding/xml", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeListPage(page); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzListXML holds the scanner to encoding/xml: a page it reads must be
// one encoding/xml reads, to the same answer.
func FuzzListXML(f *testing.F) {
	f.Add([]byte(rgwPage))
	f.Add([]byte(minioPage))
	f.Add([]byte(`<L><Contents/><CommonPrefixes/><IsTruncated> 1 </IsTruncated><Contents><Key>a&amp;&lt;</Key><Key>b</Key><Size> 7 </Size></Contents></L>`))
	f.Add([]byte(`<L><Contents><Owner><ID>x<y/>z</ID></Owner><Key>k</Key></Contents><X><Contents><Key>no</Key></Contents></X></L>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := scanListPage(b)
		if !ok {
			return
		}
		want, err := decodeListPage(b)
		if err != nil {
			t.Fatalf("the scanner read a page encoding/xml refuses (%v): %+v", err, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanner %+v, encoding/xml %+v", got, want)
		}
	})
}
