// A TLS client for tests/test_stacks.py and `devcert doctor`, run by Deno (rustls, whose
// verifier is webpki). The CA comes from `deno run --cert CA.pem` (or DENO_CERT).
//   deno run --allow-net --cert CA.pem deno_client.ts HOST PORT NAME
// Connects over TCP to HOST:PORT, then starts TLS verifying NAME (Deno.startTls takes the
// name apart from the address, which Deno.connectTls does not). Prints the HTTP status
// line; a failure is one line on stderr ("Name: message") and exit status 1.
const [host, port, name] = Deno.args;
const timer = setTimeout(() => { console.error("timed out"); Deno.exit(3); }, 15000);
try {
  const tcp = await Deno.connect({ hostname: host, port: Number(port) });
  const conn = await Deno.startTls(tcp, { hostname: name });
  await conn.write(new TextEncoder().encode(`GET / HTTP/1.0\r\nHost: ${name}\r\n\r\n`));
  const buffer = new Uint8Array(4096);
  const read = await conn.read(buffer);
  if (read === null) throw new Error("the server closed the connection without an answer");
  console.log(new TextDecoder().decode(buffer.subarray(0, read)).split("\r\n")[0]);
  conn.close();
} catch (err) {
  console.error(`${err.name}: ${err.message}`);
  Deno.exit(1);
}
clearTimeout(timer);
