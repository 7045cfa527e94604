#!/usr/bin/env bash
# tls.sh: create, once, the test PKI under $STATE/tls:
#   ca.crt / ca.key                 self-signed test CA (10 years)
#   server.crt / server.key         SAN IP:127.0.0.1, DNS:localhost (both servers)
#   wrongname.crt / wrongname.key   same CA, SAN only DNS:wrong.example, for
#                                   "certificate is for another name" tests
# SSE-C requires HTTPS (MinIO and RGW refuse the key over plain HTTP), hence
# TLS for every test server. Existing valid files are kept: regenerating the
# CA would invalidate the certificates that running servers present.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

DAYS=3650

# make_leaf NAME SAN: key + certificate signed by the test CA.
make_leaf() {
	local name=$1 san=$2 tmp
	tmp=$(mktemp -d "$TLS_DIR/.tmp.XXXXXX")
	openssl req -new -newkey rsa:2048 -nodes -subj "/CN=ssecfs test $name" \
		-keyout "$tmp/$name.key" -out "$tmp/$name.csr" 2>/dev/null
	cat >"$tmp/ext.cnf" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
EOF
	# A random serial instead of -CAcreateserial: no ca.srl to keep in sync.
	openssl x509 -req -in "$tmp/$name.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -sha256 \
		-extfile "$tmp/ext.cnf" -out "$tmp/$name.crt" 2>/dev/null
	chmod 0600 "$tmp/$name.key"
	chmod 0644 "$tmp/$name.crt"
	# Key first, certificate last: a present certificate implies its key.
	mv "$tmp/$name.key" "$TLS_DIR/$name.key"
	mv "$tmp/$name.crt" "$TLS_DIR/$name.crt"
	rm -rf "$tmp"
	log "created $TLS_DIR/$name.crt ($san)"
}

# leaf_ok NAME: certificate and key exist and the certificate verifies
# against the current CA and is not about to expire.
leaf_ok() {
	[ -s "$TLS_DIR/$1.crt" ] && [ -s "$TLS_DIR/$1.key" ] &&
		openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/$1.crt" >/dev/null 2>&1 &&
		openssl x509 -in "$TLS_DIR/$1.crt" -noout -checkend 86400 >/dev/null 2>&1
}

main() {
	mkdir -p "$TLS_DIR"
	# Readable by the unprivileged test user: it needs ca.crt.
	chmod 0755 "$TLS_DIR"
	lock_or_wait "$TLS_DIR/.lock"
	if ! { [ -s "$TLS_DIR/ca.crt" ] && [ -s "$TLS_DIR/ca.key" ] &&
		openssl x509 -in "$TLS_DIR/ca.crt" -noout -checkend 86400 >/dev/null 2>&1; }; then
		local tmp
		tmp=$(mktemp -d "$TLS_DIR/.tmp.XXXXXX")
		openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$DAYS" \
			-subj "/CN=ssecfs test CA" \
			-addext "basicConstraints = critical, CA:TRUE" \
			-addext "keyUsage = critical, keyCertSign, cRLSign" \
			-keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
		chmod 0600 "$tmp/ca.key"
		chmod 0644 "$tmp/ca.crt"
		# A new CA invalidates every leaf: remove them so they are re-signed.
		rm -f "$TLS_DIR"/server.* "$TLS_DIR"/wrongname.*
		mv "$tmp/ca.key" "$TLS_DIR/ca.key"
		mv "$tmp/ca.crt" "$TLS_DIR/ca.crt"
		rm -rf "$tmp"
		log "created test CA $TLS_DIR/ca.crt"
	fi
	leaf_ok server || make_leaf server "IP:127.0.0.1, DNS:localhost"
	leaf_ok wrongname || make_leaf wrongname "DNS:wrong.example"
}

main "$@"
