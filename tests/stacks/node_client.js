// A TLS client for tests/test_stacks.py, run by Node.js: https.get (OpenSSL's verifier).
//   node node_client.js HOST PORT NAME CA.pem [CLIENT.pem CLIENT-KEY.pem]
// With CA.pem "-" no `ca` is given, so Node's own roots (plus NODE_EXTRA_CA_CERTS, or the
// OS store under NODE_USE_SYSTEM_CA=1) decide. An IP NAME is checked against IP SANs and
// never sent as SNI. Prints the HTTP status line; a failure is one line on stderr
// ("CODE: message") and exit status 1.
const fs = require('fs');
const https = require('https');
const net = require('net');

const [host, port, name, ca, cert, key] = process.argv.slice(2);
const options = { host, port: Number(port), path: '/', headers: { Host: name }, timeout: 15000, agent: false };
if (ca !== '-') options.ca = fs.readFileSync(ca);
if (!net.isIP(name)) options.servername = name;
if (cert) { options.cert = fs.readFileSync(cert); options.key = fs.readFileSync(key); }
const request = https.get(options, (response) => {
  let body = '';
  response.on('data', (chunk) => { body += chunk; });
  response.on('end', () => { console.log(`HTTP ${response.statusCode} ${body}`); process.exit(0); });
});
request.on('timeout', () => { console.error('timed out'); process.exit(3); });
request.on('error', (err) => { console.error(err.code ? `${err.code}: ${err.message}` : err.message); process.exit(1); });
