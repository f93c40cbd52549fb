// Test-only BouncyCastle checker for trustsvc CMS and RFC 3161 interop tests.
// Usage:
//   CmsTool verify CMS_DER_FILE [DATA_FILE]          -> prints OK or FAIL <why>, per SignerInfo
//   CmsTool sign ALG KEY_PEM CERT_PEM DATA_FILE OUT_FILE [attached|detached] [attrs|noattrs]
//                                                   -> CMS DER signed with ALG (SM3withSM2, SHA256withECDSA)
//   CmsTool ts-verify TOKEN_DER_FILE                 -> OK <hashOID> <imprintHex> <genTime> or FAIL <why>
import java.io.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.*;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.*;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.tsp.TimeStampToken;
import org.bouncycastle.util.Store;
import org.bouncycastle.util.encoders.Hex;
import org.bouncycastle.util.io.pem.PemReader;

public class CmsTool {
    static byte[] pemBody(String path) throws Exception {
        try (PemReader r = new PemReader(new FileReader(path))) { return r.readPemObject().getContent(); }
    }

    static byte[] read(String path) throws Exception { return Files.readAllBytes(Paths.get(path)); }

    @SuppressWarnings("unchecked")
    static X509CertificateHolder certFor(Store<X509CertificateHolder> store, SignerId sid) {
        Collection<X509CertificateHolder> found = store.getMatches(sid);
        return found.isEmpty() ? null : found.iterator().next();
    }

    public static void main(String[] a) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        switch (a[0]) {
            case "verify": {
                CMSSignedData sd = a.length > 2
                        ? new CMSSignedData(new CMSProcessableByteArray(read(a[2])), read(a[1]))
                        : new CMSSignedData(read(a[1]));
                Store<X509CertificateHolder> certs = sd.getCertificates();
                boolean ok = true;
                for (SignerInformation si : sd.getSignerInfos().getSigners()) {
                    X509CertificateHolder cert = certFor(certs, si.getSID());
                    if (cert == null) { System.out.println("FAIL no signer certificate"); ok = false; continue; }
                    try {
                        boolean v = si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(cert));
                        System.out.println(v ? "OK " + si.getEncryptionAlgOID() : "FAIL signature");
                        ok &= v;
                    } catch (Exception e) { System.out.println("FAIL " + e); ok = false; }
                }
                System.exit(ok ? 0 : 1);
            }
            case "sign": {
                String alg = a[1];
                a = Arrays.copyOfRange(a, 1, a.length);
                byte[] keyDer = pemBody(a[1]);
                KeyFactory kf = KeyFactory.getInstance("EC", "BC");
                PrivateKey sk = kf.generatePrivate(new PKCS8EncodedKeySpec(keyDer));
                X509Certificate cert = (X509Certificate) java.security.cert.CertificateFactory
                        .getInstance("X.509", "BC").generateCertificate(new FileInputStream(a[2]));
                boolean attached = a.length > 5 && a[5].equals("attached");
                boolean noattrs = a.length > 6 && a[6].equals("noattrs");
                CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
                JcaSignerInfoGeneratorBuilder sib = new JcaSignerInfoGeneratorBuilder(
                        new JcaDigestCalculatorProviderBuilder().setProvider("BC").build());
                sib.setDirectSignature(noattrs);
                gen.addSignerInfoGenerator(sib.build(new JcaContentSignerBuilder(alg).setProvider("BC").build(sk), cert));
                gen.addCertificates(new JcaCertStore(Collections.singletonList(cert)));
                CMSSignedData sd = gen.generate(new CMSProcessableByteArray(read(a[3])), attached);
                Files.write(Paths.get(a[4]), sd.getEncoded("DER"));
                System.out.println("OK");
                break;
            }
            case "ts-verify": {
                TimeStampToken tst = new TimeStampToken(new CMSSignedData(read(a[1])));
                X509CertificateHolder cert = certFor(tst.getCertificates(), tst.getSID());
                if (cert == null) { System.out.println("FAIL no TSA certificate"); System.exit(1); }
                try {
                    tst.validate(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(cert));
                } catch (Exception e) { System.out.println("FAIL " + e); System.exit(1); }
                System.out.println("OK " + tst.getTimeStampInfo().getMessageImprintAlgOID().getId() + " "
                        + Hex.toHexString(tst.getTimeStampInfo().getMessageImprintDigest()) + " "
                        + tst.getTimeStampInfo().getGenTime().getTime());
                break;
            }
            default: System.err.println("unknown command " + a[0]); System.exit(2);
        }
    }
}
