/*
 * ===========================================================================================
 *  trustsvc SM2 TEST TOKEN -- A PKCS#11 EMULATOR FOR TESTS ONLY.
 *
 *  NOT AN HSM. NOT A KEY STORE. NEVER USE IT FOR REAL KEYS.
 *  Keys live in process memory, unprotected, and vanish when the process exits. The PIN is
 *  "1234" (or $TESTTOKEN_PIN). It exists because nothing installable here signs SM2 over
 *  PKCS#11, so the trustsvc SM2 vendor-profile code (trustsvc/keys/pkcs11) is exercised through
 *  the real C ABI and python-pkcs11 against these emulated vendor mechanisms:
 *
 *    Sansec  CKK_SM2 0x80000004, keygen 0x80008001
 *            0x80008104 sign-e       input e (32 bytes)             output r||s
 *            0x80008100 SM3_SM2      input M, e = SM3(M)  (NO Z!)   output r||s
 *            0x80008102 SM3_SM2 (Z)  input M, e = SM3(Z||M)         output r||s
 *    Luna    CKK_SM2 0x80000016, keygen 0x80000B20, CKA_EC_POINT raw 04||X||Y
 *            0x80000B21 SM2DSA       input e (32 bytes)             output DER
 *            0x80000B22 SM3_SM2DSA   input M, e = SM3(Z||M)         output DER
 *  Z uses the default ID 1234567812345678. Build: make -C hsm/testtoken.
 * ===========================================================================================
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include <p11-kit/pkcs11.h>

#define CKK_SANSEC_SM2 0x80000004UL
#define CKK_LUNA_SM2 0x80000016UL
#define CKM_SANSEC_SM2_KEYGEN 0x80008001UL
#define CKM_SANSEC_SM3_SM2_NO_Z 0x80008100UL
#define CKM_SANSEC_SM3_SM2_Z 0x80008102UL
#define CKM_SANSEC_SM2_SIGN_E 0x80008104UL
#define CKM_LUNA_SM2_KEYGEN 0x80000B20UL
#define CKM_LUNA_SM2DSA 0x80000B21UL
#define CKM_LUNA_SM3_SM2DSA 0x80000B22UL
/* Test-defined (no vendor's code): SM3 with Z computed inside over the user ID given as the
 * mechanism parameter (raw ID bytes), output r||s. Models the MSG_ID_PARAM input mode. */
#define CKM_TESTTOKEN_SM3_SM2_ID_PARAM 0x8000F100UL
#define MAX_ID_LEN 8191 /* ENTL is the ID's length in bits in two bytes */

#define MAX_SESSIONS 64 /* table size; TESTTOKEN_MAX_SESSIONS may report and enforce fewer */
#define MAX_OBJECTS 4096
#define SLOT_ID 1

static const unsigned char SM2_OID_DER[] = {0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d};
static const char DEFAULT_ID[] = "1234567812345678";

/* The session limit this token reports and enforces: TESTTOKEN_MAX_SESSIONS (1..64), else 64. */
static int session_limit(void) {
    const char *v = getenv("TESTTOKEN_MAX_SESSIONS");
    int n = v ? atoi(v) : MAX_SESSIONS;
    return (n >= 1 && n <= MAX_SESSIONS) ? n : MAX_SESSIONS;
}

typedef struct {
    CK_ATTRIBUTE_TYPE type;
    CK_ULONG len;
    unsigned char *val;
} attr_t;

typedef struct {
    int used;
    int token;          /* CKA_TOKEN */
    CK_SESSION_HANDLE owner; /* session objects: destroyed with this session */
    attr_t *attrs;
    size_t nattrs;
    int has_key;
    unsigned char d[32];     /* private scalar (private key objects only) */
    unsigned char point[65]; /* 04||X||Y */
} object_t;

typedef struct {
    int open;
    CK_FLAGS flags;
    CK_OBJECT_HANDLE *found;
    size_t nfound, pos;
    int finding;
    int signing;
    CK_MECHANISM_TYPE sign_mech;
    unsigned char id[MAX_ID_LEN]; /* CKM_TESTTOKEN_SM3_SM2_ID_PARAM: the user ID */
    CK_ULONG id_len;
    CK_OBJECT_HANDLE sign_key;
} session_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initialized;
static int logged_in;
static session_t sessions[MAX_SESSIONS];
static object_t objects[MAX_OBJECTS];
static EC_GROUP *group;

/* ------------------------------------------------------------------------------------------ */
/* attributes                                                                                   */

static attr_t *attr_find(object_t *o, CK_ATTRIBUTE_TYPE t) {
    for (size_t i = 0; i < o->nattrs; i++)
        if (o->attrs[i].type == t) return &o->attrs[i];
    return NULL;
}

static int attr_set(object_t *o, CK_ATTRIBUTE_TYPE t, const void *v, CK_ULONG len) {
    attr_t *a = attr_find(o, t);
    if (!a) {
        attr_t *n = realloc(o->attrs, (o->nattrs + 1) * sizeof(attr_t));
        if (!n) return 0;
        o->attrs = n;
        a = &o->attrs[o->nattrs++];
        a->type = t;
        a->val = NULL;
    }
    free(a->val);
    a->val = malloc(len ? len : 1);
    if (!a->val) return 0;
    if (len) memcpy(a->val, v, len);
    a->len = len;
    return 1;
}

static int attr_bool(object_t *o, CK_ATTRIBUTE_TYPE t, int dflt) {
    attr_t *a = attr_find(o, t);
    return a && a->len >= 1 ? a->val[0] != 0 : dflt;
}

static CK_ULONG attr_ulong(object_t *o, CK_ATTRIBUTE_TYPE t, CK_ULONG dflt) {
    attr_t *a = attr_find(o, t);
    CK_ULONG v;
    if (!a || a->len != sizeof(CK_ULONG)) return dflt;
    memcpy(&v, a->val, sizeof v);
    return v;
}

static void set_bool(object_t *o, CK_ATTRIBUTE_TYPE t, int v) {
    CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
    attr_set(o, t, &b, 1);
}

static void set_ulong(object_t *o, CK_ATTRIBUTE_TYPE t, CK_ULONG v) { attr_set(o, t, &v, sizeof v); }

static void object_free(object_t *o) {
    for (size_t i = 0; i < o->nattrs; i++) free(o->attrs[i].val);
    free(o->attrs);
    OPENSSL_cleanse(o->d, sizeof o->d);
    memset(o, 0, sizeof *o);
}

static CK_OBJECT_HANDLE object_new(void) {
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (!objects[i].used) {
            memset(&objects[i], 0, sizeof objects[i]);
            objects[i].used = 1;
            return (CK_OBJECT_HANDLE)(i + 1);
        }
    return 0;
}

static object_t *object_get(CK_OBJECT_HANDLE h) {
    if (h < 1 || h > MAX_OBJECTS || !objects[h - 1].used) return NULL;
    return &objects[h - 1];
}

static int visible(object_t *o) { return logged_in || !attr_bool(o, CKA_PRIVATE, 0); }

static CK_RV template_apply(object_t *o, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].ulValueLen && !t[i].pValue) return CKR_ARGUMENTS_BAD;
        if (!attr_set(o, t[i].type, t[i].pValue, t[i].ulValueLen)) return CKR_HOST_MEMORY;
    }
    return CKR_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* sessions                                                                                     */

static session_t *session_get(CK_SESSION_HANDLE h) {
    if (h < 1 || h > MAX_SESSIONS || !sessions[h - 1].open) return NULL;
    return &sessions[h - 1];
}

static void session_close(CK_SESSION_HANDLE h) {
    session_t *s = &sessions[h - 1];
    free(s->found);
    memset(s, 0, sizeof *s);
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (objects[i].used && !objects[i].token && objects[i].owner == h) object_free(&objects[i]);
    int any = 0;
    for (int i = 0; i < MAX_SESSIONS; i++) any |= sessions[i].open;
    if (!any) logged_in = 0; /* login state ends with the application's last session */
}

#define ENTER()                                                  \
    pthread_mutex_lock(&lock);                                   \
    if (!initialized) {                                          \
        pthread_mutex_unlock(&lock);                             \
        return CKR_CRYPTOKI_NOT_INITIALIZED;                     \
    }

/* Token removal, for tests of what an application does when its token goes away: with
 * $TESTTOKEN_PRESENT_FILE set, the token is present only while that file exists. While it is
 * absent every call that needs the token answers CKR_DEVICE_REMOVED and the slot reports no
 * token; the sessions and the login end, as with a card pulled out. The key objects stay
 * (the same token inserted again). */
static int token_present(void) {
    const char *f = getenv("TESTTOKEN_PRESENT_FILE");
    return !f || !*f || access(f, F_OK) == 0;
}

static void token_removed(void) {
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (sessions[i].open) session_close((CK_SESSION_HANDLE)(i + 1));
    logged_in = 0;
}

#define ENTER_TOKEN()                                            \
    ENTER();                                                     \
    if (!token_present()) {                                      \
        token_removed();                                         \
        LEAVE(CKR_DEVICE_REMOVED);                               \
    }
#define LEAVE(rv)                    \
    do {                             \
        CK_RV rv_ = (rv);            \
        pthread_mutex_unlock(&lock); \
        return rv_;                  \
    } while (0)
#define SESSION(h, s)                                            \
    session_t *s = session_get(h);                               \
    if (!s) LEAVE(CKR_SESSION_HANDLE_INVALID)

/* ------------------------------------------------------------------------------------------ */
/* SM2 (GM/T 0003) on OpenSSL 3 BN/EC_POINT: sign a given e                                    */

static int sm3(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen, unsigned char out[32]) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 32;
    int ok = c && EVP_DigestInit_ex(c, EVP_sm3(), NULL) && EVP_DigestUpdate(c, a, alen) &&
             (blen == 0 || EVP_DigestUpdate(c, b, blen)) && EVP_DigestFinal_ex(c, out, &n);
    EVP_MD_CTX_free(c);
    return ok;
}

/* Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) */
static int sm2_z_id(const unsigned char point[65], const unsigned char *id, size_t idlen, unsigned char z[32]) {
    unsigned char tail[32 * 6];
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = BN_new(), *a = BN_new(), *b = BN_new(), *gx = BN_new(), *gy = BN_new();
    unsigned char *buf = malloc(2 + idlen + sizeof tail);
    int ok = buf && idlen <= MAX_ID_LEN && ctx && p && a && b && gx && gy && EC_GROUP_get_curve(group, p, a, b, ctx) &&
             EC_POINT_get_affine_coordinates(group, EC_GROUP_get0_generator(group), gx, gy, ctx);
    if (ok) {
        size_t bits = idlen * 8;
        buf[0] = (unsigned char)(bits >> 8);
        buf[1] = (unsigned char)bits;
        if (idlen) memcpy(buf + 2, id, idlen);
        ok = BN_bn2binpad(a, tail, 32) == 32 && BN_bn2binpad(b, tail + 32, 32) == 32 &&
             BN_bn2binpad(gx, tail + 64, 32) == 32 && BN_bn2binpad(gy, tail + 96, 32) == 32;
        memcpy(tail + 128, point + 1, 64);
        memcpy(buf + 2 + idlen, tail, sizeof tail);
        ok = ok && sm3(buf, 2 + idlen + sizeof tail, NULL, 0, z);
    }
    free(buf);
    BN_free(p), BN_free(a), BN_free(b), BN_free(gx), BN_free(gy), BN_CTX_free(ctx);
    return ok;
}

/* Z with the default ID 1234567812345678 */
static int sm2_z(const unsigned char point[65], unsigned char z[32]) {
    return sm2_z_id(point, (const unsigned char *)DEFAULT_ID, 16, z);
}

static int sm2_keygen(unsigned char d_out[32], unsigned char point[65]) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *d = BN_new(), *lim = BN_new();
    EC_POINT *P = EC_POINT_new(group);
    int ok = ctx && d && lim && P && BN_copy(lim, EC_GROUP_get0_order(group)) && BN_sub_word(lim, 1);
    do { /* d in [1, n-2] */
        ok = ok && BN_priv_rand_range(d, lim);
    } while (ok && BN_is_zero(d));
    ok = ok && EC_POINT_mul(group, P, d, NULL, NULL, ctx) &&
         EC_POINT_point2oct(group, P, POINT_CONVERSION_UNCOMPRESSED, point, 65, ctx) == 65 &&
         BN_bn2binpad(d, d_out, 32) == 32;
    BN_clear_free(d), BN_free(lim), EC_POINT_free(P), BN_CTX_free(ctx);
    return ok;
}

/* r = (e + x1) mod n, s = (1+d)^-1 (k - r d) mod n; output r||s */
static int sm2_sign_e(const unsigned char d32[32], const unsigned char e32[32], unsigned char rs[64]) {
    const BIGNUM *n = EC_GROUP_get0_order(group);
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *d = BN_bin2bn(d32, 32, NULL), *e = BN_bin2bn(e32, 32, NULL);
    BIGNUM *k = BN_new(), *r = BN_new(), *s = BN_new(), *x1 = BN_new(), *t = BN_new(), *inv = BN_new();
    EC_POINT *kG = EC_POINT_new(group);
    int ok = ctx && d && e && k && r && s && x1 && t && inv && kG;
    ok = ok && BN_copy(t, d) && BN_add_word(t, 1) && BN_mod_inverse(inv, t, n, ctx);
    while (ok) {
        ok = BN_priv_rand_range(k, n);
        if (!ok || BN_is_zero(k)) continue;
        ok = EC_POINT_mul(group, kG, k, NULL, NULL, ctx) &&
             EC_POINT_get_affine_coordinates(group, kG, x1, NULL, ctx) && BN_mod_add(r, e, x1, n, ctx);
        if (!ok || BN_is_zero(r)) continue;
        ok = BN_add(t, r, k);
        if (!ok || BN_cmp(t, n) == 0) continue;
        ok = BN_mod_mul(t, r, d, n, ctx) && BN_mod_sub(t, k, t, n, ctx) && BN_mod_mul(s, inv, t, n, ctx);
        if (!ok || BN_is_zero(s)) continue;
        ok = BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32;
        break;
    }
    BN_clear_free(d), BN_free(e), BN_clear_free(k), BN_free(r), BN_free(s), BN_free(x1), BN_clear_free(t);
    BN_free(inv), EC_POINT_free(kG), BN_CTX_free(ctx);
    return ok;
}

static size_t der_int(const unsigned char *v, unsigned char *out) {
    size_t i = 0;
    while (i < 31 && v[i] == 0) i++;
    size_t len = 32 - i, pad = (v[i] & 0x80) ? 1 : 0;
    out[0] = 0x02;
    out[1] = (unsigned char)(len + pad);
    if (pad) out[2] = 0;
    memcpy(out + 2 + pad, v + i, len);
    return 2 + pad + len;
}

static size_t rs_to_der(const unsigned char rs[64], unsigned char out[72]) {
    unsigned char body[70];
    size_t n = der_int(rs, body);
    n += der_int(rs + 32, body + n);
    out[0] = 0x30;
    out[1] = (unsigned char)n;
    memcpy(out + 2, body, n);
    return n + 2;
}

/* ------------------------------------------------------------------------------------------ */
/* general                                                                                      */

static void pad(unsigned char *dst, const char *src, size_t n) {
    size_t l = strlen(src);
    memset(dst, ' ', n);
    memcpy(dst, src, l < n ? l : n);
}

CK_RV C_Initialize(CK_VOID_PTR args) {
    if (args) {
        CK_C_INITIALIZE_ARGS *a = args;
        if (a->pReserved) return CKR_ARGUMENTS_BAD;
        int some = a->CreateMutex || a->DestroyMutex || a->LockMutex || a->UnlockMutex;
        int all = a->CreateMutex && a->DestroyMutex && a->LockMutex && a->UnlockMutex;
        if (some && !all) return CKR_ARGUMENTS_BAD;
        /* application mutexes or CKF_OS_LOCKING_OK: this module always uses a pthread mutex */
    }
    pthread_mutex_lock(&lock);
    if (initialized) LEAVE(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    if (!group && !(group = EC_GROUP_new_by_curve_name(NID_sm2))) LEAVE(CKR_GENERAL_ERROR);
    initialized = 1;
    LEAVE(CKR_OK);
}

CK_RV C_Finalize(CK_VOID_PTR reserved) {
    if (reserved) return CKR_ARGUMENTS_BAD;
    ENTER();
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (sessions[i].open) session_close((CK_SESSION_HANDLE)(i + 1));
    logged_in = 0;
    initialized = 0; /* token objects stay (in memory) until the process exits */
    LEAVE(CKR_OK);
}

CK_RV C_GetInfo(CK_INFO_PTR info) {
    ENTER();
    if (!info) LEAVE(CKR_ARGUMENTS_BAD);
    memset(info, 0, sizeof *info);
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    pad(info->manufacturerID, "trustsvc-testtoken", 32);
    pad(info->libraryDescription, "trustsvc SM2 TEST EMULATOR", 32);
    info->libraryVersion.major = 0;
    info->libraryVersion.minor = 1;
    LEAVE(CKR_OK);
}

CK_RV C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
    ENTER();
    if (!count) LEAVE(CKR_ARGUMENTS_BAD);
    if (present && !token_present()) {
        *count = 0;
        LEAVE(CKR_OK);
    }
    if (list) {
        if (*count < 1) {
            *count = 1;
            LEAVE(CKR_BUFFER_TOO_SMALL);
        }
        list[0] = SLOT_ID;
    }
    *count = 1;
    LEAVE(CKR_OK);
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info) {
    ENTER();
    if (slot != SLOT_ID) LEAVE(CKR_SLOT_ID_INVALID);
    if (!info) LEAVE(CKR_ARGUMENTS_BAD);
    memset(info, 0, sizeof *info);
    pad(info->slotDescription, "trustsvc SM2 TEST EMULATOR slot", 64);
    pad(info->manufacturerID, "trustsvc-testtoken", 32);
    info->flags = token_present() ? CKF_TOKEN_PRESENT : 0;
    LEAVE(CKR_OK);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    ENTER_TOKEN();
    if (slot != SLOT_ID) LEAVE(CKR_SLOT_ID_INVALID);
    if (!info) LEAVE(CKR_ARGUMENTS_BAD);
    memset(info, 0, sizeof *info);
    const char *label = getenv("TESTTOKEN_LABEL");
    pad(info->label, label && *label ? label : "trustsvc-test", 32);
    pad(info->manufacturerID, "trustsvc-testtoken", 32);
    pad(info->model, "SM2 TEST ONLY", 16);
    pad(info->serialNumber, "TESTTOKEN0001", 16);
    info->flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
    CK_ULONG n = 0;
    for (int i = 0; i < MAX_SESSIONS; i++) n += sessions[i].open ? 1 : 0;
    info->ulMaxSessionCount = info->ulMaxRwSessionCount = (CK_ULONG)session_limit();
    info->ulSessionCount = info->ulRwSessionCount = n;
    info->ulMaxPinLen = 64;
    info->ulMinPinLen = 4;
    info->ulTotalPublicMemory = info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion.major = info->firmwareVersion.major = 0;
    info->hardwareVersion.minor = info->firmwareVersion.minor = 1;
    pad(info->utcTime, "", 16);
    LEAVE(CKR_OK);
}

static const CK_MECHANISM_TYPE MECHS[] = {
    CKM_SANSEC_SM2_KEYGEN, CKM_SANSEC_SM2_SIGN_E, CKM_SANSEC_SM3_SM2_NO_Z, CKM_SANSEC_SM3_SM2_Z,
    CKM_TESTTOKEN_SM3_SM2_ID_PARAM,
    CKM_LUNA_SM2_KEYGEN,   CKM_LUNA_SM2DSA,       CKM_LUNA_SM3_SM2DSA,
};
#define NMECHS (sizeof MECHS / sizeof MECHS[0])

CK_RV C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
    ENTER_TOKEN();
    if (slot != SLOT_ID) LEAVE(CKR_SLOT_ID_INVALID);
    if (!count) LEAVE(CKR_ARGUMENTS_BAD);
    if (list) {
        if (*count < NMECHS) {
            *count = NMECHS;
            LEAVE(CKR_BUFFER_TOO_SMALL);
        }
        memcpy(list, MECHS, sizeof MECHS);
    }
    *count = NMECHS;
    LEAVE(CKR_OK);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info) {
    ENTER_TOKEN();
    if (slot != SLOT_ID) LEAVE(CKR_SLOT_ID_INVALID);
    if (!info) LEAVE(CKR_ARGUMENTS_BAD);
    info->ulMinKeySize = info->ulMaxKeySize = 256;
    if (type == CKM_SANSEC_SM2_KEYGEN || type == CKM_LUNA_SM2_KEYGEN) {
        info->flags = CKF_GENERATE_KEY_PAIR;
        LEAVE(CKR_OK);
    }
    for (size_t i = 0; i < NMECHS; i++)
        if (MECHS[i] == type) {
            info->flags = CKF_SIGN;
            LEAVE(CKR_OK);
        }
    LEAVE(CKR_MECHANISM_INVALID);
}

CK_RV C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                           CK_SESSION_HANDLE_PTR out) {
    (void)app, (void)notify;
    ENTER_TOKEN();
    if (slot != SLOT_ID) LEAVE(CKR_SLOT_ID_INVALID);
    if (!(flags & CKF_SERIAL_SESSION)) LEAVE(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    if (!out) LEAVE(CKR_ARGUMENTS_BAD);
    int open = 0;
    for (int i = 0; i < MAX_SESSIONS; i++) open += sessions[i].open ? 1 : 0;
    if (open >= session_limit()) LEAVE(CKR_SESSION_COUNT);
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (!sessions[i].open) {
            memset(&sessions[i], 0, sizeof sessions[i]);
            sessions[i].open = 1;
            sessions[i].flags = flags;
            *out = (CK_SESSION_HANDLE)(i + 1);
            LEAVE(CKR_OK);
        }
    LEAVE(CKR_SESSION_COUNT);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE h) {
    ENTER_TOKEN();
    SESSION(h, s);
    (void)s;
    session_close(h);
    LEAVE(CKR_OK);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slot) {
    ENTER_TOKEN();
    if (slot != SLOT_ID) LEAVE(CKR_SLOT_ID_INVALID);
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (sessions[i].open) session_close((CK_SESSION_HANDLE)(i + 1));
    LEAVE(CKR_OK);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (!info) LEAVE(CKR_ARGUMENTS_BAD);
    int rw = (s->flags & CKF_RW_SESSION) != 0;
    info->slotID = SLOT_ID;
    info->flags = s->flags;
    info->state = rw ? (logged_in ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION)
                     : (logged_in ? CKS_RO_USER_FUNCTIONS : CKS_RO_PUBLIC_SESSION);
    info->ulDeviceError = 0;
    LEAVE(CKR_OK);
}

CK_RV C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
    ENTER_TOKEN();
    SESSION(h, s);
    (void)s;
    if (user != CKU_USER) LEAVE(CKR_USER_TYPE_INVALID);
    if (logged_in) LEAVE(CKR_USER_ALREADY_LOGGED_IN);
    const char *want = getenv("TESTTOKEN_PIN");
    if (!want || !*want) want = "1234";
    if (!pin || len != strlen(want) || memcmp(pin, want, len) != 0) LEAVE(CKR_PIN_INCORRECT);
    logged_in = 1;
    LEAVE(CKR_OK);
}

CK_RV C_Logout(CK_SESSION_HANDLE h) {
    ENTER_TOKEN();
    SESSION(h, s);
    (void)s;
    if (!logged_in) LEAVE(CKR_USER_NOT_LOGGED_IN);
    logged_in = 0;
    LEAVE(CKR_OK);
}

/* ------------------------------------------------------------------------------------------ */
/* objects                                                                                      */

static CK_RV check_store(session_t *s, object_t *o) {
    if (o->token && !(s->flags & CKF_RW_SESSION)) return CKR_SESSION_READ_ONLY;
    if (attr_bool(o, CKA_PRIVATE, 0) && !logged_in) return CKR_USER_NOT_LOGGED_IN;
    return CKR_OK;
}

CK_RV C_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR out) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (!out || (n && !t)) LEAVE(CKR_ARGUMENTS_BAD);
    CK_OBJECT_HANDLE oh = object_new();
    if (!oh) LEAVE(CKR_DEVICE_MEMORY);
    object_t *o = object_get(oh);
    CK_RV rv = template_apply(o, t, n);
    CK_ULONG cls = attr_ulong(o, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    /* data objects and certificates only: keys are never imported into the emulator */
    if (rv == CKR_OK && cls != CKO_DATA && cls != CKO_CERTIFICATE) rv = CKR_TEMPLATE_INCONSISTENT;
    if (rv == CKR_OK) {
        o->token = attr_bool(o, CKA_TOKEN, 0);
        o->owner = h;
        if (!attr_find(o, CKA_TOKEN)) set_bool(o, CKA_TOKEN, 0);
        if (!attr_find(o, CKA_PRIVATE)) set_bool(o, CKA_PRIVATE, cls == CKO_DATA);
        if (!attr_find(o, CKA_MODIFIABLE)) set_bool(o, CKA_MODIFIABLE, 1);
        rv = check_store(s, o);
    }
    if (rv != CKR_OK) {
        object_free(o);
        LEAVE(rv);
    }
    *out = oh;
    LEAVE(CKR_OK);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh) {
    ENTER_TOKEN();
    SESSION(h, s);
    object_t *o = object_get(oh);
    if (!o || !visible(o)) LEAVE(CKR_OBJECT_HANDLE_INVALID);
    CK_RV rv = check_store(s, o);
    if (rv != CKR_OK) LEAVE(rv);
    object_free(o);
    LEAVE(CKR_OK);
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
    ENTER_TOKEN();
    SESSION(h, s);
    (void)s;
    object_t *o = object_get(oh);
    if (!o || !visible(o)) LEAVE(CKR_OBJECT_HANDLE_INVALID);
    if (n && !t) LEAVE(CKR_ARGUMENTS_BAD);
    CK_RV rv = CKR_OK;
    int priv = attr_ulong(o, CKA_CLASS, 0) == CKO_PRIVATE_KEY;
    for (CK_ULONG i = 0; i < n; i++) {
        if (priv && (t[i].type == CKA_VALUE || t[i].type == CKA_PRIVATE_EXPONENT)) {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION; /* sensitive, never extractable */
            rv = CKR_ATTRIBUTE_SENSITIVE;
            continue;
        }
        attr_t *a = attr_find(o, t[i].type);
        if (!a) {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            if (rv == CKR_OK) rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (!t[i].pValue) {
            t[i].ulValueLen = a->len;
        } else if (t[i].ulValueLen < a->len) {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            if (rv == CKR_OK) rv = CKR_BUFFER_TOO_SMALL;
        } else {
            memcpy(t[i].pValue, a->val, a->len);
            t[i].ulValueLen = a->len;
        }
    }
    LEAVE(rv);
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
    ENTER_TOKEN();
    SESSION(h, s);
    object_t *o = object_get(oh);
    if (!o || !visible(o)) LEAVE(CKR_OBJECT_HANDLE_INVALID);
    if (!attr_bool(o, CKA_MODIFIABLE, 1)) LEAVE(CKR_ACTION_PROHIBITED);
    CK_RV rv = check_store(s, o);
    if (rv != CKR_OK) LEAVE(rv);
    for (CK_ULONG i = 0; i < n; i++)
        if (t[i].type == CKA_CLASS || t[i].type == CKA_KEY_TYPE || t[i].type == CKA_TOKEN ||
            t[i].type == CKA_PRIVATE)
            LEAVE(CKR_ATTRIBUTE_READ_ONLY);
    LEAVE(template_apply(o, t, n));
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (s->finding) LEAVE(CKR_OPERATION_ACTIVE);
    if (n && !t) LEAVE(CKR_ARGUMENTS_BAD);
    free(s->found);
    s->found = calloc(MAX_OBJECTS, sizeof(CK_OBJECT_HANDLE));
    if (!s->found) LEAVE(CKR_HOST_MEMORY);
    s->nfound = s->pos = 0;
    for (int i = 0; i < MAX_OBJECTS; i++) {
        object_t *o = &objects[i];
        if (!o->used || !visible(o)) continue;
        int match = 1;
        for (CK_ULONG j = 0; j < n && match; j++) {
            attr_t *a = attr_find(o, t[j].type);
            match = a && a->len == t[j].ulValueLen && (a->len == 0 || memcmp(a->val, t[j].pValue, a->len) == 0);
        }
        if (match) s->found[s->nfound++] = (CK_OBJECT_HANDLE)(i + 1);
    }
    s->finding = 1;
    LEAVE(CKR_OK);
}

CK_RV C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (!s->finding) LEAVE(CKR_OPERATION_NOT_INITIALIZED);
    if (!out || !count) LEAVE(CKR_ARGUMENTS_BAD);
    CK_ULONG k = 0;
    while (k < max && s->pos < s->nfound) out[k++] = s->found[s->pos++];
    *count = k;
    LEAVE(CKR_OK);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE h) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (!s->finding) LEAVE(CKR_OPERATION_NOT_INITIALIZED);
    free(s->found);
    s->found = NULL;
    s->finding = 0;
    LEAVE(CKR_OK);
}

/* ------------------------------------------------------------------------------------------ */
/* key generation and signing                                                                   */

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pt, CK_ULONG pn,
                               CK_ATTRIBUTE_PTR vt, CK_ULONG vn, CK_OBJECT_HANDLE_PTR pub_out,
                               CK_OBJECT_HANDLE_PTR priv_out) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (!mech || !pub_out || !priv_out || (pn && !pt) || (vn && !vt)) LEAVE(CKR_ARGUMENTS_BAD);
    CK_KEY_TYPE kt;
    if (mech->mechanism == CKM_SANSEC_SM2_KEYGEN) kt = CKK_SANSEC_SM2;
    else if (mech->mechanism == CKM_LUNA_SM2_KEYGEN) kt = CKK_LUNA_SM2;
    else LEAVE(CKR_MECHANISM_INVALID);
    if (mech->pParameter || mech->ulParameterLen) LEAVE(CKR_MECHANISM_PARAM_INVALID);

    CK_OBJECT_HANDLE ph = object_new(), vh = object_new();
    object_t *pub = object_get(ph), *priv = object_get(vh);
    CK_RV rv = (pub && priv) ? CKR_OK : CKR_DEVICE_MEMORY;
    if (rv == CKR_OK) rv = template_apply(pub, pt, pn);
    if (rv == CKR_OK) rv = template_apply(priv, vt, vn);
    /* template checks: vendor key type, the SM2 curve, and a key that can never leave */
    for (int i = 0; rv == CKR_OK && i < 2; i++) {
        object_t *o = i ? priv : pub;
        if (attr_ulong(o, CKA_KEY_TYPE, kt) != kt) rv = CKR_TEMPLATE_INCONSISTENT;
        attr_t *p = attr_find(o, CKA_EC_PARAMS);
        if (p && (p->len != sizeof SM2_OID_DER || memcmp(p->val, SM2_OID_DER, p->len)))
            rv = CKR_DOMAIN_PARAMS_INVALID;
    }
    if (rv == CKR_OK && (attr_bool(priv, CKA_EXTRACTABLE, 0) || !attr_bool(priv, CKA_SENSITIVE, 1)))
        rv = CKR_TEMPLATE_INCONSISTENT;
    unsigned char d[32], point[65];
    if (rv == CKR_OK && !sm2_keygen(d, point)) rv = CKR_FUNCTION_FAILED;
    if (rv == CKR_OK) {
        unsigned char der[67] = {0x04, 65};
        memcpy(der + 2, point, 65);
        CK_ULONG pubcls = CKO_PUBLIC_KEY, privcls = CKO_PRIVATE_KEY;
        attr_set(pub, CKA_CLASS, &pubcls, sizeof pubcls);
        attr_set(priv, CKA_CLASS, &privcls, sizeof privcls);
        for (int i = 0; i < 2; i++) {
            object_t *o = i ? priv : pub;
            set_ulong(o, CKA_KEY_TYPE, kt);
            attr_set(o, CKA_EC_PARAMS, SM2_OID_DER, sizeof SM2_OID_DER);
            set_bool(o, CKA_LOCAL, 1);
            set_ulong(o, CKA_KEY_GEN_MECHANISM, mech->mechanism);
            if (!attr_find(o, CKA_TOKEN)) set_bool(o, CKA_TOKEN, 0);
            if (!attr_find(o, CKA_MODIFIABLE)) set_bool(o, CKA_MODIFIABLE, 1);
            if (!attr_find(o, CKA_LABEL)) attr_set(o, CKA_LABEL, "", 0);
            if (!attr_find(o, CKA_ID)) attr_set(o, CKA_ID, "", 0);
            o->token = attr_bool(o, CKA_TOKEN, 0);
            o->owner = h;
            memcpy(o->point, point, 65);
        }
        /* Luna documents CKA_EC_POINT as the raw point, Sansec as DER OCTET STRING (PKCS#11 2.40) */
        if (kt == CKK_LUNA_SM2) attr_set(pub, CKA_EC_POINT, point, 65);
        else attr_set(pub, CKA_EC_POINT, der, sizeof der);
        if (!attr_find(pub, CKA_PRIVATE)) set_bool(pub, CKA_PRIVATE, 0);
        if (!attr_find(pub, CKA_VERIFY)) set_bool(pub, CKA_VERIFY, 1);
        if (!attr_find(priv, CKA_PRIVATE)) set_bool(priv, CKA_PRIVATE, 1);
        if (!attr_find(priv, CKA_SIGN)) set_bool(priv, CKA_SIGN, 1);
        set_bool(priv, CKA_SENSITIVE, 1);
        set_bool(priv, CKA_EXTRACTABLE, 0);
        set_bool(priv, CKA_ALWAYS_SENSITIVE, 1);
        set_bool(priv, CKA_NEVER_EXTRACTABLE, 1);
        memcpy(priv->d, d, 32);
        priv->has_key = 1;
        OPENSSL_cleanse(d, sizeof d);
        rv = check_store(s, pub);
        if (rv == CKR_OK) rv = check_store(s, priv);
    }
    if (rv != CKR_OK) {
        if (pub) object_free(pub);
        if (priv) object_free(priv);
        LEAVE(rv);
    }
    *pub_out = ph;
    *priv_out = vh;
    LEAVE(CKR_OK);
}

static CK_KEY_TYPE mech_key_type(CK_MECHANISM_TYPE m) {
    switch (m) {
    case CKM_SANSEC_SM2_SIGN_E:
    case CKM_SANSEC_SM3_SM2_NO_Z:
    case CKM_SANSEC_SM3_SM2_Z:
    case CKM_TESTTOKEN_SM3_SM2_ID_PARAM: return CKK_SANSEC_SM2;
    case CKM_LUNA_SM2DSA:
    case CKM_LUNA_SM3_SM2DSA: return CKK_LUNA_SM2;
    default: return 0;
    }
}

CK_RV C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE kh) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (!mech) LEAVE(CKR_ARGUMENTS_BAD);
    if (s->signing) LEAVE(CKR_OPERATION_ACTIVE);
    if (!logged_in) LEAVE(CKR_USER_NOT_LOGGED_IN);
    CK_KEY_TYPE want = mech_key_type(mech->mechanism);
    if (!want) LEAVE(CKR_MECHANISM_INVALID);
    if (mech->mechanism == CKM_TESTTOKEN_SM3_SM2_ID_PARAM) {
        if (mech->ulParameterLen > MAX_ID_LEN || (mech->ulParameterLen && !mech->pParameter))
            LEAVE(CKR_MECHANISM_PARAM_INVALID);
    } else if (mech->pParameter || mech->ulParameterLen) LEAVE(CKR_MECHANISM_PARAM_INVALID);
    object_t *o = object_get(kh);
    if (!o || !visible(o)) LEAVE(CKR_KEY_HANDLE_INVALID);
    if (!o->has_key || attr_ulong(o, CKA_CLASS, 0) != CKO_PRIVATE_KEY) LEAVE(CKR_KEY_TYPE_INCONSISTENT);
    if (attr_ulong(o, CKA_KEY_TYPE, 0) != want) LEAVE(CKR_KEY_TYPE_INCONSISTENT);
    if (!attr_bool(o, CKA_SIGN, 0)) LEAVE(CKR_KEY_FUNCTION_NOT_PERMITTED);
    s->signing = 1;
    s->sign_mech = mech->mechanism;
    s->sign_key = kh;
    s->id_len = 0;
    if (mech->mechanism == CKM_TESTTOKEN_SM3_SM2_ID_PARAM) {
        if (mech->ulParameterLen) memcpy(s->id, mech->pParameter, mech->ulParameterLen);
        s->id_len = mech->ulParameterLen;
    }
    LEAVE(CKR_OK);
}

CK_RV C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR siglen) {
    ENTER_TOKEN();
    SESSION(h, s);
    if (!s->signing) LEAVE(CKR_OPERATION_NOT_INITIALIZED);
    CK_RV rv = CKR_OK;
    object_t *o = object_get(s->sign_key);
    int der = s->sign_mech == CKM_LUNA_SM2DSA || s->sign_mech == CKM_LUNA_SM3_SM2DSA;
    int prehashed = s->sign_mech == CKM_SANSEC_SM2_SIGN_E || s->sign_mech == CKM_LUNA_SM2DSA;
    CK_ULONG maxlen = der ? 72 : 64;
    if (!siglen || (len && !data)) rv = CKR_ARGUMENTS_BAD;
    else if (!o || !o->has_key) rv = CKR_KEY_HANDLE_INVALID;
    else if (prehashed && len != 32) rv = CKR_DATA_LEN_RANGE;
    else if (!sig) { /* size query: the operation stays active */
        *siglen = maxlen;
        LEAVE(CKR_OK);
    } else if (*siglen < maxlen) {
        *siglen = maxlen;
        LEAVE(CKR_BUFFER_TOO_SMALL);
    }
    if (rv == CKR_OK) {
        unsigned char e[32], z[32], rs[64];
        if (prehashed) memcpy(e, data, 32);
        else if (s->sign_mech == CKM_SANSEC_SM3_SM2_NO_Z) { /* SM3(M), no Z: not GM/T 0009 */
            if (!sm3(data, len, NULL, 0, e)) rv = CKR_FUNCTION_FAILED;
        } else if (s->sign_mech == CKM_TESTTOKEN_SM3_SM2_ID_PARAM) {
            if (!sm2_z_id(o->point, s->id, s->id_len, z) || !sm3(z, 32, data, len, e)) rv = CKR_FUNCTION_FAILED;
        } else if (!sm2_z(o->point, z) || !sm3(z, 32, data, len, e)) rv = CKR_FUNCTION_FAILED;
        if (rv == CKR_OK && !sm2_sign_e(o->d, e, rs)) rv = CKR_FUNCTION_FAILED;
        if (rv == CKR_OK) {
            if (der) *siglen = rs_to_der(rs, sig);
            else {
                memcpy(sig, rs, 64);
                *siglen = 64;
            }
        }
    }
    s->signing = 0; /* any other outcome ends the operation */
    LEAVE(rv);
}

/* ------------------------------------------------------------------------------------------ */

static CK_RV not_supported(void) { return CKR_FUNCTION_NOT_SUPPORTED; }

static CK_FUNCTION_LIST function_list;

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    if (!out) return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&lock);
    if (!function_list.C_Initialize) {
        /* every entry after the version first answers CKR_FUNCTION_NOT_SUPPORTED */
        typedef CK_RV (*fn_t)(void);
        fn_t *slot = (fn_t *)&function_list.C_Initialize;
        fn_t *end = (fn_t *)((char *)&function_list + sizeof function_list);
        for (; slot < end; slot++) *slot = not_supported;
        function_list.version.major = 2;
        function_list.version.minor = 40;
#define SET(name) function_list.name = name
        SET(C_Initialize);
        SET(C_Finalize);
        SET(C_GetInfo);
        SET(C_GetFunctionList);
        SET(C_GetSlotList);
        SET(C_GetSlotInfo);
        SET(C_GetTokenInfo);
        SET(C_GetMechanismList);
        SET(C_GetMechanismInfo);
        SET(C_OpenSession);
        SET(C_CloseSession);
        SET(C_CloseAllSessions);
        SET(C_GetSessionInfo);
        SET(C_Login);
        SET(C_Logout);
        SET(C_CreateObject);
        SET(C_DestroyObject);
        SET(C_GetAttributeValue);
        SET(C_SetAttributeValue);
        SET(C_FindObjectsInit);
        SET(C_FindObjects);
        SET(C_FindObjectsFinal);
        SET(C_GenerateKeyPair);
        SET(C_SignInit);
        SET(C_Sign);
#undef SET
    }
    *out = &function_list;
    pthread_mutex_unlock(&lock);
    return CKR_OK;
}
