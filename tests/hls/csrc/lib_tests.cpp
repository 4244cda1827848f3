// Drives every function of the trico HLS library on inputs written by tests/hls/test_lib.py and
// writes their outputs back, once with float and once with ap_fixed data types.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "trico.h"

static std::string g_dir;

static std::vector<float> readf(const char *name, size_t n) {
    std::vector<float> v(n);
    FILE *f = fopen((g_dir + "/" + name + ".f32").c_str(), "rb");
    if (!f || fread(v.data(), sizeof(float), n, f) != n) { fprintf(stderr, "cannot read %s\n", name); exit(1); }
    fclose(f);
    return v;
}

static std::vector<trico::wbyte_t> readb(const char *name, size_t n) {
    std::vector<trico::wbyte_t> v(n);
    FILE *f = fopen((g_dir + "/" + name + ".u8").c_str(), "rb");
    if (!f || fread(v.data(), 1, n, f) != n) { fprintf(stderr, "cannot read %s\n", name); exit(1); }
    fclose(f);
    return v;
}

template <class T>
static void writev(const std::string &name, const T *x, size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = trico::to_f(x[i]);
    FILE *f = fopen((g_dir + "/out_" + name + ".f32").c_str(), "wb");
    fwrite(v.data(), sizeof(float), n, f);
    fclose(f);
}

template <class T, int N>
static void load(const std::vector<float> &src, T dst[N]) {
    for (int i = 0; i < N; i++) dst[i] = T(src[i]);
}

const int N = 12, K = 64, G = 32, U = 4;
const int H = 4, HKV = 2, D = 16, MAXLEN = 32, POS = 9, SMN = 32, SMUSED = 20;

template <class T, class TACC>
static void run_all(const std::string &sfx) {
    using namespace trico;
    T x[K], r[N], y[N], xn[K];
    load<T, K>(readf("x", K), x);
    load<T, N>(readf("r", N), r);
    std::vector<float> wf = readf("wf", N * K), sc = readf("scales", N * K / G), mn = readf("mins", N * K / G);
    std::vector<wbyte_t> c8 = readb("codes_int8", N * K), c4 = readb("codes_u4", N * K / 2),
                         c2 = readb("codes_t2", N * K / 4);

    matvec<fmt_float<T>, T, T, TACC, N, K, K, U>(x, 0, wf.data(), 0, 0, y);
    writev("matvec_float_" + sfx, y, N);
    matvec<fmt_int8, T, T, TACC, N, K, G, U>(x, c8.data(), 0, sc.data(), 0, y);
    writev("matvec_int8_" + sfx, y, N);
    matvec<fmt_uint4<true>, T, T, TACC, N, K, G, U>(x, c4.data(), 0, sc.data(), 0, y);
    writev("matvec_uint4s_" + sfx, y, N);
    matvec<fmt_uint4<false>, T, T, TACC, N, K, G, U>(x, c4.data(), 0, sc.data(), mn.data(), y);
    writev("matvec_uint4a_" + sfx, y, N);
    matvec<fmt_tern2, T, T, TACC, N, K, G, U>(x, c2.data(), 0, sc.data(), 0, y);
    writev("matvec_tern2_" + sfx, y, N);
    matvec_add<fmt_int8, T, T, T, TACC, N, K, G, U>(x, c8.data(), 0, sc.data(), 0, r, y);
    writev("matvec_add_int8_" + sfx, y, N);

    std::vector<float> nw = readf("normw", K);
    rmsnorm<T, T, TACC, K>(x, nw.data(), 1e-5f, xn);
    writev("rmsnorm_" + sfx, xn, K);

    T rx[H * D], ry[H * D];
    load<T, H * D>(readf("rope_x", H * D), rx);
    std::vector<float> cs = readf("cos", D), sn = readf("sin", D);
    rope<T, T, T, H, D>(rx, cs.data(), sn.data(), ry);
    writev("rope_" + sfx, ry, H * D);

    T sx[SMN], sy[SMN];
    load<T, SMN>(readf("sm", SMN), sx);
    softmax<T, T, SMN>(sx, SMUSED, sy);
    writev("softmax_" + sfx, sy, SMUSED);

    T q[H * D], kn[HKV * D], vn[HKV * D], ao[H * D];
    load<T, H * D>(readf("q", H * D), q);
    load<T, HKV * D>(readf("knew", HKV * D), kn);
    load<T, HKV * D>(readf("vnew", HKV * D), vn);
    std::vector<float> kcf = readf("kc", HKV * MAXLEN * D), vcf = readf("vc", HKV * MAXLEN * D);
    std::vector<T> kc(kcf.size()), vc(vcf.size());
    for (size_t i = 0; i < kcf.size(); i++) {
        kc[i] = T(kcf[i]);
        vc[i] = T(vcf[i]);
    }
    attention<T, T, T, TACC, H, HKV, D, MAXLEN>(q, kn, vn, kc.data(), vc.data(), POS, ao);
    writev("attention_" + sfx, ao, H * D);
    writev("attention_kc_" + sfx, kc.data(), kc.size());
    for (size_t i = 0; i < kcf.size(); i++) {
        kc[i] = T(kcf[i]);
        vc[i] = T(vcf[i]);
    }
    attention<T, T, T, TACC, H, HKV, D, MAXLEN, 4>(q, kn, vn, kc.data(), vc.data(), POS, ao);
    writev("attention_ua4_" + sfx, ao, H * D);

    T gg[K], uu[K], gy[K];
    load<T, K>(readf("g", K), gg);
    load<T, K>(readf("u", K), uu);
    silu_gate<T, T, T, K>(gg, uu, gy);
    writev("silu_gate_" + sfx, gy, K);

    T sg[K], prod[K];
    silu<T, T, K>(gg, sg);
    writev("silu_" + sfx, sg, K);
    mul<T, T, T, K>(gg, uu, prod);
    writev("mul_" + sfx, prod, K);

    T fa[K], fb[K], sum[K];
    fork2<T, K>(x, fa, fb);
    add<T, T, T, K>(fa, fb, sum);
    writev("fork_add_" + sfx, sum, K);

    float am = (float)argmax<T, K>(gg);
    writev("argmax_" + sfx, &am, 1);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    g_dir = argv[1];
    run_all<float, float>("float");
    run_all<ap_fixed<24, 8, AP_RND, AP_SAT>, ap_fixed<40, 16, AP_RND, AP_SAT> >("fixed");
    return 0;
}
