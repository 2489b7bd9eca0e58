// A TLS client for tests/test_stacks.py and `devcert doctor`: Go's own verifier
// (crypto/x509) with a pool that holds only the CA file given, never the system roots.
//
//	tlsclient -addr 127.0.0.1:PORT -name SERVERNAME -ca CA.pem [-cert C.pem -key K.pem]
//
// Connects, verifies the chain and the name (an IP name is checked against IP SANs), sends
// an HTTP/1.0 request and prints the first line of the answer. Any failure is one line on
// stderr and exit status 1.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "", "host:port to connect to")
	name := flag.String("name", "", "the name to verify (and send as SNI unless an IP)")
	caFile := flag.String("ca", "", "PEM file of the only CA to trust")
	certFile := flag.String("cert", "", "client certificate (PEM), for mTLS")
	keyFile := flag.String("key", "", "client key (PEM), for mTLS")
	timeout := flag.Duration("timeout", 15*time.Second, "bound on the whole exchange")
	flag.Parse()

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail("cannot read the CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", *caFile)
	}
	config := &tls.Config{RootCAs: pool, ServerName: *name}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail("cannot load the client certificate: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	dialer := &net.Dialer{Timeout: *timeout}
	conn, err := tls.DialWithDialer(dialer, "tcp", *addr, config)
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(*timeout))
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\nHost: " + *name + "\r\n\r\n")); err != nil {
		fail("%v", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		// With TLS 1.3 a server refusing the client certificate says so only now.
		fail("%v", err)
	}
	fmt.Print(line)
}
