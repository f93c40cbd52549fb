/*
 * _sm2native: SM2 signing accelerator for trustsvc (GB/T 32918.2 signature, GB/T 32918.5 curve).
 *
 * Written for trustsvc from the standard; no third-party C code. Only signing and k*G live here;
 * verification, encryption and key checks stay with gmalglib (see trustsvc/algorithms/sm2_engine.py).
 *
 * Representation
 *   Field elements mod p and scalars mod n are 4 x 64-bit limbs, least significant first.
 *   Field elements are kept in Montgomery form (a*R mod p, R = 2^256). Since p = -1 mod 2^64,
 *   -p^-1 mod 2^64 = 1, so the Montgomery reduction factor is just the low limb.
 *
 * Constant time with respect to secrets (d, k, and every value derived from them)
 *   - No branch and no memory index depends on a secret. Carries and borrows are folded with
 *     masks; table look-ups read every entry of the window and keep the wanted one with a mask.
 *   - Inversions use Fermat's little theorem (a^(m-2)); the exponent is public, so the sequence
 *     of squarings and multiplications is the same for every a.
 *   - The only secret-independent loops with early exits are the rejection sampling of k
 *     (depends on a discarded random value) and the retries GB/T 32918.2 requires (r = 0,
 *     r + k = n, s = 0), which happen with probability about 2^-254.
 *   This is our own code, constant-time by construction and checked by tests for correctness,
 *   not independently audited, and not checked with a timing tool; gcc could in principle turn
 *   a mask into a branch (we compile with -O2 and avoid patterns that invite it).
 *
 * Fixed-base windowed multiplication of k*G: see sm2_mul_g() for the table and the argument why
 * the mixed additions never hit the exceptional (doubling or P + (-P)) cases.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

typedef uint64_t u64;
typedef unsigned __int128 u128;

/* the 4-limb loops have public trip counts; unrolled because gcc -O2 keeps them as loops */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define UNROLL4 _Pragma("GCC unroll 4")
#else
#define UNROLL4
#endif

/* Window width of the fixed-base table (bits of k per mixed addition). Measured interleaved in one
   process (docs/sm2-engine.md): W = 4, 5, 6 within a few percent of each other, 5 the fastest by its
   best rounds (52 additions, table 52 x 31 points = 103 KB, built in ~15 ms at import); 8 is 40% slower
   (the constant-time scan of 255 entries per window costs more than the additions it saves). */
#ifndef SM2_W
#define SM2_W 5
#endif
#define SM2_WINDOWS ((256 + SM2_W - 1) / SM2_W)
#define SM2_ENTRIES ((1 << SM2_W) - 1) /* multiples 1 .. 2^W - 1; digit 0 is handled by a mask */

/* p = 2^256 - 2^224 - 2^96 + 2^64 - 1 */
static const u64 P[4] = {0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFF00000000ULL, 0xFFFFFFFFFFFFFFFFULL,
                         0xFFFFFFFEFFFFFFFFULL};
/* group order n */
static const u64 N[4] = {0x53BBF40939D54123ULL, 0x7203DF6B21C6052BULL, 0xFFFFFFFFFFFFFFFFULL,
                         0xFFFFFFFEFFFFFFFFULL};
static const u64 N_MINUS_1[4] = {0x53BBF40939D54122ULL, 0x7203DF6B21C6052BULL, 0xFFFFFFFFFFFFFFFFULL,
                                 0xFFFFFFFEFFFFFFFFULL};
static const u64 B_COEF[4] = {0xDDBCBD414D940E93ULL, 0xF39789F515AB8F92ULL, 0x4D5A9E4BCF6509A7ULL,
                              0x28E9FA9E9D9F5E34ULL};
static const u64 GX[4] = {0x715A4589334C74C7ULL, 0x8FE30BBFF2660BE1ULL, 0x5F9904466A39C994ULL,
                          0x32C4AE2C1F198119ULL};
static const u64 GY[4] = {0x02DF32E52139F0A0ULL, 0xD0A9877CC62A4740ULL, 0x59BDCEE36B692153ULL,
                          0xBC3736A2F4F6779CULL};

/* filled in once at import (public values) */
static u64 P_R2[4];  /* R^2 mod p */
static u64 P_ONE[4]; /* R mod p: 1 in Montgomery form */
static u64 N_R2[4];  /* R^2 mod n */
static u64 N_ONE[4]; /* R mod n */
static u64 N_N0;     /* -n^-1 mod 2^64 */

typedef struct {
    u64 x[4], y[4]; /* Montgomery form */
} affine_t;
typedef struct {
    u64 x[4], y[4], z[4]; /* Jacobian, Montgomery form: (X/Z^2, Y/Z^3) */
} jacobian_t;

/* table[i][j-1] = j * 2^(W*i) * G, affine, Montgomery form */
static affine_t (*g_table)[SM2_ENTRIES];

/* ------------------------------------------------------------------ helpers */

static void secure_wipe(void *p, size_t len) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
    explicit_bzero(p, len);
#else
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (len--) *v++ = 0;
#endif
}

/* Best effort: overwrite the stack area the arithmetic helpers used (their temporaries hold
   values derived from k and d) after a top-level operation, instead of wiping inside every
   point addition. */
static __attribute__((noinline)) void scrub_stack(void) {
    unsigned char buf[4096];
    secure_wipe(buf, sizeof buf);
    __asm__ __volatile__("" : : "r"(buf) : "memory");
}

/* all-ones if a == b else 0, without a branch */
static inline u64 ct_eq_mask(u64 a, u64 b) {
    u64 x = a ^ b;
    return (u64)0 - (u64)(1 ^ ((x | ((u64)0 - x)) >> 63));
}

static inline void ct_select4(u64 r[4], u64 mask, const u64 a[4], const u64 b[4]) {
    /* r = mask ? a : b */
    UNROLL4 for (int i = 0; i < 4; i++) r[i] = (a[i] & mask) | (b[i] & ~mask);
}

static inline int is_zero4_ct(const u64 a[4]) {
    u64 x = a[0] | a[1] | a[2] | a[3];
    return (int)(1 ^ ((x | ((u64)0 - x)) >> 63));
}

static void from_be(u64 r[4], const unsigned char *b) {
    for (int i = 0; i < 4; i++) {
        u64 v = 0;
        for (int j = 0; j < 8; j++) v = (v << 8) | b[(3 - i) * 8 + j];
        r[i] = v;
    }
}

static void to_be(unsigned char *b, const u64 a[4]) {
    for (int i = 0; i < 4; i++) {
        u64 v = a[3 - i];
        for (int j = 7; j >= 0; j--) {
            b[i * 8 + j] = (unsigned char)v;
            v >>= 8;
        }
    }
}

/* borrow of a - b (1 if a < b), constant time */
static inline u64 lt4(const u64 a[4], const u64 b[4]) {
    u128 t = 0;
    u64 borrow = 0;
    UNROLL4 for (int i = 0; i < 4; i++) {
        t = (u128)a[i] - b[i] - borrow;
        borrow = (u64)(t >> 64) & 1;
    }
    return borrow;
}

/* r = a - b mod 2^256, returns the borrow */
static inline u64 sub4(u64 r[4], const u64 a[4], const u64 b[4]) {
    u64 borrow = 0;
    UNROLL4 for (int i = 0; i < 4; i++) {
        u128 t = (u128)a[i] - b[i] - borrow;
        r[i] = (u64)t;
        borrow = (u64)(t >> 64) & 1;
    }
    return borrow;
}

/* r = a + b mod 2^256, returns the carry */
static inline u64 add4(u64 r[4], const u64 a[4], const u64 b[4]) {
    u64 carry = 0;
    UNROLL4 for (int i = 0; i < 4; i++) {
        u128 t = (u128)a[i] + b[i] + carry;
        r[i] = (u64)t;
        carry = (u64)(t >> 64);
    }
    return carry;
}

/* ------------------------------------------------- modular arithmetic (mod p or mod n) */

/* r = (hi*2^256 + t) mod m, for a value < 2m; constant time */
static inline void reduce_once(u64 r[4], u64 hi, const u64 t[4], const u64 m[4]) {
    u64 d[4];
    u64 borrow = sub4(d, t, m);
    /* the subtraction went negative iff hi < borrow, i.e. hi == 0 && borrow == 1 */
    u64 keep = (u64)0 - (u64)((borrow & ~hi) & 1);
    ct_select4(r, keep, t, d);
}

static inline void mod_add(u64 r[4], const u64 a[4], const u64 b[4], const u64 m[4]) {
    u64 t[4];
    u64 carry = add4(t, a, b);
    reduce_once(r, carry, t, m);
}

static inline void mod_sub(u64 r[4], const u64 a[4], const u64 b[4], const u64 m[4]) {
    u64 t[4], madd[4];
    u64 borrow = sub4(t, a, b);
    u64 mask = (u64)0 - borrow;
    UNROLL4 for (int i = 0; i < 4; i++) madd[i] = m[i] & mask;
    add4(r, t, madd);
}

/* Montgomery multiplication r = a*b*2^-256 mod m (CIOS), a, b < m; m0 = -m^-1 mod 2^64 */
static inline __attribute__((always_inline)) void mont_mul(u64 r[4], const u64 a[4], const u64 b[4],
                                                           const u64 m[4], u64 m0) {
    u64 t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0;
    UNROLL4 for (int i = 0; i < 4; i++) {
        u64 bi = b[i];
        u128 c;
        u64 t5;
        c = (u128)a[0] * bi + t0;
        t0 = (u64)c;
        c = ((u128)a[1] * bi + t1) + (c >> 64);
        t1 = (u64)c;
        c = ((u128)a[2] * bi + t2) + (c >> 64);
        t2 = (u64)c;
        c = ((u128)a[3] * bi + t3) + (c >> 64);
        t3 = (u64)c;
        c = (u128)t4 + (c >> 64);
        t4 = (u64)c;
        t5 = (u64)(c >> 64);

        u64 q = t0 * m0;
        c = (u128)q * m[0] + t0;
        c = ((u128)q * m[1] + t1) + (c >> 64);
        t0 = (u64)c;
        c = ((u128)q * m[2] + t2) + (c >> 64);
        t1 = (u64)c;
        c = ((u128)q * m[3] + t3) + (c >> 64);
        t2 = (u64)c;
        c = (u128)t4 + (c >> 64);
        t3 = (u64)c;
        t4 = t5 + (u64)(c >> 64);
    }
    u64 t[4] = {t0, t1, t2, t3};
    reduce_once(r, t4, t, m);
}

static inline void fp_mul(u64 r[4], const u64 a[4], const u64 b[4]) { mont_mul(r, a, b, P, 1); }
static inline void fp_sqr(u64 r[4], const u64 a[4]) { mont_mul(r, a, a, P, 1); }
static inline void fp_add(u64 r[4], const u64 a[4], const u64 b[4]) { mod_add(r, a, b, P); }
static inline void fp_sub(u64 r[4], const u64 a[4], const u64 b[4]) { mod_sub(r, a, b, P); }
static void fn_mul(u64 r[4], const u64 a[4], const u64 b[4]) { mont_mul(r, a, b, N, N_N0); }

static void fp_sqr_n(u64 r[4], const u64 a[4], int n) {
    u64 t[4];
    memcpy(t, a, sizeof t);
    for (int i = 0; i < n; i++) fp_sqr(t, t);
    memcpy(r, t, sizeof t);
}

/* r = a^(p-2) = a^-1 (Montgomery form in and out). Fixed addition chain for
   p - 2 = FFFFFFFE FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF 00000000 FFFFFFFF FFFFFFFD:
   31 ones, 0, 128 ones, 32 zeros, 32 ones, 30 ones, 0, 1 (from the top). a_k = a^(2^k - 1). */
static void fp_inv(u64 r[4], const u64 a[4]) {
    u64 a2[4], a3[4], a6[4], a7[4], a14[4], a15[4], a30[4], a31[4], a32[4], t[4];
    fp_sqr(a2, a);
    fp_mul(a2, a2, a);
    fp_sqr(a3, a2);
    fp_mul(a3, a3, a);
    fp_sqr_n(a6, a3, 3);
    fp_mul(a6, a6, a3);
    fp_sqr(a7, a6);
    fp_mul(a7, a7, a);
    fp_sqr_n(a14, a7, 7);
    fp_mul(a14, a14, a7);
    fp_sqr(a15, a14);
    fp_mul(a15, a15, a);
    fp_sqr_n(a30, a15, 15);
    fp_mul(a30, a30, a15);
    fp_sqr(a31, a30);
    fp_mul(a31, a31, a);
    fp_sqr(a32, a31);
    fp_mul(a32, a32, a);

    memcpy(t, a31, sizeof t); /* 31 ones */
    fp_sqr(t, t);             /* 0 */
    for (int i = 0; i < 4; i++) { /* 128 ones */
        fp_sqr_n(t, t, 32);
        fp_mul(t, t, a32);
    }
    fp_sqr_n(t, t, 32); /* 32 zeros */
    fp_sqr_n(t, t, 32); /* 32 ones */
    fp_mul(t, t, a32);
    fp_sqr_n(t, t, 30); /* 30 ones */
    fp_mul(t, t, a30);
    fp_sqr(t, t); /* 0 */
    fp_sqr(t, t); /* 1 */
    fp_mul(r, t, a);
}

/* r = a^(n-2) mod n = a^-1 (Montgomery form in and out); 4-bit fixed window over the public
   exponent: the same 252 squarings and 64 table multiplications for every a; the table index is
   a nibble of the public exponent. */
static void fn_inv(u64 r[4], const u64 a[4]) {
    u64 tab[16][4], t[4], e[4];
    u64 two[4] = {2, 0, 0, 0};
    sub4(e, N, two);
    memcpy(tab[0], N_ONE, sizeof tab[0]);
    for (int i = 1; i < 16; i++) fn_mul(tab[i], tab[i - 1], a);
    memcpy(t, N_ONE, sizeof t);
    for (int nib = 63; nib >= 0; nib--) {
        for (int s = 0; s < 4; s++) fn_mul(t, t, t);
        unsigned idx = (unsigned)((e[nib / 16] >> ((nib % 16) * 4)) & 0xF); /* public exponent */
        fn_mul(t, t, tab[idx]);
    }
    memcpy(r, t, sizeof t);
}

/* 2^256 mod m and 2^512 mod m, by doubling (import time, public) */
static void compute_r_consts(u64 one[4], u64 r2[4], const u64 m[4]) {
    u64 zero[4] = {0, 0, 0, 0};
    /* 2^256 mod m = 2^256 - m, valid since 2^255 < m < 2^256 */
    sub4(one, zero, m);
    memcpy(r2, one, 4 * sizeof(u64));
    for (int i = 0; i < 256; i++) mod_add(r2, r2, r2, m);
}

/* --------------------------------------------------------------- point arithmetic */

/* r = 2*a, Jacobian, a = -3 (dbl-2001-b). Used only for the table at import (public points). */
static void pt_double(jacobian_t *r, const jacobian_t *a) {
    u64 delta[4], gamma[4], beta[4], alpha[4], t1[4], t2[4];
    fp_sqr(delta, a->z);
    fp_sqr(gamma, a->y);
    fp_mul(beta, a->x, gamma);
    fp_sub(t1, a->x, delta);
    fp_add(t2, a->x, delta);
    fp_mul(alpha, t1, t2);
    fp_add(t1, alpha, alpha);
    fp_add(alpha, t1, alpha); /* alpha = 3 (x - delta)(x + delta) */
    /* Z3 = (Y + Z)^2 - gamma - delta */
    fp_add(t1, a->y, a->z);
    fp_sqr(t1, t1);
    fp_sub(t1, t1, gamma);
    fp_sub(r->z, t1, delta);
    /* X3 = alpha^2 - 8 beta */
    fp_add(beta, beta, beta);
    fp_add(beta, beta, beta); /* 4 beta */
    fp_sqr(t1, alpha);
    fp_add(t2, beta, beta);
    fp_sub(r->x, t1, t2);
    /* Y3 = alpha (4 beta - X3) - 8 gamma^2 */
    fp_sub(t1, beta, r->x);
    fp_mul(t1, alpha, t1);
    fp_sqr(t2, gamma);
    fp_add(t2, t2, t2);
    fp_add(t2, t2, t2);
    fp_add(t2, t2, t2);
    fp_sub(r->y, t1, t2);
}

/* r = a + b, a Jacobian, b affine; r may alias a. Valid only when a != +-b and neither is
   infinity (the callers guarantee or mask these). 8M + 3S. */
static void pt_add_mixed(jacobian_t *r, const jacobian_t *a, const affine_t *b) {
    u64 z2[4], z3[4], u2[4], s2[4], h[4], rr[4], h2[4], h3[4], v[4], t[4];
    fp_sqr(z2, a->z);
    fp_mul(z3, z2, a->z);
    fp_mul(u2, b->x, z2);
    fp_mul(s2, b->y, z3);
    fp_sub(h, u2, a->x);
    fp_sub(rr, s2, a->y);
    fp_sqr(h2, h);
    fp_mul(h3, h2, h);
    fp_mul(v, a->x, h2);
    fp_mul(r->z, a->z, h);
    /* X3 = rr^2 - h^3 - 2 v */
    fp_sqr(t, rr);
    fp_sub(t, t, h3);
    fp_sub(t, t, v);
    fp_sub(t, t, v);
    /* Y3 = rr (v - X3) - Y1 h^3 */
    fp_sub(v, v, t);
    fp_mul(v, rr, v);
    fp_mul(h3, a->y, h3);
    fp_sub(r->y, v, h3);
    memcpy(r->x, t, sizeof t);
}

static void pt_to_affine(affine_t *r, const jacobian_t *a) {
    u64 zi[4], zi2[4];
    fp_inv(zi, a->z);
    fp_sqr(zi2, zi);
    fp_mul(r->x, a->x, zi2);
    fp_mul(zi2, zi2, zi);
    fp_mul(r->y, a->y, zi2);
}

/* out[j] = affine(in[j]) for j < count (count <= 256, every Z != 0), with one field inversion
   (Montgomery's trick). Public data only. */
static void batch_to_affine(affine_t *out, const jacobian_t *in, int count) {
    u64 prefix[256][4], inv[4], zi[4], zi2[4];
    memcpy(prefix[0], in[0].z, sizeof prefix[0]);
    for (int j = 1; j < count; j++) fp_mul(prefix[j], prefix[j - 1], in[j].z);
    fp_inv(inv, prefix[count - 1]);
    for (int j = count - 1; j >= 0; j--) {
        if (j > 0) {
            fp_mul(zi, inv, prefix[j - 1]); /* 1 / z_j */
            fp_mul(inv, inv, in[j].z);      /* 1 / (z_0 ... z_{j-1}) */
        } else {
            memcpy(zi, inv, sizeof zi);
        }
        fp_sqr(zi2, zi);
        fp_mul(out[j].x, in[j].x, zi2);
        fp_mul(zi2, zi2, zi);
        fp_mul(out[j].y, in[j].y, zi2);
    }
}

/* Build the fixed-base table once at import: table[i][j-1] = j * 2^(W i) G. Public data, so plain
   code; one batched inversion per window keeps the import around a millisecond. */
static int build_table(void) {
    g_table = PyMem_RawMalloc(sizeof(affine_t[SM2_ENTRIES]) * SM2_WINDOWS);
    if (g_table == NULL) return -1;
    jacobian_t base, jac[SM2_ENTRIES];
    affine_t base_aff;
    fp_mul(base.x, GX, P_R2);
    fp_mul(base.y, GY, P_R2);
    memcpy(base.z, P_ONE, sizeof base.z);
    for (int i = 0; i < SM2_WINDOWS; i++) {
        pt_to_affine(&base_aff, &base);
        g_table[i][0] = base_aff;
        if (SM2_ENTRIES > 1) {
            pt_double(&jac[1], &base);
            /* j*B + B with 2 <= j <= 2^W - 2 is never +-B or infinity (B has order n > 2^W) */
            for (int j = 2; j < SM2_ENTRIES; j++) pt_add_mixed(&jac[j], &jac[j - 1], &base_aff);
            batch_to_affine(&g_table[i][1], &jac[1], SM2_ENTRIES - 1);
        }
        for (int s = 0; s < SM2_W; s++) pt_double(&base, &base);
    }
    return 0;
}

/*
 * k*G for 1 <= k <= n-1 (checked by every caller), constant time in k; result affine,
 * Montgomery form.
 *
 * k = sum_i k_i 2^(W i) with digits 0 <= k_i < 2^W. The accumulator Q starts as infinity
 * (tracked by the mask q_inf, not by its coordinates); step i adds T = k_i 2^(W i) G, read from
 * the table by scanning all 2^W - 1 entries of window i with a mask (digit 0 selects nothing
 * and is handled by a mask too). Three results are computed or selected without branches:
 * Q + T by the mixed formula, T itself (if Q is infinity), Q itself (if k_i = 0).
 *
 * Why Q + T never needs the doubling or the P + (-P) case: before step i, Q = m G with
 * m = k mod 2^(W i), so 0 <= m < 2^(W i); when k_i != 0 the added point is T = t G with
 * t = k_i 2^(W i), so 2^(W i) <= t and t <= k <= n - 1 (t is a sub-sum of k's digits).
 * Both m and t lie in [0, n), so
 *   - Q = T would need m = t as integers, impossible since m < 2^(W i) <= t;
 *   - Q = -T would need m + t = 0 mod n, but m + t = k mod 2^(W (i + 1)) (the low i + 1
 *     digits of k), so 0 < t <= m + t <= k <= n - 1: never 0 or n.
 *   - Q = infinity happens exactly when m = 0 (masked, see above); T = infinity when k_i = 0
 *     (masked). The final sum is k G with 1 <= k <= n - 1, not infinity, so Z != 0.
 */
static void sm2_mul_g(affine_t *out, const u64 k[4]) {
    jacobian_t q, sum;
    affine_t t;
    u64 q_inf = ~(u64)0;
    memset(&q, 0, sizeof q);
    for (int i = 0; i < SM2_WINDOWS; i++) {
        int bit = i * SM2_W;
        u64 digit = k[bit / 64] >> (bit % 64);
        if ((bit % 64) + SM2_W > 64 && bit / 64 < 3) digit |= k[bit / 64 + 1] << (64 - bit % 64);
        digit &= (u64)((1 << SM2_W) - 1);

        memset(&t, 0, sizeof t);
        const affine_t *row = g_table[i];
        for (int j = 0; j < SM2_ENTRIES; j++) {
            u64 m = ct_eq_mask(digit, (u64)(j + 1));
            for (int l = 0; l < 4; l++) {
                t.x[l] |= row[j].x[l] & m;
                t.y[l] |= row[j].y[l] & m;
            }
        }
        u64 d_zero = ct_eq_mask(digit, 0);

        pt_add_mixed(&sum, &q, &t);
        /* Q infinity: the sum is T itself (Z = 1) */
        ct_select4(sum.x, q_inf, t.x, sum.x);
        ct_select4(sum.y, q_inf, t.y, sum.y);
        ct_select4(sum.z, q_inf, P_ONE, sum.z);
        /* digit 0: keep Q */
        ct_select4(q.x, d_zero, q.x, sum.x);
        ct_select4(q.y, d_zero, q.y, sum.y);
        ct_select4(q.z, d_zero, q.z, sum.z);
        q_inf &= d_zero;
    }
    pt_to_affine(out, &q);
}

/* Public point of d (1 <= d <= n-1): 65 bytes 04||X||Y */
static void public_point_bytes(unsigned char out[65], const u64 d[4]) {
    affine_t pt;
    u64 v[4];
    u64 one[4] = {1, 0, 0, 0};
    sm2_mul_g(&pt, d);
    out[0] = 0x04;
    fp_mul(v, pt.x, one);
    to_be(out + 1, v);
    fp_mul(v, pt.y, one);
    to_be(out + 33, v);
    secure_wipe(&pt, sizeof pt);
    secure_wipe(v, sizeof v);
    scrub_stack();
}

/* ------------------------------------------------------------------ randomness */

static int fill_random(unsigned char *buf, size_t len) {
#if defined(__linux__) && defined(SYS_getrandom)
    size_t got = 0;
    while (got < len) {
        long n = syscall(SYS_getrandom, buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOSYS) break; /* old kernel: fall back to /dev/urandom */
            return -1;
        }
        got += (size_t)n;
    }
    if (got == len) return 0;
#endif
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = read(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    close(fd);
    return 0;
}

/* k uniform in [1, n-1] by rejection sampling 256-bit values */
static int random_scalar(u64 k[4]) {
    unsigned char buf[32];
    for (;;) {
        if (fill_random(buf, sizeof buf) != 0) return -1;
        from_be(k, buf);
        /* accept iff k <= n - 1 and k != 0 (the rejection depends only on the discarded value) */
        if (!lt4(N_MINUS_1, k) && !is_zero4_ct(k)) break;
    }
    secure_wipe(buf, sizeof buf);
    return 0;
}

/* ------------------------------------------------------------------ signing core */

typedef struct {
    u64 d_mont[4];    /* d R mod n */
    u64 dinv_mont[4]; /* (1 + d)^-1 R mod n */
} sign_key_t;

/* d must be in [1, n-2] */
static void sign_key_init(sign_key_t *key, const u64 d[4]) {
    u64 t[4];
    fn_mul(key->d_mont, d, N_R2);
    mod_add(t, key->d_mont, N_ONE, N); /* (1 + d) R */
    fn_inv(key->dinv_mont, t);
    secure_wipe(t, sizeof t);
    scrub_stack();
}

/* e (32-byte digest as integer, any 256-bit value), k in [1, n-1].
   Returns 0 and r||s in out, or 1 when this k must be discarded (r = 0, r + k = n, s = 0). */
static int sign_with_k(unsigned char out[64], const sign_key_t *key, const u64 e[4], const u64 k[4]) {
    affine_t pt;
    u64 x1[4], r[4], t[4], s[4], em[4];
    u64 one[4] = {1, 0, 0, 0};
    int retry;
    sm2_mul_g(&pt, k);
    fp_mul(x1, pt.x, one); /* out of Montgomery form, x1 < p */
    /* e mod n and x1 mod n: both < 2^256 < 2n, so one conditional subtraction each */
    reduce_once(em, 0, e, N);
    reduce_once(x1, 0, x1, N);
    mod_add(r, em, x1, N);
    /* r + k == n  <=>  (r + k) mod n == 0, given r, k in [0, n) */
    mod_add(t, r, k, N);
    retry = is_zero4_ct(r) | is_zero4_ct(t);
    /* s = (1 + d)^-1 (k - r d) mod n */
    fn_mul(t, r, key->d_mont);      /* r d */
    mod_sub(t, k, t, N);            /* k - r d */
    fn_mul(s, t, key->dinv_mont);   /* (k - r d)(1 + d)^-1 */
    retry |= is_zero4_ct(s);
    to_be(out, r);
    to_be(out + 32, s);
    secure_wipe(&pt, sizeof pt);
    secure_wipe(x1, sizeof x1);
    secure_wipe(t, sizeof t);
    secure_wipe(s, sizeof s);
    secure_wipe(em, sizeof em);
    secure_wipe(r, sizeof r);
    scrub_stack();
    return retry;
}

/* ------------------------------------------------------------------ verification (public data) */

/* Verification handles only public values (point, e, r, s), so it may branch on them; it reuses the
   constant-time fixed-base code for s*G and adds a plain 4-bit window for t*P. */

static int fe_is_equal(const u64 a[4], const u64 b[4]) {
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/* (x, y) < p and y^2 = x^3 - 3x + b; on success *out is the point in Montgomery form */
static int point_from_bytes(affine_t *out, const unsigned char in[65]) {
    u64 x[4], y[4], t[4], rhs[4], bm[4];
    if (in[0] != 0x04) return 0;
    from_be(x, in + 1);
    from_be(y, in + 33);
    if (!lt4(x, P) || !lt4(y, P)) return 0;
    fp_mul(out->x, x, P_R2);
    fp_mul(out->y, y, P_R2);
    fp_mul(bm, B_COEF, P_R2);
    fp_sqr(t, out->x);
    fp_mul(rhs, t, out->x);   /* x^3 */
    fp_sub(rhs, rhs, out->x);
    fp_sub(rhs, rhs, out->x);
    fp_sub(rhs, rhs, out->x); /* x^3 - 3x */
    fp_add(rhs, rhs, bm);
    fp_sqr(t, out->y);
    return fe_is_equal(t, rhs);
}

/* r = a + b, both Jacobian, all cases (public data only: branches on the values) */
static void pt_add_full_public(jacobian_t *r, const jacobian_t *a, const jacobian_t *b, int a_inf, int b_inf,
                               int *r_inf) {
    u64 z1z1[4], z2z2[4], u1[4], u2[4], s1[4], s2[4], h[4], rr[4], h2[4], h3[4], v[4], t[4];
    if (a_inf) { *r = *b; *r_inf = b_inf; return; }
    if (b_inf) { *r = *a; *r_inf = 0; return; }
    fp_sqr(z1z1, a->z);
    fp_sqr(z2z2, b->z);
    fp_mul(u1, a->x, z2z2);
    fp_mul(u2, b->x, z1z1);
    fp_mul(s1, a->y, z2z2);
    fp_mul(s1, s1, b->z);
    fp_mul(s2, b->y, z1z1);
    fp_mul(s2, s2, a->z);
    fp_sub(h, u2, u1);
    fp_sub(rr, s2, s1);
    if (is_zero4_ct(h)) {
        if (is_zero4_ct(rr)) { /* a == b */
            pt_double(r, a);
            *r_inf = 0;
        } else { /* a == -b */
            *r_inf = 1;
        }
        return;
    }
    fp_sqr(h2, h);
    fp_mul(h3, h2, h);
    fp_mul(v, u1, h2);
    fp_mul(t, a->z, b->z);
    fp_mul(r->z, t, h);
    fp_sqr(t, rr);
    fp_sub(t, t, h3);
    fp_sub(t, t, v);
    fp_sub(t, t, v);
    fp_sub(v, v, t);
    fp_mul(v, rr, v);
    fp_mul(h3, s1, h3);
    fp_sub(r->y, v, h3);
    memcpy(r->x, t, sizeof t);
    *r_inf = 0;
}

/* 1 if (r, s) is a valid signature of e under pa (affine, Montgomery, on the curve), else 0 */
static int verify_core(const affine_t *pa, const u64 e[4], const u64 r[4], const u64 s[4]) {
    u64 t[4], em[4], x1[4], rcheck[4];
    u64 one[4] = {1, 0, 0, 0};
    if (is_zero4_ct(r) || !lt4(r, N) || is_zero4_ct(s) || !lt4(s, N)) return 0;
    mod_add(t, r, s, N);
    if (is_zero4_ct(t)) return 0;

    /* t*P_A: table j*P for j = 1..15 (Jacobian; j*P + P never meets +-P as P has order n > 16),
       then a left-to-right 4-bit window. Accumulator m*P with m a proper prefix of t times 16 and
       the added j < 16: m != j, and 0 < m + j <= t < n, so the mixed additions are never exceptional. */
    jacobian_t tab[16], acc, sum;
    affine_t tab_aff[16], sg;
    memcpy(tab[1].x, pa->x, sizeof tab[1].x);
    memcpy(tab[1].y, pa->y, sizeof tab[1].y);
    memcpy(tab[1].z, P_ONE, sizeof tab[1].z);
    tab_aff[1] = *pa;
    pt_double(&tab[2], &tab[1]);
    for (int j = 3; j < 16; j++) pt_add_mixed(&tab[j], &tab[j - 1], pa);
    batch_to_affine(&tab_aff[2], &tab[2], 14);
    int acc_inf = 1;
    for (int nib = 63; nib >= 0; nib--) {
        if (!acc_inf)
            for (int d = 0; d < 4; d++) pt_double(&acc, &acc);
        unsigned j = (unsigned)((t[nib / 16] >> ((nib % 16) * 4)) & 0xF);
        if (j == 0) continue;
        if (acc_inf) {
            acc = tab[j];
            acc_inf = 0;
        } else {
            pt_add_mixed(&acc, &acc, &tab_aff[j]);
        }
    }
    /* s*G with the fixed-base table, then the general addition (s G = +-t P is possible here) */
    sm2_mul_g(&sg, s);
    jacobian_t sgj;
    memcpy(sgj.x, sg.x, sizeof sgj.x);
    memcpy(sgj.y, sg.y, sizeof sgj.y);
    memcpy(sgj.z, P_ONE, sizeof sgj.z);
    int sum_inf;
    pt_add_full_public(&sum, &acc, &sgj, acc_inf, 0, &sum_inf);
    if (sum_inf) return 0;
    affine_t xy;
    pt_to_affine(&xy, &sum);
    fp_mul(x1, xy.x, one);
    reduce_once(em, 0, e, N);
    reduce_once(x1, 0, x1, N);
    mod_add(rcheck, em, x1, N);
    return fe_is_equal(rcheck, r);
}

/* ------------------------------------------------------------------ Python glue */

static const char *scalar_error(const u64 d[4], int allow_n_minus_1) {
    if (is_zero4_ct(d)) return "SM2 private scalar must not be 0";
    if (!lt4(d, N)) return "SM2 private scalar must be below the group order n";
    if (!allow_n_minus_1 && !lt4(d, N_MINUS_1)) return "SM2 private scalar n-1 cannot sign (1 + d = n)";
    return NULL;
}

static int parse_fixed(Py_buffer *view, Py_ssize_t want, const char *what) {
    if (view->len != want) {
        PyErr_Format(PyExc_ValueError, "%s must be %zd bytes, got %zd", what, want, view->len);
        return -1;
    }
    return 0;
}

typedef struct {
    PyObject_HEAD
    sign_key_t key;
    unsigned char point[65];
    int ready; /* set by a successful __init__ */
} SignContextObject;

static int SignContext_init(SignContextObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"scalar", "point", NULL};
    Py_buffer sc, pt;
    u64 d[4];
    unsigned char computed[65];
    const char *err;
    int rc = -1;
    if (self->ready) {
        /* immutable once keyed: another thread may be signing with this key, GIL released */
        PyErr_SetString(PyExc_TypeError, "SignContext is already initialised; make a new one");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*:SignContext", kwlist, &sc, &pt)) return -1;
    if (parse_fixed(&sc, 32, "scalar") < 0 || parse_fixed(&pt, 65, "point") < 0) goto done;
    from_be(d, sc.buf);
    if ((err = scalar_error(d, 0)) != NULL) {
        PyErr_SetString(PyExc_ValueError, err);
        goto done;
    }
    memcpy(self->point, pt.buf, 65);
    Py_BEGIN_ALLOW_THREADS
    public_point_bytes(computed, d);
    sign_key_init(&self->key, d);
    Py_END_ALLOW_THREADS
    {
        unsigned char diff = 0;
        for (int i = 0; i < 65; i++) diff |= (unsigned char)(computed[i] ^ self->point[i]);
        if (diff != 0) {
            secure_wipe(&self->key, sizeof self->key);
            PyErr_SetString(PyExc_ValueError, "SM2 public point does not match the private scalar");
            goto done;
        }
    }
    self->ready = 1;
    rc = 0;
done:
    secure_wipe(d, sizeof d);
    PyBuffer_Release(&sc);
    PyBuffer_Release(&pt);
    return rc;
}

static void SignContext_dealloc(SignContextObject *self) {
    secure_wipe(&self->key, sizeof self->key);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* One signature of e with a fresh nonce; 0, or -1 with errno set when the random source fails.
   Called without the GIL. */
static int sign_fresh(unsigned char out[64], const sign_key_t *key, const u64 e[4]) {
    u64 k[4];
    int rc = 0;
    for (;;) {
        if (random_scalar(k) != 0) {
            rc = -1;
            break;
        }
        if (sign_with_k(out, key, e, k) == 0) break;
    }
    secure_wipe(k, sizeof k);
    return rc;
}

static int check_ready(SignContextObject *self) {
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "SignContext was not initialised with a key");
        return -1;
    }
    return 0;
}

static PyObject *SignContext_sign_digest(SignContextObject *self, PyObject *arg) {
    Py_buffer ev;
    u64 e[4];
    unsigned char out[64];
    int rc, saved_errno = 0;
    if (check_ready(self) < 0) return NULL;
    if (PyObject_GetBuffer(arg, &ev, PyBUF_SIMPLE) < 0) return NULL;
    if (parse_fixed(&ev, 32, "e") < 0) {
        PyBuffer_Release(&ev);
        return NULL;
    }
    from_be(e, ev.buf);
    PyBuffer_Release(&ev);
    Py_BEGIN_ALLOW_THREADS
    rc = sign_fresh(out, &self->key, e);
    saved_errno = errno;
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        errno = saved_errno ? saved_errno : EIO;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBytes_FromStringAndSize((const char *)out, 64);
}

/* Many signatures in one call, the GIL released once for all of them: digests e1||e2||... (32 bytes
   each) in, r1||s1||r2||s2||... (64 bytes each) out, in the same order. */
static PyObject *SignContext_sign_digests(SignContextObject *self, PyObject *arg) {
    Py_buffer ev;
    PyObject *result;
    unsigned char *out;
    const unsigned char *in;
    Py_ssize_t n, i;
    int rc = 0, saved_errno = 0;
    if (check_ready(self) < 0) return NULL;
    if (PyObject_GetBuffer(arg, &ev, PyBUF_SIMPLE) < 0) return NULL;
    if (ev.len % 32 != 0) {
        PyBuffer_Release(&ev);
        PyErr_Format(PyExc_ValueError, "digests must be a multiple of 32 bytes, got %zd", ev.len);
        return NULL;
    }
    n = ev.len / 32;
    result = PyBytes_FromStringAndSize(NULL, n * 64);
    if (result == NULL) {
        PyBuffer_Release(&ev);
        return NULL;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    in = (const unsigned char *)ev.buf;
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n && rc == 0; i++) {
        u64 e[4];
        from_be(e, in + 32 * i);
        rc = sign_fresh(out + 64 * i, &self->key, e);
    }
    saved_errno = errno;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ev);
    if (rc != 0) {
        Py_DECREF(result);
        errno = saved_errno ? saved_errno : EIO;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return result;
}

static PyObject *SignContext_get_point(SignContextObject *self, void *closure) {
    (void)closure;
    return PyBytes_FromStringAndSize((const char *)self->point, 65);
}

static PyObject *SignContext_repr(SignContextObject *self) {
    return PyUnicode_FromString("<_sm2native.SignContext>"); /* never show key material */
}

static PyMethodDef SignContext_methods[] = {
    {"sign_digest", (PyCFunction)SignContext_sign_digest, METH_O,
     "sign_digest(e: bytes) -> bytes\n\nSM2 signature r||s (64 bytes) of the 32-byte digest e = SM3(Z||M), "
     "with a fresh nonce from getrandom(2)."},
    {"sign_digests", (PyCFunction)SignContext_sign_digests, METH_O,
     "sign_digests(digests: bytes) -> bytes\n\nSignatures r||s (64 bytes each) of the concatenated 32-byte digests, "
     "in order, each with a fresh nonce; the GIL is released once for the whole batch."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef SignContext_getset[] = {
    {"point", (getter)SignContext_get_point, NULL, "the 65-byte public point 04||X||Y", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SignContextType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trustsvc.algorithms._sm2native.SignContext",
    .tp_basicsize = sizeof(SignContextObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SignContext(scalar: bytes, point: bytes)\n\nA per-key SM2 signing context: scalar d (32 bytes, "
              "1 <= d <= n-2) and its public point (65 bytes, 04||X||Y), checked to be d*G. "
              "(1+d)^-1 is computed once here.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SignContext_init,
    .tp_dealloc = (destructor)SignContext_dealloc,
    .tp_repr = (reprfunc)SignContext_repr,
    .tp_methods = SignContext_methods,
    .tp_getset = SignContext_getset,
};

static PyObject *py_public_point(PyObject *mod, PyObject *arg) {
    Py_buffer sc;
    u64 d[4];
    unsigned char out[65];
    const char *err;
    (void)mod;
    if (PyObject_GetBuffer(arg, &sc, PyBUF_SIMPLE) < 0) return NULL;
    if (parse_fixed(&sc, 32, "scalar") < 0) {
        PyBuffer_Release(&sc);
        return NULL;
    }
    from_be(d, sc.buf);
    PyBuffer_Release(&sc);
    if ((err = scalar_error(d, 1)) != NULL) {
        secure_wipe(d, sizeof d);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    public_point_bytes(out, d);
    Py_END_ALLOW_THREADS
    secure_wipe(d, sizeof d);
    return PyBytes_FromStringAndSize((const char *)out, 65);
}

/* TEST ONLY: deterministic signature with a caller-chosen nonce, for known-answer tests. */
static PyObject *py_sign_digest_with_k_test_only(PyObject *mod, PyObject *args) {
    Py_buffer sc, ev, kv;
    u64 d[4], e[4], k[4];
    sign_key_t key;
    unsigned char out[64];
    const char *err = NULL;
    PyObject *res = NULL;
    int bad;
    (void)mod;
    if (!PyArg_ParseTuple(args, "y*y*y*:_sign_digest_with_k_test_only", &sc, &ev, &kv)) return NULL;
    if (parse_fixed(&sc, 32, "scalar") < 0 || parse_fixed(&ev, 32, "e") < 0 || parse_fixed(&kv, 32, "k") < 0)
        goto done;
    from_be(d, sc.buf);
    from_be(e, ev.buf);
    from_be(k, kv.buf);
    if ((err = scalar_error(d, 0)) != NULL) {
        PyErr_SetString(PyExc_ValueError, err);
        goto done;
    }
    if (is_zero4_ct(k) || !lt4(k, N)) {
        PyErr_SetString(PyExc_ValueError, "k must be in [1, n-1]");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    sign_key_init(&key, d);
    bad = sign_with_k(out, &key, e, k);
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "this k gives r = 0, r + k = n or s = 0; choose another");
        goto done;
    }
    res = PyBytes_FromStringAndSize((const char *)out, 64);
done:
    secure_wipe(d, sizeof d);
    secure_wipe(k, sizeof k);
    secure_wipe(&key, sizeof key);
    PyBuffer_Release(&sc);
    PyBuffer_Release(&ev);
    PyBuffer_Release(&kv);
    return res;
}

static PyObject *py_verify_digest(PyObject *mod, PyObject *args) {
    Py_buffer pv, ev, sv;
    unsigned char point[65];
    u64 e[4], r[4], s[4];
    affine_t pa;
    int on_curve, ok = 0;
    (void)mod;
    if (!PyArg_ParseTuple(args, "y*y*y*:verify_digest", &pv, &ev, &sv)) return NULL;
    if (parse_fixed(&pv, 65, "point") < 0 || parse_fixed(&ev, 32, "e") < 0 || parse_fixed(&sv, 64, "signature") < 0) {
        PyBuffer_Release(&pv);
        PyBuffer_Release(&ev);
        PyBuffer_Release(&sv);
        return NULL;
    }
    memcpy(point, pv.buf, 65);
    from_be(e, ev.buf);
    from_be(r, sv.buf);
    from_be(s, (const unsigned char *)sv.buf + 32);
    PyBuffer_Release(&pv);
    PyBuffer_Release(&ev);
    PyBuffer_Release(&sv);
    Py_BEGIN_ALLOW_THREADS
    on_curve = point_from_bytes(&pa, point);
    if (on_curve) ok = verify_core(&pa, e, r, s);
    Py_END_ALLOW_THREADS
    if (!on_curve) {
        PyErr_SetString(PyExc_ValueError, "SM2 public point is not an uncompressed point on the curve");
        return NULL;
    }
    return PyBool_FromLong(ok);
}

static PyMethodDef module_methods[] = {
    {"verify_digest", py_verify_digest, METH_VARARGS,
     "verify_digest(point: bytes, e: bytes, signature: bytes) -> bool\n\nGB/T 32918.2 verification of r||s "
     "(64 bytes) over the 32-byte digest e with the 65-byte public point (ValueError if it is not on the curve). "
     "Public data only: not constant-time."},
    {"public_point", py_public_point, METH_O,
     "public_point(scalar: bytes) -> bytes\n\nd*G as 65 bytes 04||X||Y for a 32-byte scalar 1 <= d <= n-1."},
    {"_sign_digest_with_k_test_only", py_sign_digest_with_k_test_only, METH_VARARGS,
     "_sign_digest_with_k_test_only(scalar, e, k) -> bytes\n\nTEST ONLY (known-answer tests): r||s with a "
     "caller-chosen nonce k. Never use a chosen or repeated k for real signatures."},
    {NULL, NULL, 0, NULL},
};

/* Known-answer self-test at import (GM/T 0003.5 / GB/T 32918.5 example: key, public point, and the
   signature with the example's k), so a miscompiled build fails to import and the engine falls back to
   gmalglib instead of signing wrongly. About 0.1 ms. */
static int self_test(void) {
    static const unsigned char d_be[32] = {
        0x39, 0x45, 0x20, 0x8F, 0x7B, 0x21, 0x44, 0xB1, 0x3F, 0x36, 0xE3, 0x8A, 0xC6, 0xD3, 0x9F, 0x95,
        0x88, 0x93, 0x93, 0x69, 0x28, 0x60, 0xB5, 0x1A, 0x42, 0xFB, 0x81, 0xEF, 0x4D, 0xF7, 0xC5, 0xB8};
    static const unsigned char pub[65] = {
        0x04, 0x09, 0xF9, 0xDF, 0x31, 0x1E, 0x54, 0x21, 0xA1, 0x50, 0xDD, 0x7D, 0x16, 0x1E, 0x4B, 0xC5,
        0xC6, 0x72, 0x17, 0x9F, 0xAD, 0x18, 0x33, 0xFC, 0x07, 0x6B, 0xB0, 0x8F, 0xF3, 0x56, 0xF3, 0x50,
        0x20, 0xCC, 0xEA, 0x49, 0x0C, 0xE2, 0x67, 0x75, 0xA5, 0x2D, 0xC6, 0xEA, 0x71, 0x8C, 0xC1, 0xAA,
        0x60, 0x0A, 0xED, 0x05, 0xFB, 0xF3, 0x5E, 0x08, 0x4A, 0x66, 0x32, 0xF6, 0x07, 0x2D, 0xA9, 0xAD, 0x13};
    static const unsigned char k_be[32] = {
        0x59, 0x27, 0x6E, 0x27, 0xD5, 0x06, 0x86, 0x1A, 0x16, 0x68, 0x0F, 0x3A, 0xD9, 0xC0, 0x2D, 0xCC,
        0xEF, 0x3C, 0xC1, 0xFA, 0x3C, 0xDB, 0xE4, 0xCE, 0x6D, 0x54, 0xB8, 0x0D, 0xEA, 0xC1, 0xBC, 0x21};
    static const unsigned char e_be[32] = {
        0xF0, 0xB4, 0x3E, 0x94, 0xBA, 0x45, 0xAC, 0xCA, 0xAC, 0xE6, 0x92, 0xED, 0x53, 0x43, 0x82, 0xEB,
        0x17, 0xE6, 0xAB, 0x5A, 0x19, 0xCE, 0x7B, 0x31, 0xF4, 0x48, 0x6F, 0xDF, 0xC0, 0xD2, 0x86, 0x40};
    static const unsigned char rs[64] = {
        0xF5, 0xA0, 0x3B, 0x06, 0x48, 0xD2, 0xC4, 0x63, 0x0E, 0xEA, 0xC5, 0x13, 0xE1, 0xBB, 0x81, 0xA1,
        0x59, 0x44, 0xDA, 0x38, 0x27, 0xD5, 0xB7, 0x41, 0x43, 0xAC, 0x7E, 0xAC, 0xEE, 0xE7, 0x20, 0xB3,
        0xB1, 0xB6, 0xAA, 0x29, 0xDF, 0x21, 0x2F, 0xD8, 0x76, 0x31, 0x82, 0xBC, 0x0D, 0x42, 0x1C, 0xA1,
        0xBB, 0x90, 0x38, 0xFD, 0x1F, 0x7F, 0x42, 0xD4, 0x84, 0x0B, 0x69, 0xC4, 0x85, 0xBB, 0xC1, 0xAA};
    u64 d[4], k[4], e[4];
    unsigned char out_pub[65], out_rs[64];
    sign_key_t key;
    from_be(d, d_be);
    from_be(k, k_be);
    from_be(e, e_be);
    public_point_bytes(out_pub, d);
    sign_key_init(&key, d);
    if (sign_with_k(out_rs, &key, e, k) != 0) return -1;
    if (memcmp(out_pub, pub, 65) != 0 || memcmp(out_rs, rs, 64) != 0) return -1;
    return 0;
}

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_sm2native",
    "SM2 signing accelerator (constant-time fixed-base comb for k*G, nonces from getrandom(2)).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sm2native(void) {
    if (g_table == NULL) {
        u64 inv = 1;
        compute_r_consts(P_ONE, P_R2, P);
        compute_r_consts(N_ONE, N_R2, N);
        for (int i = 0; i < 6; i++) inv *= 2 - N[0] * inv; /* Newton: inv = n^-1 mod 2^64 */
        N_N0 = (u64)0 - inv;
        if (build_table() < 0) return PyErr_NoMemory();
        if (self_test() != 0) {
            PyMem_RawFree(g_table);
            g_table = NULL;
            PyErr_SetString(PyExc_ImportError, "_sm2native: known-answer self-test failed (miscompiled build?)");
            return NULL;
        }
    }
    if (PyType_Ready(&SignContextType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    Py_INCREF(&SignContextType);
    if (PyModule_AddObject(m, "SignContext", (PyObject *)&SignContextType) < 0) {
        Py_DECREF(&SignContextType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "WINDOW_BITS", SM2_W) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

#ifdef SM2NATIVE_CTGRIND
/* Constant-time check, not part of the module (tests/unit/test_sm2_native.py builds and runs it):
   the secrets d and k are marked undefined for valgrind's memcheck, which then reports every
   conditional jump, conditional move feeding a branch, and memory address that depends on them
   (the "ctgrind" technique). Outputs are public and declassified before use. Built with the same
   compiler flags as the extension; checks what that compiler emitted here, not other compilers. */
#include <stdio.h>
#include <valgrind/memcheck.h>
int main(void) {
    u64 inv = 1;
    compute_r_consts(P_ONE, P_R2, P);
    compute_r_consts(N_ONE, N_R2, N);
    for (int i = 0; i < 6; i++) inv *= 2 - N[0] * inv;
    N_N0 = (u64)0 - inv;
    if (build_table() != 0 || self_test() != 0) return 2;
    u64 d[4], k[4], e[4] = {1, 2, 3, 4};
    unsigned char out[64], pub[65];
    sign_key_t key;
    for (int round = 0; round < 4; round++) {
        if (random_scalar(d) != 0 || random_scalar(k) != 0) return 2;
        d[3] &= 0x7FFFFFFFFFFFFFFFULL; /* keep d <= n-2 */
        VALGRIND_MAKE_MEM_UNDEFINED(d, sizeof d);
        VALGRIND_MAKE_MEM_UNDEFINED(k, sizeof k);
        public_point_bytes(pub, d);
        sign_key_init(&key, d);
        int retry = sign_with_k(out, &key, e, k);
        VALGRIND_MAKE_MEM_DEFINED(&retry, sizeof retry);
        VALGRIND_MAKE_MEM_DEFINED(out, sizeof out);
        VALGRIND_MAKE_MEM_DEFINED(pub, sizeof pub);
        printf("round %d: retry=%d r[0]=%02x pub[1]=%02x\n", round, retry, out[0], pub[1]);
    }
    return 0;
}
#endif
