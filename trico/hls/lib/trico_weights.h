// trico HLS library: decoders for the packed weight formats of trico.quant.
// Each format states how row n, column k of W = [N, K] is read and how it enters a dot product.
// A weight W[n, k] = scale[n, g] * code(n, k) (+ min[n, g] when asymmetric), g = k / G.
#ifndef TRICO_WEIGHTS_H
#define TRICO_WEIGHTS_H

#include "trico_common.h"

namespace trico {

// Unquantized weights, held as type Tw in the float parameter memory; no scale.
template <class Tw>
struct fmt_float {
    static const bool scaled = false;
    static const bool asym = false;
    template <class Tacc, class Tx>
    static void mac(Tacc &acc, const Tx &x, const wbyte_t *, const float *fw, long n, int k, int K) {
        acc += Tacc(x * Tw(fw[n * K + k]));
    }
};

// int8 codes, one byte per weight, row-major [N, K].
struct fmt_int8 {
    static const bool scaled = true;
    static const bool asym = false;
    template <class Tacc, class Tx>
    static void mac(Tacc &acc, const Tx &x, const wbyte_t *codes, const float *, long n, int k, int K) {
        const int q = (int8_t)codes[n * K + k];
        acc += Tacc(x * q);
    }
};

// 4-bit codes, two per byte along K (low nibble = even k). Symmetric: code = u - 8.
template <bool SYM>
struct fmt_uint4 {
    static const bool scaled = true;
    static const bool asym = !SYM;
    template <class Tacc, class Tx>
    static void mac(Tacc &acc, const Tx &x, const wbyte_t *codes, const float *, long n, int k, int K) {
        const wbyte_t b = codes[n * (K / 2) + k / 2];
        const int u = (k & 1) ? (b >> 4) : (b & 15);
        const int q = SYM ? u - 8 : u;
        acc += Tacc(x * q);
    }
};

// Ternary codes t in {-1, 0, +1}, 2 bits each (u = t + 1), four per byte along K.
// The dot product needs adders only: each weight adds, subtracts or skips x.
struct fmt_tern2 {
    static const bool scaled = true;
    static const bool asym = false;
    template <class Tacc, class Tx>
    static void mac(Tacc &acc, const Tx &x, const wbyte_t *codes, const float *, long n, int k, int K) {
        const wbyte_t b = codes[n * (K / 4) + k / 4];
        const int u = (b >> (2 * (k & 3))) & 3;
        if (u == 2) acc += Tacc(x);
        else if (u == 0) acc -= Tacc(x);
    }
};

}  // namespace trico

#endif
