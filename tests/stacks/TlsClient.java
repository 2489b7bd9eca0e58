// A TLS client for tests/test_stacks.py: Java's PKIX verifier (sun.security.provider.certpath)
// with a trust store that holds only the given CA, and HTTPS endpoint identification.
//   java -cp DIR TlsClient HOST PORT NAME CA.pem [CLIENT.pem CLIENT-KEY.pem]
// Prints the HTTP status line; a failure is one line on stderr ("Class: message"), exit 1.
// Without arguments it serves one connection per line of standard input (the same arguments,
// tab-separated) and answers each with one line, "OK <status line>" or "ERR <error>", so a
// test run starts one JVM instead of one per handshake. It ends at the end of its input.
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.*;
import javax.net.ssl.*;

public class TlsClient {
    public static void main(String[] args) throws IOException {
        if (args.length > 0) {
            try {
                System.out.println(run(args));
            } catch (Exception e) {
                System.err.println(describe(e));
                System.exit(1);
            }
            return;
        }
        BufferedReader jobs = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String job; (job = jobs.readLine()) != null; ) {
            String answer;
            try {
                answer = "OK " + run(job.split("\t"));
            } catch (Exception e) {
                answer = "ERR " + describe(e);
            }
            System.out.println(answer.replace('\n', ' '));
            System.out.flush();
        }
    }

    static String describe(Exception e) {
        Throwable root = e;
        while (root.getCause() != null) root = root.getCause();
        return e.getClass().getSimpleName() + ": " + e.getMessage()
            + (root != e ? " (" + root.getClass().getSimpleName() + ": " + root.getMessage() + ")" : "");
    }

    static String run(String[] args) throws Exception {
        String host = args[0], name = args[2];
        int port = Integer.parseInt(args[1]);
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = new FileInputStream(args[3])) {
            trust.setCertificateEntry("ca", factory.generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trust);
        KeyManager[] keyManagers = null;
        if (args.length > 5) {
            Collection<? extends java.security.cert.Certificate> chain;
            try (InputStream in = new FileInputStream(args[4])) {
                chain = factory.generateCertificates(in);
            }
            String pem = new String(Files.readAllBytes(Paths.get(args[5])), StandardCharsets.US_ASCII);
            byte[] der = Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
            PrivateKey key = null;
            for (String algorithm : new String[] {"EC", "RSA"}) {
                try {
                    key = KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
                    break;
                } catch (java.security.spec.InvalidKeySpecException ignored) {
                }
            }
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry("client", key, new char[0], chain.toArray(new java.security.cert.Certificate[0]));
            KeyManagerFactory kmf = KeyManagerFactory.getInstance("PKIX");
            kmf.init(keys, new char[0]);
            keyManagers = kmf.getKeyManagers();
        }
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keyManagers, tmf.getTrustManagers(), null);
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(host, port), 15000);
            socket.setSoTimeout(15000);
            // The identity check needs the peer's name: layer TLS naming NAME, not the address.
            SSLSocket named = (SSLSocket) context.getSocketFactory().createSocket(socket, name, port, true);
            SSLParameters params = named.getSSLParameters();
            // HTTPS identification checks NAME against the DNS (or, for an IP, IP) SANs.
            params.setEndpointIdentificationAlgorithm("HTTPS");
            if (!name.matches("[0-9.]+") && !name.contains(":")) {
                params.setServerNames(List.of(new SNIHostName(name)));
            }
            named.setSSLParameters(params);
            named.startHandshake();
            OutputStream out = named.getOutputStream();
            out.write(("GET / HTTP/1.0\r\nHost: " + name + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            BufferedReader reader = new BufferedReader(new InputStreamReader(named.getInputStream(), StandardCharsets.US_ASCII));
            String line = reader.readLine();
            if (line == null) throw new IOException("the server closed the connection without an answer");
            return line;
        }
    }
}
