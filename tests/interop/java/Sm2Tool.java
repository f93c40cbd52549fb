// Test-only BouncyCastle checker for trustsvc interop tests: SM2 signatures and certificates.
// Usage:
//   Sm2Tool verify PUBKEY_PEM MESSAGE_FILE SIG_DER_FILE [ID]   -> prints OK or FAIL
//   Sm2Tool sign KEY_PEM MESSAGE_FILE OUT_SIG_FILE [ID]        -> writes a DER SM2 signature
//   Sm2Tool verify-cert CERT_PEM ISSUER_CERT_PEM               -> prints OK or FAIL
import java.io.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.*;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.jcajce.spec.SM2ParameterSpec;
import org.bouncycastle.util.io.pem.PemReader;

public class Sm2Tool {
    static byte[] pemBody(String path) throws Exception {
        try (PemReader r = new PemReader(new FileReader(path))) { return r.readPemObject().getContent(); }
    }
    public static void main(String[] a) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        KeyFactory kf = KeyFactory.getInstance("EC", "BC");
        switch (a[0]) {
            case "verify": {
                PublicKey pk = kf.generatePublic(new X509EncodedKeySpec(pemBody(a[1])));
                Signature s = Signature.getInstance("SM3withSM2", "BC");
                if (a.length > 4) s.setParameter(new SM2ParameterSpec(a[4].getBytes("UTF-8")));
                s.initVerify(pk);
                s.update(Files.readAllBytes(Paths.get(a[2])));
                System.out.println(s.verify(Files.readAllBytes(Paths.get(a[3]))) ? "OK" : "FAIL");
                break;
            }
            case "sign": {
                PrivateKey sk = kf.generatePrivate(new PKCS8EncodedKeySpec(pemBody(a[1])));
                Signature s = Signature.getInstance("SM3withSM2", "BC");
                if (a.length > 4) s.setParameter(new SM2ParameterSpec(a[4].getBytes("UTF-8")));
                s.initSign(sk);
                s.update(Files.readAllBytes(Paths.get(a[2])));
                Files.write(Paths.get(a[3]), s.sign());
                System.out.println("OK");
                break;
            }
            case "verify-cert": {
                CertificateFactory cf = CertificateFactory.getInstance("X.509", "BC");
                X509Certificate c = (X509Certificate) cf.generateCertificate(new FileInputStream(a[1]));
                X509Certificate i = (X509Certificate) cf.generateCertificate(new FileInputStream(a[2]));
                try { c.verify(i.getPublicKey(), "BC"); System.out.println("OK"); }
                catch (Exception e) { System.out.println("FAIL " + e); }
                break;
            }
            default: System.err.println("unknown command " + a[0]); System.exit(2);
        }
    }
}
