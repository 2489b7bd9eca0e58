// Preloaded (node -r) into local-ssl-proxy by `scripts/bench wss`: it listens with
// server.listen(port), on every interface; this makes such a call listen on 127.0.0.1 only.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
