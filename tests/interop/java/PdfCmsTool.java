import java.nio.file.Files;
import java.nio.file.Paths;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Security;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.jcajce.spec.SM2ParameterSpec;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.DefaultSignatureAlgorithmIdentifierFinder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.util.Store;

/**
 * verify CMS_FILE DATA_FILE [SEAL_OUT]: verifies a detached PDF CMS (SM2/ECDSA/RSA) over the ByteRange bytes;
 * with SEAL_OUT, writes the registered seal a signer binds (trustsvc's signed attribute, an OCTET STRING) there
 * and prints "SEAL n" (n bytes), or "NO SEAL".
 * sign KEY_PKCS8_DER CERT_DER DATA_FILE OUT_FILE [SM2_ID|-]: detached SM3withSM2 CMS (DER) over DATA_FILE made by
 * CMSSignedDataGenerator; SM2_ID is the user ID as text ("-" for the empty ID; default 1234567812345678).
 */
public class PdfCmsTool {
    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        if ((args.length == 3 || args.length == 4) && args[0].equals("verify")) {
            byte[] cms = Files.readAllBytes(Paths.get(args[1]));
            byte[] data = Files.readAllBytes(Paths.get(args[2]));
            CMSSignedData sd = new CMSSignedData(new CMSProcessableByteArray(data), cms);
            Store<X509CertificateHolder> certs = sd.getCertificates();
            for (SignerInformation si : sd.getSignerInfos().getSigners()) {
                X509CertificateHolder cert = (X509CertificateHolder) certs.getMatches(si.getSID()).iterator().next();
                boolean ok = si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(cert));
                System.out.println((ok ? "VALID " : "INVALID ") + si.getEncryptionAlgOID() + " " + si.getDigestAlgOID());
                if (!ok) System.exit(1);
                if (args.length == 4) writeBoundSeal(si, args[3]);
            }
            return;
        }
        if ((args.length == 5 || args.length == 6) && args[0].equals("sign")) {
            PrivateKey key = KeyFactory.getInstance("EC", "BC")
                    .generatePrivate(new PKCS8EncodedKeySpec(Files.readAllBytes(Paths.get(args[1]))));
            X509CertificateHolder cert = new X509CertificateHolder(Files.readAllBytes(Paths.get(args[2])));
            byte[] data = Files.readAllBytes(Paths.get(args[3]));
            byte[] id = args.length == 6 ? (args[5].equals("-") ? new byte[0] : args[5].getBytes("UTF-8"))
                    : "1234567812345678".getBytes("UTF-8");
            CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
            gen.addSignerInfoGenerator(new JcaSignerInfoGeneratorBuilder(
                    new JcaDigestCalculatorProviderBuilder().setProvider("BC").build()).build(sm2Signer(key, id), cert));
            gen.addCertificate(cert);
            CMSSignedData sd = gen.generate(new CMSProcessableByteArray(data), false);
            Files.write(Paths.get(args[4]), sd.getEncoded("DER"));
            System.out.println("SIGNED " + sd.getSignerInfos().getSigners().iterator().next().getEncryptionAlgOID());
            return;
        }
        System.err.println("usage: PdfCmsTool verify CMS_FILE DATA_FILE [SEAL_OUT] | sign KEY CERT DATA OUT [SM2_ID|-]");
        System.exit(2);
    }

    /** SM3withSM2 ContentSigner with an explicit user ID (BC's builder has no way to set it). */
    static ContentSigner sm2Signer(PrivateKey key, byte[] id) throws Exception {
        Signature sig = Signature.getInstance("SM3withSM2", "BC");
        sig.setParameter(new SM2ParameterSpec(id));
        sig.initSign(key);
        AlgorithmIdentifier alg = new DefaultSignatureAlgorithmIdentifierFinder().find("SM3withSM2");
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        return new ContentSigner() {
            public AlgorithmIdentifier getAlgorithmIdentifier() { return alg; }
            public OutputStream getOutputStream() { return buf; }
            public byte[] getSignature() {
                try {
                    sig.update(buf.toByteArray());
                    return sig.sign();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }
        };
    }

    static final String REGISTERED_SEAL = "2.25.69328385081571213798592542347431357981.1";

    static void writeBoundSeal(SignerInformation si, String out) throws Exception {
        org.bouncycastle.asn1.cms.AttributeTable attrs = si.getSignedAttributes();
        org.bouncycastle.asn1.cms.Attribute a = attrs == null ? null
                : attrs.get(new org.bouncycastle.asn1.ASN1ObjectIdentifier(REGISTERED_SEAL));
        if (a == null) { System.out.println("NO SEAL"); return; }
        byte[] seal = org.bouncycastle.asn1.ASN1OctetString.getInstance(a.getAttrValues().getObjectAt(0)).getOctets();
        Files.write(Paths.get(out), seal);
        System.out.println("SEAL " + seal.length);
    }
}
