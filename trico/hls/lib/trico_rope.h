// trico HLS library: rotary position embedding in the rotate-half layout (HF Llama).
// cos_row/sin_row are the table rows [D] of the current position, read from external memory.
#ifndef TRICO_ROPE_H
#define TRICO_ROPE_H

#include "trico_common.h"

namespace trico {

template <class Tx, class Ty, class Tc, int H, int D>
void rope(const Tx x[H * D], const float *cos_row, const float *sin_row, Ty y[H * D]) {
    Tc c[D], s[D];
table_loop:
    for (int i = 0; i < D; i++) {
#pragma HLS PIPELINE II = 1
        c[i] = Tc(cos_row[i]);
        s[i] = Tc(sin_row[i]);
    }
head_loop:
    for (int h = 0; h < H; h++) {
    pair_loop:
        for (int i = 0; i < D / 2; i++) {
#pragma HLS PIPELINE II = 1
            const Tx a = x[h * D + i];
            const Tx b = x[h * D + i + D / 2];
            y[h * D + i] = Ty(a * c[i] - b * s[i]);
            y[h * D + i + D / 2] = Ty(b * c[i + D / 2] + a * s[i + D / 2]);
        }
    }
}

}  // namespace trico

#endif
