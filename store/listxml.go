package store

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decoding a ListObjectsV2 answer. encoding/xml, which minio-go uses,
// decodes by reflection: a quarter of the daemon's CPU in a nightly walk of
// 100,000 files (1.06 ms per page of 100 objects). Listing answers are
// flat and plain, so a scanner reads them in a fiftieth of that; anything
// it does not know for sure (a comment, CDATA, a character reference,
// attributes, a namespace prefix, a carriage return) sends the whole page
// to encoding/xml, and FuzzListXML holds the two to the same answers.

// listPage is one page of a listing, as the server wrote it (names still
// encoded if EncodingType says so).
type listPage struct {
	Contents     []listedObject
	Prefixes     []string
	Truncated    bool
	NextToken    string
	EncodingType string
}

type listedObject struct {
	Key          string
	ETag         string
	Size         int64
	LastModified time.Time
}

// parseListPage decodes a ListObjectsV2 answer.
func parseListPage(b []byte) (listPage, error) {
	if p, ok := scanListPage(b); ok {
		return p, nil
	}
	return decodeListPage(b)
}

// decodeListPage is encoding/xml's reading, as minio-go's.
func decodeListPage(b []byte) (listPage, error) {
	var x struct {
		Contents []struct {
			Key          string
			LastModified time.Time
			ETag         string
			Size         int64
		}
		CommonPrefixes        []struct{ Prefix string }
		IsTruncated           bool
		NextContinuationToken string
		EncodingType          string
	}
	if err := xml.Unmarshal(b, &x); err != nil {
		return listPage{}, err
	}
	p := listPage{Truncated: x.IsTruncated, NextToken: x.NextContinuationToken, EncodingType: x.EncodingType}
	for _, c := range x.Contents {
		p.Contents = append(p.Contents, listedObject{Key: c.Key, ETag: c.ETag, Size: c.Size, LastModified: c.LastModified})
	}
	for _, c := range x.CommonPrefixes {
		p.Prefixes = append(p.Prefixes, c.Prefix)
	}
	return p, nil
}

var errScan = errors.New("not for the scanner")

// scanListPage reads the page if it holds nothing but elements without
// attributes, text with the five named entities, and an XML declaration
// in UTF-8; ok is false otherwise (and for any malformed page).
func scanListPage(b []byte) (p listPage, ok bool) {
	if !utf8.Valid(b) {
		return p, false
	}
	s := scanner{b: b}
	if err := s.prolog(); err != nil {
		return p, false
	}
	root, self, err := s.open(true)
	if err != nil || self {
		return p, false
	}
	// depth 1: the root's children; Contents and CommonPrefixes have
	// children of their own (depth 2); anything deeper is skipped.
	for {
		name, end, self, err := s.next()
		switch {
		case err != nil:
			return p, false
		case end:
			return p, name == root
		}
		var text string
		switch {
		case self && name == "Contents":
			p.Contents = append(p.Contents, listedObject{})
		case self && name == "CommonPrefixes":
			p.Prefixes = append(p.Prefixes, "")
		}
		if !self {
			if text, err = s.textOrChildren(name, &p); err != nil {
				return p, false
			}
		}
		switch name {
		case "IsTruncated":
			v, err := strconv.ParseBool(strings.TrimSpace(text))
			if err != nil {
				return p, false
			}
			p.Truncated = v
		case "NextContinuationToken":
			p.NextToken = text
		case "EncodingType":
			p.EncodingType = text
		}
	}
}

type scanner struct {
	b []byte
	i int
}

// prolog skips white space and the one XML declaration servers write.
func (s *scanner) prolog() error {
	s.space()
	if decl := []byte(`<?xml version="1.0" encoding="UTF-8"?>`); bytes.HasPrefix(s.b[s.i:], decl) {
		s.i += len(decl)
	} else if bytes.HasPrefix(s.b[s.i:], []byte("<?")) {
		return errScan
	}
	s.space()
	return nil
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n') {
		s.i++
	}
}

// open reads a start tag at s.i, without attributes but for the root's
// xmlns (root).
func (s *scanner) open(root bool) (name string, self bool, err error) {
	if s.i >= len(s.b) || s.b[s.i] != '<' {
		return "", false, errScan
	}
	s.i++
	if name, err = s.name(); err != nil {
		return "", false, err
	}
	if ns := []byte(` xmlns="`); root && bytes.HasPrefix(s.b[s.i:], ns) {
		s.i += len(ns)
		for s.i < len(s.b) && s.b[s.i] != '"' {
			if c := s.b[s.i]; c < 0x21 || c > 0x7e || c == '<' || c == '&' || c == '\'' {
				return "", false, errScan
			}
			s.i++
		}
		s.i++ // the closing quote
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '>':
		s.i++
	case s.i+1 < len(s.b) && s.b[s.i] == '/' && s.b[s.i+1] == '>':
		s.i += 2
		self = true
	default:
		return "", false, errScan
	}
	return name, self, nil
}

// name reads a tag name: letters, digits, '-', '_', '.', no namespace.
func (s *scanner) name() (string, error) {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || s.i > start && (c >= '0' && c <= '9' || c == '-' || c == '.') {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		return "", errScan
	}
	return intern(s.b[start:s.i]), nil
}

// intern returns the names of a listing without allocating them.
func intern(b []byte) string {
	switch string(b) {
	case "ListBucketResult":
		return "ListBucketResult"
	case "Contents":
		return "Contents"
	case "Key":
		return "Key"
	case "LastModified":
		return "LastModified"
	case "ETag":
		return "ETag"
	case "Size":
		return "Size"
	case "StorageClass":
		return "StorageClass"
	case "Type":
		return "Type"
	case "Owner":
		return "Owner"
	case "ID":
		return "ID"
	case "DisplayName":
		return "DisplayName"
	case "CommonPrefixes":
		return "CommonPrefixes"
	case "Prefix":
		return "Prefix"
	}
	return string(b)
}

// next reads the next tag after white space: a start tag (name, self),
// or an end tag (end).
func (s *scanner) next() (name string, end, self bool, err error) {
	s.space()
	if s.i+1 < len(s.b) && s.b[s.i] == '<' && s.b[s.i+1] == '/' {
		s.i += 2
		if name, err = s.name(); err != nil {
			return "", false, false, err
		}
		if s.i >= len(s.b) || s.b[s.i] != '>' {
			return "", false, false, errScan
		}
		s.i++
		return name, true, false, nil
	}
	name, self, err = s.open(false)
	return name, false, self, err
}

// text reads character data up to the next '<', entities replaced (the
// string is made only if want).
func (s *scanner) text(want bool) (string, error) {
	start := s.i
	simple := true
	for s.i < len(s.b) && s.b[s.i] != '<' {
		c := s.b[s.i]
		switch {
		case c == '&':
			simple = false
		case c < 0x20 && c != '\t' && c != '\n':
			return "", errScan // \r is normalised by XML, control bytes refused
		case c == '>' && s.i >= start+2 && s.b[s.i-1] == ']' && s.b[s.i-2] == ']':
			return "", errScan
		case c >= 0x80:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r >= 0xD800 && r < 0xE000 || r == 0xFFFE || r == 0xFFFF {
				return "", errScan // not an XML character
			}
			s.i += size
			continue
		}
		s.i++
	}
	if s.i >= len(s.b) {
		return "", errScan
	}
	raw := s.b[start:s.i]
	switch {
	case simple && !want:
		return "", nil
	case simple:
		return string(raw), nil
	}
	t, err := unescape(raw)
	if !want {
		t = ""
	}
	return t, err
}

func unescape(raw []byte) (string, error) {
	var out strings.Builder
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '&')
		if i < 0 {
			out.Write(raw)
			break
		}
		out.Write(raw[:i])
		raw = raw[i:]
		semi := bytes.IndexByte(raw, ';')
		if semi < 0 {
			return "", errScan
		}
		switch string(raw[1:semi]) {
		case "lt":
			out.WriteByte('<')
		case "gt":
			out.WriteByte('>')
		case "amp":
			out.WriteByte('&')
		case "apos":
			out.WriteByte('\'')
		case "quot":
			out.WriteByte('"')
		default:
			return "", errScan
		}
		raw = raw[semi+1:]
	}
	return out.String(), nil
}

// textOrChildren reads what follows the start tag of name, a child of the
// root, to its end tag: its text, or for Contents and CommonPrefixes their
// children (filed in p), or for others whatever they hold (skipped).
func (s *scanner) textOrChildren(name string, p *listPage) (string, error) {
	var obj *listedObject // the Contents being read
	switch name {
	case "Contents":
		p.Contents = append(p.Contents, listedObject{})
		obj = &p.Contents[len(p.Contents)-1]
	case "CommonPrefixes":
	default:
		return s.element(name, 1, name == "IsTruncated" || name == "NextContinuationToken" || name == "EncodingType")
	}
	prefix := ""
	for {
		child, end, self, err := s.child(name)
		switch {
		case err != nil:
			return "", err
		case end:
			if name == "CommonPrefixes" {
				p.Prefixes = append(p.Prefixes, prefix)
			}
			return "", nil
		}
		want := name == "CommonPrefixes" && child == "Prefix" ||
			name == "Contents" && (child == "Key" || child == "ETag" || child == "Size" || child == "LastModified")
		text := ""
		if !self {
			if text, err = s.element(child, 2, want); err != nil {
				return "", err
			}
		}
		if name == "CommonPrefixes" {
			if want {
				prefix = text
			}
			continue
		}
		if err := file(obj, child, text); err != nil {
			return "", err
		}
	}
}

// child reads the next tag inside element name: a child's start tag, or
// name's own end tag (end); any other end tag is malformed.
func (s *scanner) child(name string) (child string, end, self bool, err error) {
	child, end, self, err = s.next()
	if err == nil && end && child != name {
		err = errScan
	}
	return child, end, self, err
}

// file sets one field of o.
func file(o *listedObject, field, text string) error {
	switch field {
	case "Key":
		o.Key = text
	case "ETag":
		o.ETag = text
	case "Size":
		v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return errScan
		}
		o.Size = v
	case "LastModified":
		var t time.Time // as encoding/xml reads it
		if err := t.UnmarshalText([]byte(text)); err != nil {
			return errScan
		}
		o.LastModified = t
	}
	return nil
}

// element reads the rest of element name (its start tag read) at depth:
// its text (want: a field of ours, which must hold text only), or
// whatever it holds, skipped.
func (s *scanner) element(name string, depth int, want bool) (string, error) {
	text, err := s.text(want)
	if err != nil {
		return "", err
	}
	for {
		child, end, self, err := s.child(name)
		switch {
		case err != nil:
			return "", err
		case end:
			return text, nil
		case want || depth > 16:
			return "", errScan // encoding/xml would join the text around it
		case !self:
			if _, err := s.element(child, depth+1, false); err != nil {
				return "", err
			}
		}
		if _, err := s.text(false); err != nil {
			return "", err
		}
	}
}
