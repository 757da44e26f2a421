package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A testCA is a certificate authority that the tests' clients trust.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// The tests' own authority, and a client that trusts it as well as
// talking plain HTTP: made once, in TestMain.
var (
	authority  *testCA
	testClient *http.Client
)

func newTestCA() *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Altair test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a server certificate for 127.0.0.1 and localhost, with
// serial, and its key into dir; it returns the TLS settings for them.
func (ca *testCA) issue(t *testing.T, dir string, serial int64) []string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "altair"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return []string{"TLS_CERT_FILE=" + certFile, "TLS_KEY_FILE=" + keyFile}
}

// TestTLS runs the server over TLS with a certificate of the tests' own
// authority: a tap pours over HTTPS, a screen subscribes over WSS, a
// plain HTTP request is answered but served nothing, HTTP/2 is not
// offered, the health check works, and a certificate renewed on disk
// serves the next handshake.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, append(authority.issue(t, dir, 2), protected...)...)
	if !strings.HasPrefix(ts.url, "https://") {
		t.Fatalf("the server listens at %s; want https", ts.url)
	}
	sub := ts.subscribe(t, "", "Authorization", "Bearer "+screenToken)
	b := ts.pour(t, 1, 500, "Authorization", "Bearer "+tap1Token)
	sub.nextPour(b)

	u, _ := url.Parse(ts.url)
	plain, err := http.Get("http://" + u.Host + "/api/report")
	if err != nil || plain.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %v, %v; want the standard library's 400", plain, err)
	}
	env := getenvOf([]string{"PORT=" + u.Port(), "TLS_CERT_FILE=" + filepath.Join(dir, "server.pem")})
	if got := healthcheck(env); got != 0 {
		t.Errorf("healthcheck against the TLS server = %d; want 0", got)
	}

	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: authority.pool(), NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
			t.Errorf("the server chose HTTP/2; want HTTP/1.1, which a WebSocket upgrade needs")
		}
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 2 {
		t.Fatalf("certificate serial %d; want 2", got)
	}
	authority.issue(t, dir, 3) // renewed in place, the server running
	if got := serial(); got != 3 {
		t.Errorf("certificate serial %d after the renewal; want 3", got)
	}
	b = ts.pour(t, 1, 300, "Authorization", "Bearer "+tap1Token)
	sub.nextPour(b) // the connection made before the renewal goes on
	if strings.Contains(ts.logs.String(), "tokens cross the network in clear text") {
		t.Errorf("with TLS the server warns that tokens cross the network in clear text")
	}
}

func TestBadTLSSettingsStopStartUp(t *testing.T) {
	t.Parallel()
	dir, other := t.TempDir(), t.TempDir()
	good := authority.issue(t, dir, 5)
	authority.issue(t, other, 6)
	for _, tt := range []struct {
		name string
		env  []string
		want string
	}{
		{"only the certificate", good[:1], "TLS_CERT_FILE and TLS_KEY_FILE: set both"},
		{"only the key", good[1:], "TLS_CERT_FILE and TLS_KEY_FILE: set both"},
		{"a missing file", []string{good[0], "TLS_KEY_FILE=" + filepath.Join(dir, "nope.pem")}, "TLS_KEY_FILE=" + filepath.Join(dir, "nope.pem")},
		{"a pair that does not match", []string{good[0], "TLS_KEY_FILE=" + filepath.Join(other, "server-key.pem")}, "private key does not match"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := startupError(t, tt.env...); !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "TLS_") {
				t.Errorf("start-up error %q; want one naming the setting and %q", err, tt.want)
			}
		})
	}
}
