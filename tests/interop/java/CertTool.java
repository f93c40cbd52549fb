// Test-only BouncyCastle checker for trustsvc PKI interop: CRLs, CSRs, and an SM2 chain made by BC.
// Usage:
//   CertTool verify-crl CRL_PEM ISSUER_CERT_PEM   -> prints OK or FAIL ...
//   CertTool verify-csr CSR_PEM                   -> prints OK or FAIL ...
//   CertTool make-chain OUT_DIR                   -> writes root.pem and leaf.pem (SM3withSM2, default ID)
import java.io.*;
import java.math.BigInteger;
import java.security.*;
import java.security.cert.*;
import java.security.spec.ECGenParameterSpec;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.util.io.pem.PemReader;

public class CertTool {
    static byte[] pemBody(String path) throws Exception {
        try (PemReader r = new PemReader(new FileReader(path))) { return r.readPemObject().getContent(); }
    }

    static X509Certificate cert(X500Name issuer, X500Name subject, PublicKey pub, PrivateKey signKey, boolean ca,
                                int usage, long serial) throws Exception {
        Date start = new Date(System.currentTimeMillis() - 3600_000L);
        Date end = new Date(System.currentTimeMillis() + 30L * 86400_000L);
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuer, BigInteger.valueOf(serial), start, end,
                subject, pub);
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(ca));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(usage));
        ContentSigner signer = new JcaContentSignerBuilder("SM3withSM2").setProvider("BC").build(signKey);
        X509CertificateHolder h = b.build(signer);
        return new JcaX509CertificateConverter().setProvider("BC").getCertificate(h);
    }

    static void writePem(Object o, String path) throws Exception {
        try (JcaPEMWriter w = new JcaPEMWriter(new FileWriter(path))) { w.writeObject(o); }
    }

    public static void main(String[] a) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        CertificateFactory cf = CertificateFactory.getInstance("X.509", "BC");
        switch (a[0]) {
            case "verify-crl": {
                X509CRL crl = (X509CRL) cf.generateCRL(new FileInputStream(a[1]));
                X509Certificate i = (X509Certificate) cf.generateCertificate(new FileInputStream(a[2]));
                try { crl.verify(i.getPublicKey(), "BC"); System.out.println("OK " + crl.getRevokedCertificates()); }
                catch (Exception e) { System.out.println("FAIL " + e); }
                break;
            }
            case "verify-csr": {
                PKCS10CertificationRequest req = new PKCS10CertificationRequest(pemBody(a[1]));
                boolean ok = req.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider("BC")
                        .build(req.getSubjectPublicKeyInfo()));
                System.out.println(ok ? "OK" : "FAIL");
                break;
            }
            case "make-chain": {
                KeyPairGenerator g = KeyPairGenerator.getInstance("EC", "BC");
                g.initialize(new ECGenParameterSpec("sm2p256v1"));
                KeyPair root = g.generateKeyPair(), leaf = g.generateKeyPair();
                X500Name rootName = new X500Name("CN=BC SM2 Root,O=BouncyCastle,C=CN");
                X509Certificate rc = cert(rootName, rootName, root.getPublic(), root.getPrivate(), true,
                        KeyUsage.keyCertSign | KeyUsage.cRLSign, 1);
                X509Certificate lc = cert(rootName, new X500Name("CN=BC SM2 Leaf,C=CN"), leaf.getPublic(),
                        root.getPrivate(), false, KeyUsage.digitalSignature | KeyUsage.nonRepudiation, 2);
                writePem(rc, a[1] + "/root.pem");
                writePem(lc, a[1] + "/leaf.pem");
                System.out.println("OK");
                break;
            }
            default: System.err.println("unknown command " + a[0]); System.exit(2);
        }
    }
}
