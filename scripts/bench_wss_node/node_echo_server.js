// The peer for `scripts/bench wss`: Node's `ws` echo server on https.createServer (or on
// http.createServer with --plain, as the upstream for the proxy measurement).
//
//   node node_echo_server.js --cert leaf.pem --key leaf-key.pem [--port 0] [--plain]
//
// Prints "READY <port>" on stdout once listening on 127.0.0.1; exits on SIGTERM/SIGINT.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i].replace(/^--/, '');
  if (a === 'plain') args.plain = true; else args[a] = process.argv[++i];
}
const server = args.plain
  ? http.createServer((req, res) => { res.end('node echo server\n'); })
  : https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) },
      (req, res) => { res.end('node echo server\n'); });
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1024 * 1024 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
server.listen(Number(args.port || 0), args.host || '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
