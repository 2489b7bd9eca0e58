// A TLS client for tests/test_stacks.py and `devcert doctor`, run by Bun: fetch(), whose
// chain check is BoringSSL's verifier, with only the given CA as its roots.
//   bun bun_client.js HOST PORT NAME CA.pem [CLIENT.pem CLIENT-KEY.pem]
// Connects to HOST:PORT and verifies NAME (an IP is checked against IP SANs, a DNS name is
// sent as the server name). Prints the HTTP status line; a failure is one line on stderr
// ("CODE: message") and exit status 1.
const [host, port, name, ca, cert, key] = process.argv.slice(2);
const isIP = /^[0-9.]+$/.test(name) || name.includes(':');
const tls = { ca: Bun.file(ca), rejectUnauthorized: true };
if (!isIP) tls.serverName = name;
if (cert) { tls.cert = Bun.file(cert); tls.key = Bun.file(key); }
const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}/`;
try {
  const response = await fetch(url, { tls, signal: AbortSignal.timeout(15000) });
  console.log(`HTTP ${response.status} ${await response.text()}`);
} catch (err) {
  console.error(err.code ? `${err.code}: ${err.message}` : String(err.message || err));
  process.exit(1);
}
