// Test-only independent check of trustsvc electronic seals (GB/T 38540 v4) with BouncyCastle's ASN.1 classes.
// Usage:
//   SealCheck seal FILE        -> SESeal: maker signature over the exact SES_SealInfo bytes
//   SealCheck signature FILE   -> SES_Signature: signer signature over the exact TBS_Sign bytes, then the
//                                 embedded seal's maker signature
// Several KIND FILE pairs may follow each other (one JVM). Prints per file "OK <steps>" or
// "FAIL <step>: <why>" (exit 0 / 1). Nothing here is shared with trustsvc's parser.
import java.io.*;
import java.math.BigInteger;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import org.bouncycastle.asn1.*;
import org.bouncycastle.jce.provider.BouncyCastleProvider;

public class SealCheck {
    static final String SM2_WITH_SM3 = "1.2.156.10197.1.501";

    static class Fail extends Exception {
        Fail(String step, String why) { super(step + ": " + why); }
    }

    static ASN1Sequence seq(ASN1Encodable e, String step) throws Fail {
        if (!(e instanceof ASN1Sequence)) throw new Fail(step, "not a SEQUENCE");
        return (ASN1Sequence) e;
    }

    static byte[] octets(ASN1Encodable e, String step) throws Fail {
        if (e instanceof ASN1OctetString) return ((ASN1OctetString) e).getOctets();
        throw new Fail(step, "not an OCTET STRING");
    }

    static byte[] bits(ASN1Encodable e, String step) throws Fail {
        if (e instanceof ASN1BitString) return ((ASN1BitString) e).getOctets();
        throw new Fail(step, "not a BIT STRING");
    }

    static String oid(ASN1Encodable e, String step) throws Fail {
        if (e instanceof ASN1ObjectIdentifier) return ((ASN1ObjectIdentifier) e).getId();
        throw new Fail(step, "not an OBJECT IDENTIFIER");
    }

    /** [start, end) of the TLV at off (definite lengths only): the exact bytes as received. */
    static int[] tlv(byte[] b, int off) throws Fail {
        if (off + 2 > b.length) throw new Fail("format", "truncated");
        int p = off + 1;
        if ((b[off] & 0x1f) == 0x1f) { while (p < b.length && (b[p] & 0x80) != 0) p++; p++; }
        int first = b[p++] & 0xff, len;
        if (first < 0x80) len = first;
        else {
            int n = first & 0x7f;
            if (n == 0 || n > 4) throw new Fail("format", "unsupported length form");
            len = 0;
            for (int i = 0; i < n; i++) len = (len << 8) | (b[p++] & 0xff);
        }
        if (len < 0 || p + len > b.length) throw new Fail("format", "length beyond the data");
        return new int[]{off, p + len, p};  // start, end, content start
    }

    static byte[] wrapSequence(byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x30);
        int n = content.length;
        if (n < 0x80) out.write(n);
        else if (n < 0x100) { out.write(0x81); out.write(n); }
        else if (n < 0x10000) { out.write(0x82); out.write(n >> 8); out.write(n & 0xff); }
        else { out.write(0x83); out.write(n >> 16); out.write((n >> 8) & 0xff); out.write(n & 0xff); }
        out.write(content, 0, n);
        return out.toByteArray();
    }

    static byte[] slice(byte[] b, int[] t) { return java.util.Arrays.copyOfRange(b, t[0], t[1]); }

    /** Some producers write the SM2 signature as raw r||s (64 bytes); BC wants DER. A raw one may begin
     *  with 0x30 too (one in 256), so 64 bytes count as DER only when they parse and re-encode as a
     *  DER SEQUENCE of two values. */
    static byte[] derSignature(byte[] sig) throws IOException {
        if (sig.length == 64 && !isDerPair(sig)) {
            BigInteger r = new BigInteger(1, java.util.Arrays.copyOfRange(sig, 0, 32));
            BigInteger s = new BigInteger(1, java.util.Arrays.copyOfRange(sig, 32, 64));
            return new DERSequence(new ASN1Encodable[]{new ASN1Integer(r), new ASN1Integer(s)}).getEncoded("DER");
        }
        return sig;
    }

    static boolean isDerPair(byte[] sig) {
        try {
            ASN1Primitive p = ASN1Primitive.fromByteArray(sig);
            return p instanceof ASN1Sequence && ((ASN1Sequence) p).size() == 2
                    && java.util.Arrays.equals(p.getEncoded("DER"), sig);
        } catch (Exception e) {
            return false;
        }
    }

    static void verify(String step, byte[] certDer, String alg, byte[] message, byte[] sig) throws Exception {
        if (!SM2_WITH_SM3.equals(alg)) throw new Fail(step, "algorithm " + alg + " is not SM2-with-SM3");
        X509Certificate cert;
        try {
            cert = (X509Certificate) CertificateFactory.getInstance("X.509", "BC")
                    .generateCertificate(new ByteArrayInputStream(certDer));
        } catch (Exception e) {
            throw new Fail(step, "certificate unreadable: " + e.getMessage());
        }
        Signature s = Signature.getInstance("SM3withSM2", "BC");
        s.initVerify(cert.getPublicKey());
        s.update(message);
        boolean ok;
        try {
            ok = s.verify(derSignature(sig));
        } catch (SignatureException e) {
            ok = false;
        }
        if (!ok) throw new Fail(step, "SM2 signature does not verify");
    }

    /** Seal v4: SEQUENCE { SES_SealInfo, cert OCTET STRING, signAlgID OID, signedValue BIT STRING, ... }.
     *  Seal v1: SEQUENCE { SES_SealInfo, SEQUENCE { cert, signatureAlgorithm, signData } }. */
    static void checkSeal(byte[] der) throws Exception {
        ASN1Sequence seal = seq(ASN1Primitive.fromByteArray(der), "seal.format");
        if (seal.size() < 2) throw new Fail("seal.format", "too few fields");
        seq(seal.getObjectAt(0), "seal.format");
        byte[] info = slice(der, tlv(der, tlv(der, 0)[2]));  // SES_SealInfo exactly as received
        ASN1Encodable second = seal.getObjectAt(1);
        byte[] cert; String alg; byte[] sig;
        if (second instanceof ASN1Sequence) {  // v1 SES_SignInfo
            ASN1Sequence si = (ASN1Sequence) second;
            cert = octets(si.getObjectAt(0), "seal.format");
            alg = oid(si.getObjectAt(1), "seal.format");
            sig = bits(si.getObjectAt(2), "seal.format");
            // GM/T 0031: the maker signs SEQUENCE { SES_SealInfo, cert, signatureAlgorithm }
            int[] infoTlv = tlv(der, tlv(der, 0)[2]);
            int[] siTlv = tlv(der, infoTlv[1]);
            int[] certTlv = tlv(der, siTlv[2]);
            int[] algTlv = tlv(der, certTlv[1]);
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            body.write(info);
            body.write(slice(der, certTlv));
            body.write(slice(der, algTlv));
            info = wrapSequence(body.toByteArray());
        } else {
            if (seal.size() < 4) throw new Fail("seal.format", "too few fields");
            cert = octets(second, "seal.format");
            alg = oid(seal.getObjectAt(2), "seal.format");
            sig = bits(seal.getObjectAt(3), "seal.format");
        }
        verify("seal.maker_signature", cert, alg, info, sig);
    }

    /** v4: SEQUENCE { TBS_Sign, cert, signatureAlgID, signature BIT STRING, [timeStamp] }, TBS_Sign holds the seal
     *  second.  v1: SEQUENCE { TBS_Sign { version, eseal, timeInfo, dataHash, propertyInfo, cert, alg }, signature }. */
    static void checkSignature(byte[] der) throws Exception {
        ASN1Sequence sig = seq(ASN1Primitive.fromByteArray(der), "signature.format");
        if (sig.size() < 2) throw new Fail("signature.format", "too few fields");
        ASN1Sequence tbs = seq(sig.getObjectAt(0), "signature.format");
        int[] tbsTlv = tlv(der, tlv(der, 0)[2]);
        byte[] tbsBytes = slice(der, tbsTlv);  // TBS_Sign exactly as received
        int[] version = tlv(der, tbsTlv[2]);
        byte[] sealBytes = slice(der, tlv(der, version[1]));  // the embedded seal, second in TBS_Sign
        seq(tbs.getObjectAt(1), "signature.format");
        byte[] cert; String alg; byte[] value;
        if (sig.size() == 2) {
            if (tbs.size() < 7) throw new Fail("signature.format", "v1 TBS_Sign too short");
            cert = octets(tbs.getObjectAt(5), "signature.format");
            alg = oid(tbs.getObjectAt(6), "signature.format");
            value = bits(sig.getObjectAt(1), "signature.format");
        } else {
            cert = octets(sig.getObjectAt(1), "signature.format");
            alg = oid(sig.getObjectAt(2), "signature.format");
            value = bits(sig.getObjectAt(3), "signature.format");
        }
        verify("signature.signer_signature", cert, alg, tbsBytes, value);
        checkSeal(sealBytes);
    }

    static String check(String kind, byte[] der) throws Exception {
        try {
            try (ASN1InputStream in = new ASN1InputStream(der)) {
                if (in.readObject() == null || in.readObject() != null)
                    throw new Fail("format", "not exactly one DER object");
            } catch (IOException | IllegalArgumentException | IllegalStateException ex) {
                throw new Fail("format", "not DER: " + ex.getMessage());
            }
            if (tlv(der, 0)[1] != der.length) throw new Fail("format", "trailing bytes");
            switch (kind) {
                case "seal": checkSeal(der); return "OK seal.maker_signature";
                case "signature": checkSignature(der); return "OK signature.signer_signature seal.maker_signature";
                default: return "FAIL usage: seal|signature FILE";
            }
        } catch (Fail f) {
            return "FAIL " + f.getMessage();
        } catch (IOException | RuntimeException ex) {
            return "FAIL format: " + ex;
        }
    }

    /** SealCheck KIND FILE [KIND FILE ...]: one result line per file, in order; exit 1 if any failed. */
    public static void main(String[] a) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        boolean allOk = true;
        for (int i = 0; i + 1 < a.length; i += 2) {
            String line = check(a[i], Files.readAllBytes(Paths.get(a[i + 1])));
            allOk &= line.startsWith("OK");
            System.out.println(line);
        }
        System.exit(allOk && a.length >= 2 ? 0 : 1);
    }
}
