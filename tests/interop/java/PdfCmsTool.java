import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.Security;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.util.Store;

/** verify CMS_FILE DATA_FILE: verifies a detached PDF CMS (SM2/ECDSA/RSA) over the ByteRange bytes. */
public class PdfCmsTool {
    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        if (args.length == 3 && args[0].equals("verify")) {
            byte[] cms = Files.readAllBytes(Paths.get(args[1]));
            byte[] data = Files.readAllBytes(Paths.get(args[2]));
            CMSSignedData sd = new CMSSignedData(new CMSProcessableByteArray(data), cms);
            Store<X509CertificateHolder> certs = sd.getCertificates();
            for (SignerInformation si : sd.getSignerInfos().getSigners()) {
                X509CertificateHolder cert = (X509CertificateHolder) certs.getMatches(si.getSID()).iterator().next();
                boolean ok = si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(cert));
                System.out.println((ok ? "VALID " : "INVALID ") + si.getEncryptionAlgOID() + " " + si.getDigestAlgOID());
                if (!ok) System.exit(1);
            }
            return;
        }
        System.err.println("usage: PdfCmsTool verify CMS_FILE DATA_FILE");
        System.exit(2);
    }
}
